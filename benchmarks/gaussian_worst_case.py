"""The slowest Gaussian file the decode caps still accept, on the fuzz campaign's decoded-size cap (2**16 pixels).

The caps (``inrcodec.limits``, ``gaussian_codec``): at most 4 Gaussians per pixel, at least 2 coded bits per
Gaussian (constant streams cannot claim millions of them), and at most 4096 pixel visits per output pixel (3-sigma
boxes clipped to the image; 3x the largest real file measured). This builds the worst case those allow: ``n``
whole-image Gaussians whose colours are random symbols (so they pay the 2 bits each), ``n`` the largest the work cap
accepts, on a claimed 256 x 256 RGB image; then times what the campaign's target does with it (full decode, the
progressive half, and the PNG write), median of 3, with the load average.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_worst_case.py --out benchmarks/results/gaussian_worst_case.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.errors import FormatError  # noqa: E402
from inrcodec.fuzzing import FUZZ_MAX_PIXELS, decode_target  # noqa: E402
from inrcodec.fuzzing import gaussian_costly_file as costly_file  # noqa: E402


def accepted(data: bytes) -> bool:
    try:
        decode_target(data)
        return True
    except FormatError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    seed = (ROOT / "tests" / "golden" / "gaussian-image.inrc").read_bytes()
    res = {"command": "PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_worst_case.py "
                      "--out benchmarks/results/gaussian_worst_case.json",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other engineers' work)",
           "max_pixels": FUZZ_MAX_PIXELS, "load_average_start": list(os.getloadavg()), "cases": []}
    for h, w in [(256, 256), (24, 32)]:
        lo, hi = 1, 1 << 16  # largest accepted n by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if accepted(costly_file(seed, h, w, mid)):
                lo = mid
            else:
                hi = mid - 1
        data = costly_file(seed, h, w, lo)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            decode_target(data)
            times.append(time.perf_counter() - t)
        refused = costly_file(seed, h, w, lo + 1)
        t = time.perf_counter()
        ok = accepted(refused)
        t_refuse = time.perf_counter() - t
        res["cases"].append({"claimed_shape": [h, w, 3], "gaussians": lo, "file_bytes": len(data),
                             "decode_seconds_median": round(statistics.median(times), 3),
                             "decode_seconds": [round(x, 3) for x in times],
                             "one_more_gaussian": "accepted" if ok else f"refused in {t_refuse:.4f} s"})
        print(res["cases"][-1], flush=True)
    res["load_average_end"] = list(os.getloadavg())
    print(json.dumps(res, indent=1))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
