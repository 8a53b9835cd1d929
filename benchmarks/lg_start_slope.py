"""The analysis start's own RD slope against JPEG's at the byte target (issue 13, the lambda prior): for each image,
crop and rate, the start's exponent k of D = c R^k (warmstart.rd_exponent), its slope k D / R at the chosen gain
(D the pyramid's MSE per sample, R the latents' zeroth-order entropy per pixel) and jpeg_rd_slope at the target
(the current prior). 1 thread; CPU seconds per point; load stored.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/lg_start_slope.py -o benchmarks/results/lg_start_slope.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lg_init_step0 import analysis_points  # noqa: E402

from inrcodec.models.latentgrid import recipe as lg_recipe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--rates", default="0.2,0.5,1.0")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/lg_start_slope.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    points = []
    for image, side, x, n, bpp, m, info, c, load0 in analysis_points(args.images, args.rates, arm_steps=0):
        k, d, rate = info["rd_exponent"], info["start_mse"], info["entropy_bits"] / n
        jpeg = lg_recipe.jpeg_rd_slope(x.numpy(), bpp)
        p = {"image": image, "crop": side, "target_bpp": bpp, "rd_exponent": k, "start_mse": d,
             "start_entropy_bpp": rate, "start_slope": k * d / rate if k else None, "jpeg_slope": jpeg,
             "start_over_jpeg": (k * d / rate / jpeg) if k and jpeg else None, "init_cpu_s": c,
             "load_at_start": load0}
        print(json.dumps(p), flush=True)
        points.append(p)
    Path(args.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "points": points}, indent=1))


if __name__ == "__main__":
    main()
