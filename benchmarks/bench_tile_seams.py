"""Seams of tiled images: the error of neighbouring-pixel differences across tile borders against the interior
(``image_tiles.seam_error``), per model and margin, on a generated 128x192 image (waves + a smooth random field)
in 64-pixel tiles at 1.5 bpp.

    .venv/bin/python benchmarks/bench_tile_seams.py --models gaussian,latentgrid --steps 200 \\
        -o benchmarks/results/tile_seams
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def test_image(h: int = 128, w: int = 192) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w] / 40.0
    img = np.stack([np.sin(xx * 2 + yy), np.cos(yy * 3 - xx), np.sin(xx * yy)], -1) * 0.35 + 0.5
    img += cv2.resize(rng.normal(0, 1, (h // 6 + 1, w // 6 + 1, 3)), (w, h), interpolation=cv2.INTER_CUBIC) * 0.08
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    import torch

    from inrcodec import image_tiles as it
    from inrcodec.codec import decompress
    from inrcodec.signal import Signal
    from inrcodec.signals._atomic import atomic_output

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="gaussian,latentgrid")
    ap.add_argument("--margins", default="0,4,8")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--photo", default=None, help="a photo's stem in ../shared/data/photos instead of the generated "
                    "image: its centre --crop pixels square, in --tile tiles")
    ap.add_argument("--crop", type=int, default=768)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--bpp", type=float, default=1.5)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.photo:
        from inrcodec.signals import load

        full = load(ROOT.parent / "shared" / "data" / "photos" / f"{args.photo}.png").data
        y0, x0 = (full.shape[0] - args.crop) // 2, (full.shape[1] - args.crop) // 2
        img, name = np.ascontiguousarray(full[y0:y0 + args.crop, x0:x0 + args.crop]), f"{args.photo} centre {args.crop}^2"
    else:
        img, name = test_image(), "generated 128x192 RGB"
    sig = Signal(img, "image")
    out = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "image": name,
           "tile": args.tile, "bpp": args.bpp, "steps": args.steps, "runs": []}
    for model in args.models.split(","):
        for m in (int(v) for v in args.margins.split(",")):
            r = it.compress_tiled(sig, model, bpp=args.bpp, steps=args.steps, tile=args.tile, margin=m, workers=2)
            g = it.open_tiled(r.data).grid
            run = {"model": model, "margin": m, "bpp": r.report["bpp"], "psnr": r.report["psnr"],
                   "seconds": r.report["seconds"], "load": list(os.getloadavg()),
                   **it.seam_error(img, decompress(r.data).data, g)}
            print(json.dumps(run), flush=True)
            out["runs"].append(run)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(args.output.with_suffix(".json")) as tmp:
                Path(tmp).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
