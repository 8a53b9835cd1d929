"""Decode CPU of whole files with the sign pass compiled whole (``signpred._compiled``: ``sp_walk``) against the
session-25 walk (Python over the phases and rounds, each round compiled), in the same process and tree.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_signpred_walk.py FILE.inrc ... \
        -o benchmarks/results/signpred_walk_decode

Per file and walk: process CPU of ``decompress`` (one torch thread; median and min of ``--repeat`` after a warm-up)
and of ``signpred.decode`` within it; per file also the AVX2 and the portable copy of the compiled walk
(``INRCODEC_DCT_PORTABLE=1``). Process CPU, not wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import decompress  # noqa: E402
from inrcodec.container import read_container  # noqa: E402
from inrcodec.models import signpred  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = {"command": "python benchmarks/bench_signpred_walk.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                        cwd=ROOT).stdout.strip(),
           "load_start": os.getloadavg(), "rows": []}
    c0 = time.process_time()
    decode, compiled = signpred.decode, signpred._compiled
    spent = []

    def timed_decode(*a, **k):
        t = time.process_time()
        out = decode(*a, **k)
        spent.append(time.process_time() - t)
        return out

    signpred.decode = timed_decode
    walks = {"per_round": lambda p, *a: compiled(p, *a) if p is None else None, "compiled": compiled,
             "compiled_portable": compiled}
    for path in args.files:
        data = path.read_bytes()
        sec = read_container(data).sections["dct"]
        row = {"file": str(path), "bytes": len(data), "dct_format": sec[0], "tools": sec[1] if sec[0] == 7 else 0}
        for name, fn in walks.items():
            signpred._compiled = fn
            if name == "compiled_portable":
                os.environ["INRCODEC_DCT_PORTABLE"] = "1"
            decompress(data)
            spent.clear()
            total = []
            for _ in range(args.repeat):
                t = time.process_time()
                decompress(data)
                total.append(time.process_time() - t)
            os.environ.pop("INRCODEC_DCT_PORTABLE", None)
            row[name] = {"file_cpu_ms": {"median": 1e3 * statistics.median(total), "min": 1e3 * min(total)},
                         "sign_pass_cpu_ms": {"median": 1e3 * statistics.median(spent), "min": 1e3 * min(spent)}}
        res["rows"].append(row)
        print(json.dumps(row), flush=True)
    signpred.decode, signpred._compiled = decode, compiled
    res["cpu_s"] = time.process_time() - c0
    res["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
