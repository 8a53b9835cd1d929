"""Where an image encode's time goes after the fit's Adam loop: the per-pixel cost of the "tail" that a time budget
must leave room for (issue 13: medium's 60 s/MP should bound the whole encode, not only the fit).

    PYTHONPATH=. python benchmarks/profile_encode_tail.py --photo wikimedia_030 --rates 0.1,0.8 --steps 20 \\
        -o benchmarks/results/encode_tail_wikimedia_030

One in-process ``codec.compress(photo, bpp=R, steps=N, tile=False)`` per rate (few steps: the tail does not depend on
them), with wall and CPU seconds (``time.process_time``: all threads) accumulated per stage by wrappers around the
functions that make it up. "tail" = the encode's seconds minus the Adam loop's (the fit's seconds less its post-loop
finalize and last evaluation). Stored per megapixel, with the load and the torch thread count, and the process's
peak RSS after each stage (the first stage whose figure jumps is where the peak is).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from inrcodec import codec, fit as fit_mod  # noqa: E402
from inrcodec.models import gaussian, gaussian_dct, image_dct, image_tx16, residual_loss, restore  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
STAGES: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0.0])  # wall, CPU, calls, peak RSS MB after


def timed(owner, attr: str, label: str, kind: str = "plain") -> None:
    raw = owner.__dict__[attr]
    fn = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw

    @functools.wraps(fn)
    def wrapper(*a, **k):
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            s = STAGES[label]
            s[0] += time.perf_counter() - t
            s[1] += time.process_time() - c
            s[2] += 1
            s[3] = max(s[3], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)

    setattr(owner, attr, classmethod(wrapper) if isinstance(raw, classmethod) else
            staticmethod(wrapper) if isinstance(raw, staticmethod) else wrapper)


def instrument() -> None:
    timed(fit_mod, "_fit", "fit (all)")
    timed(gaussian.GaussianImage, "finalize", "fit: finalize (post-loop)")
    timed(gaussian.GaussianImage, "init_from_signal", "fit: placement")
    timed(gaussian_dct.GaussianDCT, "_decoded_base", "tail: gaussians encode+decode+render (base)")
    timed(image_dct, "raw_coefficients", "tail: raw DCT")
    timed(image_dct, "estimate_bytes", "tail: estimate_bytes (calibration)")
    timed(image_dct, "quantise_raw", "tail: quantise_raw (+RDOQ)")
    timed(image_dct, "best_strength", "tail: best_strength")
    timed(image_dct, "encode_section", "tail: encode_section")
    timed(gaussian_dct.GaussianDCT, "decode", "tail: model decode (kept file)")
    timed(gaussian_dct.GaussianDCT, "render", "tail: render (kept file)")
    timed(codec, "_search_quality", "tail: quality search (all)")
    # the finer stages of session 24's profile (fast preset): the base loss's step estimates, the residual encodes
    timed(gaussian_dct.GaussianDCT, "on_progress", "fit: on_progress (step estimates)")
    timed(residual_loss, "step_for_bytes", "fit: step_for_bytes")
    timed(gaussian_dct.GaussianDCT, "loss", "fit: loss (fwd)")
    timed(gaussian_dct.GaussianDCT, "step_for", "tail: step_for (calibration)")
    timed(image_dct, "encode_residual", "tail: encode_residual (all)")
    timed(image_dct, "quantise_tx16", "tail: quantise_tx16 (tx16 choice)")
    timed(image_dct, "add", "tail: add (inverse + deblock)")
    timed(restore, "choose", "tail: restore.choose (filter fit)")
    timed(image_dct, "raw_coefficients16", "tail: raw DCT 16x16")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", required=True, help="stem in ../shared/data/photos, or kodak/kodimNN")
    ap.add_argument("--rates", default="0.1,0.8")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--model", default="gaussian+dct")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = DATA / (args.photo + ".png" if "/" in args.photo else f"photos/{args.photo}.png")
    signal = load(path)
    mp = signal.num_pixels / 1e6
    instrument()
    runs = []
    for rate in [float(r) for r in args.rates.split(",")]:
        STAGES.clear()
        load0 = os.getloadavg()[0]
        t, c = time.perf_counter(), time.process_time()
        res = codec.compress(signal, args.model, bpp=rate, steps=args.steps, tile=False, seed=args.seed)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        stages = {k: {"wall_s": round(v[0], 3), "cpu_s": round(v[1], 3), "calls": v[2],
                      "process_peak_rss_mb_after": round(v[3], 1)} for k, v in STAGES.items()}
        fit_all = STAGES["fit (all)"]
        post = STAGES["fit: finalize (post-loop)"]
        tail_wall = wall - fit_all[0] + post[0]
        tail_cpu = cpu - fit_all[1] + post[1]
        runs.append({"rate": rate, "bpp": res.report["bpp"], "psnr": res.report["psnr"],
                     "fit_steps": res.report["fit_steps"], "n_gaussians": res.report["config"]["n_gaussians"],
                     "wall_s": wall, "cpu_s": cpu, "tail_wall_s": tail_wall, "tail_cpu_s": tail_cpu,
                     "tail_wall_s_per_mp": tail_wall / mp, "tail_cpu_s_per_mp": tail_cpu / mp,
                     "load_start": load0, "load_end": os.getloadavg()[0], "stages": stages})
        print(json.dumps({k: runs[-1][k] for k in ("rate", "bpp", "psnr", "wall_s", "tail_wall_s",
                                                    "tail_wall_s_per_mp", "tail_cpu_s_per_mp")}), flush=True)
        for k, v in stages.items():
            print(f"   {k:48s} {v['wall_s']:8.2f} s wall {v['cpu_s']:8.2f} CPU-s  x{v['calls']}  "
                  f"peak {v['process_peak_rss_mb_after']:.0f} MB", flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "commit": commit, "photo": args.photo,
           "shape": list(signal.data.shape), "megapixels": mp, "torch_threads": torch.get_num_threads(),
           "machine": "2-core shared dev machine (AMD EPYC, AVX-512)", "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
