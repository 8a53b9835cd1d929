"""Rate-distortion and encode seconds of each preset (``compress(..., preset=)``, the path of ``inrcodec fit
--preset``) on Kodak images, with BD-rates against the classical codecs' per-image curves already measured in
``benchmarks/results/kodak_rd.json`` (same images, same measurement conventions: bpp of the whole file, PSNR on
the decoded 8-bit RGB).

    PYTHONPATH=. python benchmarks/bench_presets.py [--images kodim01,kodim03,kodim07] [--presets fast,medium]
        [--rates 0.2,0.35,0.6,1.0] [--model NAME] [--threads 1] [-o benchmarks/results/presets_kodak]

The JSON is rewritten after every encode, so a run cut short keeps what it measured. Each point records the load
average at its start: the machine's 2 cores are shared with other jobs, and a preset's time cap is wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import compress, decompress  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.metrics import bd_rate, psnr  # noqa: E402
from inrcodec.models import get_model  # noqa: E402
from inrcodec.presets import resolve  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"
BASELINES = ROOT / "benchmarks" / "results" / "kodak_rd.json"


def summarise(result: dict) -> None:
    base = json.loads(BASELINES.read_text())["per_image"]
    bd: dict[str, dict[str, dict[str, float | str]]] = {}
    for key, points in result["points"].items():
        by_image: dict[str, list] = {}
        for p in points:
            by_image.setdefault(p["image"], []).append((p["bpp"], p["psnr"]))
        bd[key] = {}
        for codec in ("jpeg", "webp", "avif"):
            per = {}
            for image, pts in by_image.items():
                if len(pts) < 4 or image not in base:
                    continue
                ref = [(q["bpp"], q["psnr"]) for q in base[image]["curves"][codec]]
                try:
                    per[image] = round(bd_rate(ref, sorted(pts)), 2)
                except InputError as exc:
                    per[image] = f"n/a: {exc}"
            nums = [v for v in per.values() if isinstance(v, float)]
            bd[key][codec] = {"per_image": per, "mean": round(float(np.mean(nums)), 2) if nums else None}
    result["bd_rate_vs"] = bd
    result["median_encode_s"] = {k: round(float(np.median([p["seconds"] for p in v])), 1)
                                 for k, v in result["points"].items()}
    result["median_encode_cpu_s"] = {k: round(float(np.median([p["cpu_seconds"] for p in v])), 1)
                                     for k, v in result["points"].items() if all("cpu_seconds" in p for p in v)}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = json.loads(BASELINES.read_text())["per_image"]
    images = sorted({p["image"] for pts in result["points"].values() for p in pts})
    fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 3.6), squeeze=False)
    for ax, image in zip(axes[0], images):
        for codec in ("jpeg", "webp", "avif"):
            c = sorted((q["bpp"], q["psnr"]) for q in base[image]["curves"][codec])
            ax.plot(*zip(*c), "--", lw=1, label=codec)
        for key, pts in result["points"].items():
            c = sorted((p["bpp"], p["psnr"]) for p in pts if p["image"] == image)
            if c:
                ax.plot(*zip(*c), "o-", label=key)
        ax.set_xscale("log")
        ax.set_xlim(0.1, 2)
        ticks = [0.15, 0.2, 0.35, 0.6, 1.0, 1.5]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_title(image)
        ax.set_xlabel("bpp (whole file)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim01,kodim03,kodim07")
    ap.add_argument("--presets", default="fast,medium,slow")
    ap.add_argument("--rates", default="0.2,0.35,0.6,1.0")
    ap.add_argument("--model", default=None, help="model (default: each preset's)")
    ap.add_argument("--time-budget", type=float, default=None, help="override the presets' schedule")
    ap.add_argument("--steps", type=int, default=None, help="override the presets' schedule with N fit steps")
    ap.add_argument("--uncapped", action="store_true",
                    help="run each preset's step count without its wall-clock cap (on a loaded machine the cap, "
                         "not the preset, would decide the result)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per encode")
    ap.add_argument("--note", default="")
    ap.add_argument("--recipe", action="append", default=[], metavar="FIELD=JSON",
                    help="latentgrid: override a field of its training recipe, e.g. init='\"analysis\"'")
    ap.add_argument("--label", default="", help="suffix of the result rows' key (model@preset+LABEL)")
    ap.add_argument("--append", action="store_true", help="add the rows to the output JSON instead of replacing it")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/presets_kodak"))
    ap.add_argument("--import", dest="imports", action="append", default=[], metavar="KEY=JSON",
                    help="add the inrcodec points of a bench_kodak.py result (same images) as row KEY, e.g. "
                         "default-model@medium=benchmarks/results/gaussian_kodak_rd.json")
    ap.add_argument("--summarise-only", action="store_true",
                    help="no encodes: reload the output JSON, apply --import, recompute BD-rates and the plot")
    args = ap.parse_args()
    if args.summarise_only:
        out = Path(args.out)
        result = json.loads(out.with_suffix(".json").read_text())
        images = sorted({p["image"] for pts in result["points"].values() for p in pts})
        for spec in args.imports:
            key, path = spec.split("=", 1)
            src = json.loads(Path(path).read_text())
            pts = []
            for image in images:
                curves = src["per_image"][image]["curves"]
                for p in next(v for k, v in curves.items() if k.startswith("inrcodec-")):
                    pts.append({"image": image, "target_bpp": p.get("target_bpp"), "bpp": p["bpp"],
                                "psnr": p["psnr"], "seconds": p["encode_s"], "decode_s": p["decode_s"],
                                "fit_steps": p.get("fit_steps"), "imported_from": path})
            result["points"][key] = pts
            result.setdefault("imported", {})[key] = {"from": path, "command": src.get("command")}
        summarise(result)
        out.with_suffix(".json").write_text(json.dumps(result, indent=1))
        plot(result, out.with_suffix(".png"))
        return

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": "python " + " ".join(sys.argv), "note": args.note,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__, "threads_per_encode": args.threads},
              "baselines_from": str(BASELINES.relative_to(ROOT)), "points": {}}
    if args.append and out.with_suffix(".json").exists():
        result = json.loads(out.with_suffix(".json").read_text())
        result.setdefault("commands", [result.get("command")]).append("python " + " ".join(sys.argv))
    if args.recipe:
        from dataclasses import replace

        from inrcodec.models.latentgrid import recipe as lg_recipe

        fields = {k: json.loads(v) for k, v in (spec.split("=", 1) for spec in args.recipe)}
        lg_recipe.RECIPE = replace(lg_recipe.RECIPE, **fields)
        result.setdefault("recipes", {})[args.label or "default"] = fields
    for preset in args.presets.split(","):
        key = f"{args.model or 'default-model'}@{preset}" + (f"+{args.label}" if args.label else "")
        result["points"].setdefault(key, [])  # --append: rows of an earlier run with this key stay
        for image in args.images.split(","):
            sig = load(DATA / f"{image}.png")
            for rate in [float(r) for r in args.rates.split(",")]:
                steps = args.steps
                if args.uncapped and steps is None and args.time_budget is None:
                    steps = resolve(sig.kind, sig.num_pixels, preset, args.model, None, None,
                                    lambda m: get_model(m).default_steps).steps
                load0 = os.getloadavg()[0]
                t, c = time.perf_counter(), time.process_time()
                curve = []  # the fit's own evaluations (rounded latents, float weights): PSNR over the schedule

                def on_progress(stage, step, frac, fit_psnr, elapsed, curve=curve):
                    if stage == "fit" and fit_psnr == fit_psnr:
                        curve.append((step, round(elapsed, 2), round(fit_psnr, 3)))

                res = compress(sig, args.model, bpp=rate, preset=preset, time_budget=args.time_budget, steps=steps,
                               progress=on_progress)
                seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - c
                t = time.perf_counter()
                dec = decompress(res.data)
                decode_s = time.perf_counter() - t
                p = {"image": image, "target_bpp": rate, "bpp": 8 * len(res.data) / sig.num_pixels,
                     "psnr": psnr(sig.data, dec.data), "seconds": seconds, "cpu_seconds": cpu_seconds,
                     "decode_s": decode_s,
                     "fit_steps": res.report["fit_steps"], "model": res.report["model"],
                     "target_met": res.report.get("target_met"), "load_at_start": load0,
                     "load_at_end": os.getloadavg()[0], "fit_curve": curve}
                print(key, json.dumps(p), flush=True)
                result["points"][key].append(p)
                summarise(result)
                out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
