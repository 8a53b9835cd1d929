"""Summary of latentgrid at the slow preset's step count (issue 13, session 19): merges bench_presets.py results of
``--model latentgrid --steps N`` (one JSON per process), adds the Gaussian model at slow (imported from
``gaussian_kodak_rd_300s.json``, the run README "Presets" uses for slow) and writes BD-rates of latentgrid against
it and against JPEG/WebP/AVIF (``bench_presets.summarise``: the classical curves of ``kodak_rd.json``), the fit's
PSNR at intermediate steps of the same runs (their ``fit_curve``: rounded latents, float weights), JSON + PNG.

    python benchmarks/lg_slow_summary.py IN.json... -o benchmarks/results/latentgrid_slow1600_kodak
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_presets import plot, summarise  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.metrics import bd_rate  # noqa: E402

GAUSSIAN_SLOW = ROOT / "benchmarks" / "results" / "gaussian_kodak_rd_300s.json"
CURVE_STEPS = (350, 1000, 1600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    merged: dict = {"points": {}, "commands": []}
    for path in args.inputs:
        r = json.loads(Path(path).read_text())
        for k, v in r["points"].items():
            merged["points"].setdefault(k, []).extend(v)
        merged["commands"] += r.get("commands", [r.get("command")])
        merged["machine"] = r.get("machine")
    images = sorted({p["image"] for v in merged["points"].values() for p in v})
    gs = json.loads(GAUSSIAN_SLOW.read_text())["per_image"]
    key = "gaussian@slow (--time-budget 300 run)"
    merged["points"][key] = [{"image": im, "target_bpp": p.get("target_bpp"), "bpp": p["bpp"], "psnr": p["psnr"],
                              "seconds": p["encode_s"], "fit_steps": p.get("fit_steps"),
                              "imported_from": str(GAUSSIAN_SLOW.relative_to(ROOT))}
                             for im in images for p in gs[im]["curves"]["inrcodec-gaussian"]]
    merged["gaussian_slow_command"] = json.loads(GAUSSIAN_SLOW.read_text()).get("command")
    summarise(merged)
    vs_gauss: dict = {}
    curves: dict = {}
    for k, pts in merged["points"].items():
        if k == key:
            continue
        for im in images:
            mine = sorted((p["bpp"], p["psnr"]) for p in pts if p["image"] == im)
            ref = sorted((p["bpp"], p["psnr"]) for p in merged["points"][key] if p["image"] == im)
            try:
                vs_gauss.setdefault(k, {})[im] = round(bd_rate(ref, mine), 2)
            except InputError as exc:
                vs_gauss.setdefault(k, {})[im] = f"n/a: {exc}"
            for p in pts:
                if p["image"] != im:
                    continue
                at = {}
                for s in CURVE_STEPS:
                    hit = [c for c in p.get("fit_curve", []) if c[0] == s]
                    if hit:
                        at[s] = hit[0][2]
                curves.setdefault(k, {}).setdefault(im, {})[str(p["target_bpp"])] = at
    merged["bd_rate_vs_gaussian_slow"] = vs_gauss
    merged["fit_psnr_at_steps"] = curves
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(merged, indent=1))
    plot(merged, out.with_suffix(".png"))
    print(json.dumps({"bd_rate_vs": merged["bd_rate_vs"], "vs_gaussian_slow": vs_gauss, "curves": curves},
                     indent=1))


if __name__ == "__main__":
    main()
