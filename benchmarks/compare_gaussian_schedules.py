"""Two bench_kodak.py runs of the Gaussian codec on the same images: the RD gain of one schedule over another.

    .venv/bin/python benchmarks/compare_gaussian_schedules.py \\
        --old benchmarks/results/gaussian_kodak_rd.json --new benchmarks/results/gaussian_kodak_rd_medium1600_*.json \\
        -o benchmarks/results/gaussian_medium_800_vs_1600

For each image of the new run: PSNR at each target rate (old, new, difference), BD-rate of new vs old, and both
curves' BD-rate against the classical codecs of the new run (same images, same baselines). Then the same on the
mean curve (per-image PSNR interpolated at common log-spaced rates, as bench_kodak.py averages). Writes JSON + PNG.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kodak import interpolate  # noqa: E402

from inrcodec import metrics  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

OURS = "inrcodec-gaussian"


def _bd(a: dict, b: dict) -> float | str:
    try:
        return float(metrics.bd_rate(a, b))
    except Exception as e:  # noqa: BLE001 - no overlap etc.: reported as text
        return f"n/a: {e}"


def _curve(points: list[dict]) -> dict:
    pts = sorted(points, key=lambda p: p["bpp"])
    return {"bpp": [p["bpp"] for p in pts], "psnr": [p["psnr"] for p in pts]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, nargs="+", required=True, help="one or more runs (their images merged)")
    ap.add_argument("--images", default="", help="comma-separated subset (default: every image of --new in --old)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    old = json.loads(args.old.read_text())
    runs = [json.loads(p.read_text()) for p in args.new]
    new = {**runs[0], "per_image": {k: v for r in runs for k, v in r["per_image"].items()}}
    images = [s for s in new["per_image"] if s in old["per_image"]]
    if args.images:
        images = [s for s in images if s in args.images.split(",")]
    out = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "old": str(args.old),
           "new": [str(p) for p in args.new], "old_steps": old["settings"].get("steps") or "preset (800)",
           "new_steps": new["settings"].get("steps"), "images": images, "per_image": {}}
    codecs = [c for c in new["per_image"][images[0]]["curves"] if c != OURS]
    grid = np.exp(np.linspace(np.log(0.2), np.log(1.0), 12))
    mean = {"old": [], "new": [], **{c: [] for c in codecs}}
    for stem in images:
        o, n = old["per_image"][stem]["curves"][OURS], new["per_image"][stem]["curves"][OURS]
        rates = {}
        for p in n:
            q = [x for x in o if x.get("target_bpp") == p.get("target_bpp")]
            if q:
                rates[str(p["target_bpp"])] = {
                    "old": {k: q[0].get(k) for k in ("bpp", "psnr", "encode_s", "fit_steps")},
                    "new": {k: p.get(k) for k in ("bpp", "psnr", "encode_s", "fit_steps")},
                    "psnr_gain_db": p["psnr"] - q[0]["psnr"]}
        co, cn = _curve(o), _curve(n)
        out["per_image"][stem] = {
            "rates": rates, "bd_rate_new_vs_old": _bd(co, cn),
            "bd_rate_vs": {c: {"old": _bd(_curve(new["per_image"][stem]["curves"][c]), co),
                               "new": _bd(_curve(new["per_image"][stem]["curves"][c]), cn)} for c in codecs}}
        mean["old"].append(interpolate(o, grid))
        mean["new"].append(interpolate(n, grid))
        for c in codecs:
            mean[c].append(interpolate(new["per_image"][stem]["curves"][c], grid))
    avg = {}
    for k, rows in mean.items():
        y = np.mean(np.array(rows), 0)
        keep = np.isfinite(y)
        avg[k] = {"bpp": grid[keep].tolist(), "psnr": y[keep].tolist()}
    out["average"] = avg
    out["average_bd_rate_new_vs_old"] = _bd(avg["old"], avg["new"])
    out["average_bd_rate_vs"] = {c: {"old": _bd(avg[c], avg["old"]), "new": _bd(avg[c], avg["new"])}
                                 for c in codecs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.output.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(out, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, style in (("old", "o--"), ("new", "o-"), *((c, ":") for c in codecs)):
        label = {"old": f"gaussian, {out['old_steps']} steps", "new": f"gaussian, {out['new_steps']} steps"}.get(k, k)
        ax.plot(avg[k]["bpp"], avg[k]["psnr"], style, label=label, ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("bpp")
    ax.set_ylabel("mean PSNR (dB)")
    ax.set_title(f"{', '.join(images)}: BD-rate new vs old {out['average_bd_rate_new_vs_old']:.1f} %"
                 if isinstance(out["average_bd_rate_new_vs_old"], float) else ", ".join(images))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(args.output.with_suffix(".png")) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    print(json.dumps({k: out[k] for k in ("average_bd_rate_new_vs_old", "average_bd_rate_vs")}, indent=1))
    for stem, r in out["per_image"].items():
        print(stem, {k: round(v["psnr_gain_db"], 3) for k, v in r["rates"].items()}, r["bd_rate_new_vs_old"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
