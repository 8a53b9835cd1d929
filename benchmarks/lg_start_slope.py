"""The analysis start's own RD slope against JPEG's at the byte target (issue 13, the lambda prior): for each image,
crop and rate, the start's exponent k of D = c R^k (warmstart.rd_exponent), its slope k D / R at the chosen gain
(D the pyramid's MSE per sample, R the latents' zeroth-order entropy per pixel) and jpeg_rd_slope at the target
(the current prior). 1 thread; CPU seconds per point; load stored.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/lg_start_slope.py -o benchmarks/results/lg_start_slope.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.models.latentgrid import LatentGrid  # noqa: E402
from inrcodec.models.latentgrid import recipe as lg_recipe  # noqa: E402
from inrcodec.models.latentgrid import warmstart as W  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--rates", default="0.2,0.5,1.0")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/lg_start_slope.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    r = lg_recipe.RECIPE
    points = []
    for image in args.images.split(","):
        t = torch.from_numpy(load(DATA / f"{image}.png").normalized()).float()
        h, w = t.shape[:2]
        for side in (256, 0):
            x = t[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2] if side else t
            desc = {"shape": tuple(x.shape), "kind": "image"}
            n = x.shape[0] * x.shape[1]
            for bpp in [float(v) for v in args.rates.split(",")]:
                torch.manual_seed(0)
                m = LatentGrid(LatentGrid.config_for(desc, bpp * n), desc)
                m.set_targets(bits=bpp * n)
                load0 = os.getloadavg()[0]
                c = time.process_time()
                info = W.analysis_init(m, x, r.init_alpha, 0, tuple(r.init_chroma_levels))
                c = time.process_time() - c
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
