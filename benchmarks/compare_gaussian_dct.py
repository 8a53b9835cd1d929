"""gaussian+dct against gaussian at the same settings, from two sets of ``bench_kodak.py`` results (no new fits).

    python benchmarks/compare_gaussian_dct.py --images kodim03,kodim07 \\
        --ours benchmarks/results/gaussian_dct_kodak_rd_medium1000_{stem}.json \\
        --theirs benchmarks/results/gaussian_kodak_rd_medium1000_{stem}.json \\
        -o benchmarks/results/gaussian_dct_vs_gaussian_medium1000

Per image: BD-rate of gaussian+dct against gaussian and against each baseline of its own run, PSNR at each
target rate side by side, encode wall and CPU seconds (CPU only where the run recorded it). The mean BD-rate is
the mean of the per-image figures. Writes ``<out>.json`` and ``<out>.png``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from inrcodec import metrics  # noqa: E402
from oracle_gaussian_dct import write_figure_and_json  # noqa: E402

OURS, THEIRS = "inrcodec-gaussian+dct", "inrcodec-gaussian"


def curve(points: list[dict]) -> dict:
    pts = sorted(points, key=lambda p: p["bpp"])
    return {"bpp": [p["bpp"] for p in pts], "psnr": [p["psnr"] for p in pts]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--ours", default="benchmarks/results/gaussian_dct_kodak_rd_medium1000_{stem}.json")
    ap.add_argument("--theirs", default="benchmarks/results/gaussian_kodak_rd_medium1000_{stem}.json",
                    help="'paired': the points of --ours without their restoration filters (session 23's files)")
    ap.add_argument("--theirs-curve", default=THEIRS, help="curve name in --theirs (e.g. inrcodec-gaussian+dct "
                    "to compare two gaussian+dct runs)")
    ap.add_argument("--theirs-label", default="gaussian")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks/results/gaussian_dct_vs_gaussian_medium1000")
    args = ap.parse_args(argv)
    out = {"command": "python benchmarks/compare_gaussian_dct.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "per_image": {}}
    for stem in args.images.split(","):
        ours = json.loads((ROOT / args.ours.format(stem=stem)).read_text())["per_image"][stem]["curves"]
        if args.theirs == "paired":  # the same files without their restoration filters (compare.py records them)
            theirs = {args.theirs_curve: [{**p, **p.get("without_restoration", {})} for p in ours[OURS]]}
        else:
            theirs = json.loads((ROOT / args.theirs.format(stem=stem)).read_text())["per_image"][stem]["curves"]
        row = {"bd_rate_vs": {args.theirs_label: metrics.bd_rate(curve(theirs[args.theirs_curve]), curve(ours[OURS]))}}
        for base in ("jpeg", "webp", "avif"):
            if base in ours:
                row["bd_rate_vs"][base] = metrics.bd_rate(curve(ours[base]), curve(ours[OURS]))
        row["points"] = [{"target_bpp": a.get("target_bpp"), "gaussian+dct": [a["bpp"], a["psnr"]],
                          args.theirs_label: [b["bpp"], b["psnr"]], "encode_s": [a["encode_s"], b["encode_s"]],
                          "encode_cpu_s": [a.get("encode_cpu_s"), b.get("encode_cpu_s")],
                          "fit_seconds": [a.get("fit_seconds"), b.get("fit_seconds")]}
                         for a, b in zip(sorted(ours[OURS], key=lambda p: p["bpp"]),
                                         sorted(theirs[args.theirs_curve], key=lambda p: p["bpp"]))]
        row["curves"] = {"gaussian+dct": ours[OURS], args.theirs_label: theirs[args.theirs_curve],
                         **{b: ours[b] for b in ("jpeg", "webp", "avif") if b in ours}}
        out["per_image"][stem] = row
        print(stem, {k: round(v, 1) for k, v in row["bd_rate_vs"].items()})
    keys = {k for r in out["per_image"].values() for k in r["bd_rate_vs"]}
    out["mean_bd_rate_vs"] = {k: float(np.mean([r["bd_rate_vs"][k] for r in out["per_image"].values()]))
                              for k in sorted(keys)}
    print("mean", {k: round(v, 1) for k, v in out["mean_bd_rate_vs"].items()})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stems = list(out["per_image"])
    fig, axes = plt.subplots(1, len(stems), figsize=(6 * len(stems), 4.6), squeeze=False)
    style = {"gaussian+dct": "r-o", "gaussian": "k-o", "jpeg": "C1-", "webp": "C4-", "avif": "C0-"}
    for ax, stem in zip(axes[0], stems):
        for name, pts in out["per_image"][stem]["curves"].items():
            c = curve(pts)
            ax.plot(c["bpp"], c["psnr"], style.get(name, "-"), label=name, ms=4)
        ax.set_xlim(0, 1.2)
        ax.set_title(f"{stem}, 1000 Gaussian steps")
        ax.set_xlabel("bpp")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    write_figure_and_json(fig, out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
