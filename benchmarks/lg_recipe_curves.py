"""Quality-vs-steps curves of the latent-grid training recipe (issue 13, item 2): PSNR and real coded bpp of
``compress(..., model="latentgrid", bpp=R, steps=N)`` at fixed step counts, per recipe variant, plus a trace of the
training loss split into distortion and rate (and lambda) over the steps.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/lg_recipe_curves.py --images kodim03,kodim07 --crop 256 \
        --steps 200,500,1000 --rates 0.35 --variants baseline,softround -o benchmarks/results/lg_recipe_crop

A variant is a name from ``VARIANTS`` (overrides of ``inrcodec.models.latentgrid.recipe.Recipe``). Timings are
taken on a 2-core machine shared with other jobs: the load average at each point's start is stored beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import compress, decompress  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from inrcodec.models.latentgrid import model as lg_model  # noqa: E402
from inrcodec.models.latentgrid import recipe as lg_recipe  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"

VARIANTS: dict[str, dict] = {
    "baseline": dict(lg_recipe.BASELINE),  # the recipe before this work (noise, STE at 0.9, dual ascent, latent lr x10)
    "current": {},  # the recipe as it is now (Recipe defaults)
    "zero": dict(init="zero"),  # the starting point before the warm-start work (zero latents, mid-grey synthesis)
    "analysis": dict(init="analysis"),  # warmstart.analysis_init: KLT pyramid latents + near-linear synthesis
}


def crop(sig: Signal, side: int | None) -> Signal:
    if not side:
        return sig
    h, w = sig.data.shape[:2]
    y0, x0 = (h - min(h, side)) // 2, (w - min(w, side)) // 2
    return Signal(np.ascontiguousarray(sig.data[y0:y0 + side, x0:x0 + side]), sig.kind, sig.value_range,
                  dict(sig.metadata))


def run_point(sig, rate, steps, seed, trace_every):
    trace = []
    orig_after = lg_model.LatentGrid.after_step

    def after_step(self, step, target):
        orig_after(self, step, target)
        if step % trace_every == 0 and self._stats is not None:
            pred, ref = self._stats
            trace.append({"step": step, "frac": round(self._frac, 4),
                          "mse": float(torch.mean((pred - ref) ** 2)),
                          "rate_bpp": float(self._rate.detach()) / float(np.prod(self.coord_shape)),
                          "steered_rate_bpp": (self._ema_rate or 0.0) / float(np.prod(self.coord_shape)),
                          "lambda": self.lmbda})

    lg_model.LatentGrid.after_step = after_step
    try:
        load0 = os.getloadavg()[0]
        t, c = time.perf_counter(), time.process_time()
        res = compress(sig, "latentgrid", bpp=rate, steps=steps, seed=seed)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        lg_model.LatentGrid.after_step = orig_after
    dec = decompress(res.data)
    return {"target_bpp": rate, "steps": steps, "seed": seed, "bpp": 8 * len(res.data) / sig.num_pixels,
            "psnr": psnr(sig.data, dec.data), "fit_psnr_unquantised": res.report["fit_psnr_unquantised"],
            "quality": res.report["quality"], "seconds": seconds, "cpu_seconds": cpu, "load_at_start": load0,
            "trace": trace}


def plot(result: dict, path: Path) -> None:
    """Per image: PSNR and coded bpp against fit steps, one line per variant (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = sorted({p["image"] for pts in result["points"].values() for p in pts})
    fig, axes = plt.subplots(2, len(images), figsize=(4.4 * len(images), 6.4), squeeze=False)
    for col, image in enumerate(images):
        for variant, pts in result["points"].items():
            c = sorted((p["steps"], p["psnr"], p["bpp"], p.get("quality", 1.0)) for p in pts
                       if p["image"] == image and p["seed"] == 0)
            if not c:
                continue
            steps, psnrs, bpps, _ = zip(*c)
            axes[0][col].plot(steps, psnrs, "o-", label=variant)
            axes[1][col].plot(steps, bpps, "o-", label=variant)
        target = next(p["target_bpp"] for pts in result["points"].values() for p in pts if p["image"] == image)
        axes[1][col].axhline(target, color="k", lw=0.8, ls="--", label="target")
        axes[1][col].axhspan(0.9 * target, 1.1 * target, color="k", alpha=0.07)
        crop = next(p["crop"] for pts in result["points"].values() for p in pts if p["image"] == image)
        axes[0][col].set_title(f"{image}, {crop}x{crop} crop" if crop else image)
        axes[0][col].set_ylabel("PSNR (dB), decoded file")
        axes[1][col].set_ylabel("bpp (whole file)")
        axes[1][col].set_xlabel("fit steps")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--crop", type=int, default=256, help="centre crop side (0: whole image)")
    ap.add_argument("--steps", default="200,500,1000")
    ap.add_argument("--rates", default="0.35")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default="baseline,current")
    ap.add_argument("--set", action="append", default=[], metavar="NAME:FIELD=VALUE",
                    help="define/extend a variant on the fly, e.g. lr3:latent_lr_factor=3")
    ap.add_argument("--trace-every", type=int, default=25)
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/lg_recipe_crop"))
    ap.add_argument("--plot-only", action="store_true", help="no fits: redraw the PNG from the JSON")
    args = ap.parse_args()
    out = Path(args.out)
    if args.plot_only:
        plot(json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".png"))
        return
    for spec in args.set:
        name, kv = spec.split(":", 1)
        key, value = kv.split("=", 1)
        VARIANTS.setdefault(name, {})[key] = json.loads(value)
    torch.set_num_threads(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_suffix(".json")
    result = json.loads(path.read_text()) if path.exists() else {"points": {}}
    result.setdefault("commands", []).append("python " + " ".join(sys.argv))
    result["machine"] = {"cores": os.cpu_count(), "torch": torch.__version__, "threads": 1,
                         "note": "2 cores shared with 3 other engineers' jobs: timings under contention"}
    default = lg_recipe.RECIPE
    for variant in args.variants.split(","):
        recipe = replace(lg_recipe.Recipe(), **VARIANTS[variant])
        result.setdefault("recipes", {})[variant] = asdict(recipe)
        lg_recipe.RECIPE = recipe
        try:
            for image in args.images.split(","):
                sig = crop(load(DATA / f"{image}.png"), args.crop)
                for rate in [float(r) for r in args.rates.split(",")]:
                    for steps in [int(s) for s in args.steps.split(",")]:
                        for seed in [int(s) for s in args.seeds.split(",")]:
                            p = run_point(sig, rate, steps, seed, args.trace_every)
                            p["image"], p["crop"] = image, args.crop
                            print(variant, json.dumps({k: v for k, v in p.items() if k != "trace"}), flush=True)
                            result["points"].setdefault(variant, []).append(p)
                            path.write_text(json.dumps(result, indent=1))
        finally:
            lg_recipe.RECIPE = default
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    path.write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
