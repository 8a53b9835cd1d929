"""Step-0 quality of the latent grid's analysis init (warmstart.py) on Kodak crops and whole images: PSNR of the
render before any training step, the latents' zeroth-order entropy and their rate under the pre-fitted context
model (bits per pixel, latents only), and the init's CPU seconds (1 thread; machine shared, load stored).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/lg_init_step0.py -o benchmarks/results/lg_init_step0.json
"""

from __future__ import annotations

import argparse
import json
import math
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


def analysis_points(images: str, rates: str, arm_steps: int):
    """For each image, crop (256 px centre, then whole) and rate: the latent grid after its analysis init, with
    (image, crop side, x, pixels, bpp, model, init info, init CPU s, load average at the start)."""
    r = lg_recipe.RECIPE
    for image in images.split(","):
        t = torch.from_numpy(load(DATA / f"{image}.png").normalized()).float()
        h, w = t.shape[:2]
        for side in (256, 0):
            x = t[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2] if side else t
            desc = {"shape": tuple(x.shape), "kind": "image"}
            n = x.shape[0] * x.shape[1]
            for bpp in [float(v) for v in rates.split(",")]:
                torch.manual_seed(0)
                m = LatentGrid(LatentGrid.config_for(desc, bpp * n), desc)
                m.set_targets(bits=bpp * n)
                load0 = os.getloadavg()[0]
                c = time.process_time()
                info = W.analysis_init(m, x, r.init_alpha, arm_steps, tuple(r.init_chroma_levels))
                yield image, side, x, n, bpp, m, info, time.process_time() - c, load0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--rates", default="0.35,1.0")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/lg_init_step0.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    r = lg_recipe.RECIPE
    points = []
    for image, side, x, n, bpp, m, info, c, load0 in analysis_points(args.images, args.rates, r.init_arm_steps):
        with torch.no_grad():
            mse = float(((m.render().clamp(0, 1) - x) ** 2).mean())
            coded = float(m.rate_bits([y.detach() for y in m.latents]))
        p = {"image": image, "crop": side, "target_bpp": bpp, "step0_psnr": -10 * math.log10(mse),
             "latent_entropy_bpp": info["entropy_bits"] / n, "latent_context_bpp": coded / n,
             "s0": info["s0"], "init_cpu_s": c, "load_at_start": load0}
        print(json.dumps(p), flush=True)
        points.append(p)
    Path(args.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "recipe": str(r),
                                          "points": points}, indent=1))


if __name__ == "__main__":
    main()
