"""Merge lg_recipe_curves.py results (one step count, several rates) into one JSON and draw PSNR against the
coded bpp per variant, with the byte targets' +-10 % bands: where each lambda start / controller lands.

    python benchmarks/lg_lambda_start_plot.py IN.json... -o benchmarks/results/lg_lambda_start_crop256
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    merged = {"points": {}, "recipes": {}, "commands": []}
    for path in args.inputs:
        r = json.loads(Path(path).read_text())
        for k, v in r["points"].items():
            merged["points"].setdefault(k, []).extend(v)
        merged["recipes"].update(r.get("recipes", {}))
        merged["commands"] += r.get("commands", [])
        merged["machine"] = r.get("machine")
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(merged, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = sorted({p["image"] for v in merged["points"].values() for p in v})
    fig, axes = plt.subplots(1, len(images), figsize=(5 * len(images), 4), squeeze=False)
    for ax, image in zip(axes[0], images):
        targets = sorted({p["target_bpp"] for v in merged["points"].values() for p in v if p["image"] == image})
        for t in targets:
            ax.axvspan(0.9 * t, 1.1 * t, color="k", alpha=0.06)
        for variant, pts in merged["points"].items():
            c = sorted((p["bpp"], p["psnr"]) for p in pts if p["image"] == image)
            if c:
                ax.plot(*zip(*c), "o-", label=variant, ms=4)
        crop = next(p["crop"] for v in merged["points"].values() for p in v if p["image"] == image)
        steps = sorted({p["steps"] for v in merged["points"].values() for p in v if p["image"] == image})
        ax.set_title(f"{image} {'%dx%d crop' % (crop, crop) if crop else 'whole'}, {steps} steps")
        ax.set_xscale("log")
        ax.set_xlabel("bpp of the file (grey: target +-10 %)")
        ax.set_ylabel("PSNR (dB), decoded")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)


if __name__ == "__main__":
    main()
