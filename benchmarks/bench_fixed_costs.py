"""Where a Gaussian encode's CPU goes on a large photo, before/after a change, at equal CPU time and equal rate.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fixed_costs.py --photo wikimedia_044 --rates 0.2,0.4 \\
        --cpu-seconds-per-mp 60 --code before=/path/to/old/checkout --code after=. -o benchmarks/results/fixed_costs

Each run is ``inrcodec.compress(photo, bpp=R, time_budget=B, tile=False)`` in a child process whose clocks (the
fit loop's, the codec's and the colour solves') are replaced by that process's CPU time, so that the budget is
CPU seconds: on the shared machine a wall-clock budget hands each run whatever CPU the others leave, and two
runs of one code differ by more than the change. One torch thread. The phases (placement, colour solves,
rate control at QAT, finalize, the codec's rate search) are timed by wrapping the functions; the rest of the fit
is the Adam steps. ``--code NAME=DIR`` runs the package found in DIR (a checkout of another commit).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.signals._atomic import atomic_output  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos"

CHILD = r'''
import json, os, resource, sys, time, types
import numpy as np
from inrcodec import codec
from inrcodec.fit import FitSettings
import inrcodec.fit as fit_module
from inrcodec.models import gaussian as G
from inrcodec.signals import load

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

clock = types.SimpleNamespace(perf_counter=cpu)
fit_module.time = clock
codec.time = clock
if hasattr(G, "time"):
    G.time = clock
phases = {}

def wrap(obj, name, label):
    f = getattr(obj, name)
    def timed(*a, **k):
        t = cpu()
        try:
            return f(*a, **k)
        finally:
            d = phases.setdefault(label, [0, 0.0])
            d[0] += 1
            d[1] += cpu() - t
    setattr(obj, name, timed)

wrap(G, "place_gaussians", "placement")
wrap(G, "solve_colors", "colour_solves")
wrap(G.GaussianImage, "choose_steps", "rate_control_at_qat")
wrap(G.GaussianImage, "finalize", "finalize")
wrap(codec, "_search_quality", "rate_search")
photo, bpp, budget = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
sig = load(photo)
t0 = cpu()
res = codec.compress(sig, bpp=bpp, time_budget=budget, tile=False)
r = res.report
print(json.dumps({"bpp": r["bpp"], "psnr": r["psnr"], "fit_steps": r["fit_steps"], "cpu_s": cpu() - t0,
                  "fit_psnr_unquantised": r["fit_psnr_unquantised"],
                  "phases": {k: {"calls": v[0], "cpu_s": v[1]} for k, v in phases.items()}}))
'''


def run(code_dir: Path, photo: Path, bpp: float, budget: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_dir), "OMP_NUM_THREADS": "1"}
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, "-c", CHILD, str(photo), str(bpp), str(budget)], env=env, cwd=code_dir,
                         capture_output=True, text=True, check=True)
    point = json.loads(out.stdout.strip().splitlines()[-1])
    point.update(target_bpp=bpp, cpu_budget_s=budget, load_start=load, load_end=os.getloadavg()[0])
    return point


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--photo", default="wikimedia_044")
    ap.add_argument("--rates", default="0.4")
    ap.add_argument("--cpu-seconds-per-mp", type=float, default=60.0)
    ap.add_argument("--code", action="append", default=None, help="NAME=DIR, repeatable (default: this checkout)")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "fixed_costs")
    args = ap.parse_args(argv)
    from inrcodec.signals import load

    photo = args.data / f"{args.photo}.png"
    mp = load(photo).num_pixels / 1e6
    budget = args.cpu_seconds_per_mp * mp
    codes = [c.split("=", 1) for c in (args.code or [f"this={ROOT}"])]
    results = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "photo": args.photo,
               "megapixels": mp, "cpu_budget_s": budget, "threads": 1,
               "machine": "2-core shared dev machine (AVX2); budgets in CPU seconds of the encoding process",
               "runs": {}}
    for rate in [float(r) for r in args.rates.split(",")]:
        for name, d in codes:
            p = run(Path(d).resolve(), photo, rate, budget)
            results["runs"].setdefault(name, []).append(p)
            print(name, json.dumps(p), flush=True)
            _write(results, args.output)
    return 0


def _write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(results, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, stacks = [], []
    names = ("placement", "colour_solves", "rate_control_at_qat", "rate_search")  # finalize: its solve + rounding
    for code, pts in results["runs"].items():
        for p in pts:
            labels.append(f"{code}\n{p['target_bpp']} bpp\n{p['psnr']:.2f} dB, {p['fit_steps']} steps")
            ph = p["phases"]
            parts = [ph.get(k, {}).get("cpu_s", 0.0) for k in names]
            stacks.append(parts + [max(p["cpu_s"] - sum(parts), 0.0)])
    fig, ax = plt.subplots(figsize=(1.8 * max(2, len(labels)) + 2, 4.5))
    bottom = [0.0] * len(labels)
    for j, name in enumerate((*names, "Adam steps and the rest")):
        vals = [s[j] for s in stacks]
        ax.bar(range(len(labels)), vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("CPU seconds (1 thread)")
    ax.set_title(f"{results['photo']}: {results['cpu_budget_s']:.0f} CPU-s budget")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
