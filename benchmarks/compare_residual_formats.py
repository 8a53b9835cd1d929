"""gaussian+dct with the residual's format 2 (``coefcoder``) against the same model with format 1, from two sets of
``bench_kodak.py`` results run with the same images, rates, steps and seed (the Gaussian bases are the same fits;
only the residual's symbol coding differs, so the file lands at the same bytes with a finer residual step).

    python benchmarks/compare_residual_formats.py --images kodim03,kodim07 \\
        --new benchmarks/results/gaussian_dct_ctx_kodak_rd_medium1000_{stem}.json \\
        --old benchmarks/results/gaussian_dct_kodak_rd_medium1000_{stem}.json \\
        -o benchmarks/results/gaussian_dct_ctx_vs_format1_medium1000

Per image: BD-rate of format 2 against format 1 and against each baseline of the new run (JPEG/WebP/AVIF), the
points side by side. The mean is the mean of the per-image figures (as ``compare_gaussian_dct.py``). Writes
``<out>.json`` and ``<out>.png``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_gaussian_dct import curve  # noqa: E402

from inrcodec import metrics  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

MODEL = "inrcodec-gaussian+dct"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--new", default="benchmarks/results/gaussian_dct_ctx_kodak_rd_medium1000_{stem}.json")
    ap.add_argument("--old", default="benchmarks/results/gaussian_dct_kodak_rd_medium1000_{stem}.json")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks/results/gaussian_dct_ctx_vs_format1_medium1000")
    args = ap.parse_args(argv)
    out = {"command": "python benchmarks/compare_residual_formats.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "per_image": {}}
    for stem in args.images.split(","):
        new = json.loads((ROOT / args.new.format(stem=stem)).read_text())["per_image"][stem]["curves"]
        old = json.loads((ROOT / args.old.format(stem=stem)).read_text())["per_image"][stem]["curves"]
        row = {"bd_rate_vs": {"format 1": metrics.bd_rate(curve(old[MODEL]), curve(new[MODEL]))},
               "format1_bd_rate_vs": {}}
        for base in ("jpeg", "webp", "avif"):
            if base in new:
                row["bd_rate_vs"][base] = metrics.bd_rate(curve(new[base]), curve(new[MODEL]))
            if base in old:
                row["format1_bd_rate_vs"][base] = metrics.bd_rate(curve(old[base]), curve(old[MODEL]))
        row["points"] = [{"target_bpp": a.get("target_bpp"), "format2": [a["bpp"], a["psnr"]],
                          "format1": [b["bpp"], b["psnr"]], "psnr_gain_db": a["psnr"] - b["psnr"],
                          "encode_cpu_s": [a.get("encode_cpu_s"), b.get("encode_cpu_s")],
                          "decode_s": [a.get("decode_s"), b.get("decode_s")]}
                         for a, b in zip(sorted(new[MODEL], key=lambda p: p["bpp"]),
                                         sorted(old[MODEL], key=lambda p: p["bpp"]))]
        row["curves"] = {"format2": new[MODEL], "format1": old[MODEL],
                         **{b: new[b] for b in ("jpeg", "webp", "avif") if b in new}}
        out["per_image"][stem] = row
        print(stem, json.dumps(row["bd_rate_vs"]), [round(p["psnr_gain_db"], 3) for p in row["points"]])
    keys = set.intersection(*(set(r["bd_rate_vs"]) for r in out["per_image"].values()))
    out["mean_bd_rate_vs"] = {k: sum(r["bd_rate_vs"][k] for r in out["per_image"].values()) / len(out["per_image"])
                              for k in sorted(keys)}
    keys1 = set.intersection(*(set(r["format1_bd_rate_vs"]) for r in out["per_image"].values()))
    out["format1_mean_bd_rate_vs"] = {k: sum(r["format1_bd_rate_vs"][k] for r in out["per_image"].values())
                                      / len(out["per_image"]) for k in sorted(keys1)}
    print("mean", json.dumps(out["mean_bd_rate_vs"]), "format 1 mean", json.dumps(out["format1_mean_bd_rate_vs"]))
    with atomic_output(args.out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(out, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(out["per_image"]), figsize=(5.5 * len(out["per_image"]), 4), squeeze=False)
    for ax, (stem, row) in zip(axes[0], out["per_image"].items()):
        for name, pts in row["curves"].items():
            c = curve(pts)
            ax.plot(c["bpp"], c["psnr"], "o-" if name.startswith("format") else ":", label=name, ms=3)
        ax.set_title(f"{stem}: format 2 vs 1 {row['bd_rate_vs']['format 1']:+.1f} % BD-rate")
        ax.set_xlabel("bpp")
        ax.set_ylabel("PSNR dB")
        ax.set_xlim(0.1, 1.2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
