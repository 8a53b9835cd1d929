"""Tile byte allocation: the JPEG-equal-quality rule against bytes in proportion to area, same photo crop, same
total rate, same steps. Also the seam measure (image_tiles.seam_error) of each file.

    .venv/bin/python benchmarks/bench_tile_allocation.py --photo icinfo_gray8bit_cathedral --crop 1024 --tile 512 \\
        --steps 100 --bpp 0.3 -o benchmarks/results/tile_allocation
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from inrcodec import image_tiles as it  # noqa: E402
from inrcodec.codec import decompress  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default="icinfo_gray8bit_cathedral")
    ap.add_argument("--crop", type=int, default=1024)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--bpp", default="0.3")
    ap.add_argument("--model", default="gaussian")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    sig = load(ROOT.parent / "shared" / "data" / "photos" / f"{args.photo}.png")
    h, w = sig.coord_shape
    y0, x0 = (h - args.crop) // 2, (w - args.crop) // 2  # the centre: mixed content
    sig = Signal(np.ascontiguousarray(sig.data[y0:y0 + args.crop, x0:x0 + args.crop]), "image", sig.value_range)
    out = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "photo": args.photo,
           "crop": [y0, x0, args.crop], "runs": []}
    for bpp in (float(b) for b in args.bpp.split(",")):
        for rule in ("area", "jpeg"):
            load_before = list(os.getloadavg())
            t0 = time.perf_counter()
            r = it.compress_tiled(sig, args.model, bpp=bpp, steps=args.steps, tile=args.tile, allocation=rule)
            dec = decompress(r.data)
            g = it.open_tiled(r.data).grid
            run = {"rule": rule, "target_bpp": bpp, "bpp": r.report["bpp"], "psnr": r.report["psnr"],
                   "tile_bytes": r.report["tile_bytes"], "tile_psnr": r.report["tile_psnr"],
                   "seam": it.seam_error(sig.data, dec.data, g), "seconds": time.perf_counter() - t0,
                   "load_before": load_before}
            print(json.dumps(run), flush=True)
            out["runs"].append(run)
            with atomic_output(args.output.with_suffix(".json")) as tmp:
                Path(tmp).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
