"""CPU cost of the restoration filters' cross-channel taps in the decoder (issue 13, session 24), on one file.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/restore_cross_decode.py /tmp/k7.inrc \\
        -o benchmarks/results/restore_cross_decode_kodim07

The file's unfiltered decoded image (``gaussian_dct.without_restoration``) through ``restore.apply`` (the compiled
kernel) with the file's filters, and with the same filters less their cross-channel taps (the format-5 form's cost),
on 1 and 2 threads: CPU-ms per call (``time.process_time``, median of 15) and wall-ms (median; meaningless under
load, kept for an idle rerun). Also ``decompress`` of the whole file, CPU and wall. Load-independent figure: CPU-ms.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from inrcodec import decompress  # noqa: E402
from inrcodec.container import read_container  # noqa: E402
from inrcodec.models import gaussian_dct, image_dct, restore  # noqa: E402


def _timed(fn, reps: int) -> dict:
    fn()
    cpu, wall = [], []
    for _ in range(reps):
        c, t = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return {"cpu_ms_median": statistics.median(cpu) * 1e3, "wall_ms_median": statistics.median(wall) * 1e3,
            "wall_ms_min": min(wall) * 1e3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    data = args.file.read_bytes()
    c = read_container(data)
    h, w, ch = (int(s) for s in c.signal["shape"])
    filters = image_dct.decode_residual(c.sections["dct"], h, w, ch)[4]
    if filters is None:
        raise SystemExit("the file has no restoration filters")
    unfiltered = decompress(gaussian_dct.without_restoration(data)).data
    own = len(restore.SHAPES[filters["shape"]])
    plain = {k: v for k, v in filters.items() if k != "cross"}
    plain["coefs"] = [cf[:, :own] for cf in filters["coefs"]]
    out = {"command": "python benchmarks/restore_cross_decode.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                        cwd=ROOT).stdout.strip(),
           "file": str(args.file), "file_bytes": len(data), "dct_format": c.sections["dct"][0],
           "cross": filters.get("cross"), "filters_per_channel": [len(cf) for cf in filters["coefs"]],
           "load_before": os.getloadavg()}
    for th in (1, 2):
        torch.set_num_threads(th)
        out[f"{th}_threads"] = {"filters": _timed(lambda: restore.apply(unfiltered, filters), args.reps),
                                "filters_without_cross_taps": _timed(lambda: restore.apply(unfiltered, plain),
                                                                     args.reps),
                                "decompress": _timed(lambda: decompress(data), max(3, args.reps // 3))}
    out["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
