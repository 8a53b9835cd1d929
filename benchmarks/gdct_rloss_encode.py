"""One encode for the residual-priced base's before/after checks (benchmarks/README.md "compiled", session 23), with
its CPU and wall seconds and the load, from the tree it runs in:

    # a large photo at the default medium (the CLI, its time cap), RD_MIN_STEPS overridden when --rd-min-steps > 0
    PYTHONPATH=$PWD python benchmarks/gdct_rloss_encode.py photo --rd-min-steps 1000 \\
        --input ../shared/data/photos/wikimedia_030.png --bpp 0.3 -o benchmarks/results/gdct_rloss_photo_priced.json
    # slow's schedule (4800 steps: the share search + the main fit) on one Kodak image, one thread, no wall cap
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_rloss_encode.py slow \\
        --input ../shared/data/kodak/kodim07.png --bpp 0.6 -o benchmarks/results/gdct_rloss_slow_kodim07_kernel.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("photo", "slow"))
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--bpp", type=float, required=True)
    ap.add_argument("--rd-min-steps", type=int, default=0, help="gaussian_dct.RD_MIN_STEPS for this run (0: as is)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from inrcodec.models import gaussian_dct

    if args.rd_min_steps:
        gaussian_dct.RD_MIN_STEPS = args.rd_min_steps
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"command": "python benchmarks/gdct_rloss_encode.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "git_commit": commit, "rd_min_steps": gaussian_dct.RD_MIN_STEPS, "load_start": os.getloadavg()}
    t0 = time.perf_counter()
    if args.mode == "photo":  # the CLI as a user runs it: default preset (medium) and its time cap
        from inrcodec.cli import main as cli

        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "r.json"
            rc = cli(["fit", str(args.input), "--bpp", str(args.bpp), "-o", str(Path(tmp) / "x.inrc"),
                      "--json", str(report)])
            out.update(json.loads(report.read_text()), rc=rc)
    else:
        import torch

        from inrcodec import compress, decompress
        from inrcodec.signals import load

        torch.set_num_threads(1)
        sig = load(args.input)
        res = compress(sig, "gaussian+dct", bpp=args.bpp, steps=4800, seed=0)  # slow's steps, no wall cap
        dec = decompress(res.data).data
        mse = float(np.mean((dec.astype(np.float64) - sig.data.astype(np.float64)) ** 2))
        out.update(bytes=len(res.data), bpp=8 * len(res.data) / sig.num_pixels, psnr=10 * np.log10(255**2 / mse),
                   fit_steps=res.report.get("fit_steps"), threads=1)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.update(wall_s=time.perf_counter() - t0, cpu_s=ru.ru_utime + ru.ru_stime, load_end=os.getloadavg(),
               peak_rss_mb=ru.ru_maxrss / 1024)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out.get(k) for k in ("bytes", "bpp", "psnr", "fit_steps", "wall_s", "cpu_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
