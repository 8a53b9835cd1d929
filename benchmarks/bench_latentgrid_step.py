"""Milliseconds per latent-grid training step on a Kodak image, achieved GFLOP/s, and its share of a measured
fp32 matmul peak of the same machine; with and without the compiled kernels, at 1 and 2 threads; plus a
torch.profiler breakdown of the step.

    PYTHONPATH=. python benchmarks/bench_latentgrid_step.py [--image kodim01] [--bpp 0.5,1.0] [--steps 12]
        [--threads 1,2] [-o benchmarks/results/latentgrid_step]

Wall-clock and process CPU time are both recorded: the machine's 2 cores are shared with other jobs, so wall time
includes waiting for a core (the load average before and after each run is in the JSON); CPU time per step divided
by the thread count is what the step would take on an idle machine, to within cache and frequency effects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # what the CLI runs with (inrcodec/__init__.py), before torch loads libgomp

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import latentgrid_mlp  # noqa: E402
from inrcodec.models import get_model  # noqa: E402
from inrcodec.models.latentgrid import n_context, network_param_count  # noqa: E402
try:  # (a copy of this script in an older checkout measures the "before": no rate subsampling there)
    from inrcodec.models.latentgrid.context import RATE_SUBSAMPLE, RATE_SUBSAMPLE_MIN  # noqa: E402
except ImportError:
    RATE_SUBSAMPLE, RATE_SUBSAMPLE_MIN = 1, float("inf")
from inrcodec.models.latentgrid.recipe import RECIPE  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"
FIT_LOSS = True  # --old-loss: the loss as the script computed it before session 22 (to compare with older figures)


def matmul_peak(threads: int, n: int = 1536, reps: int = 6) -> tuple[float, float]:
    """Best fp32 matmul GFLOP/s over ``reps`` runs: by wall clock, and by process CPU time per thread (on a
    shared machine the second is the one the CPU-time figures of the step compare with)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best_wall = best_cpu = 0.0
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        a @ b
        wall, cpu = time.perf_counter() - t, (time.process_time() - c) / threads
        best_wall = max(best_wall, 2 * n**3 / wall / 1e9)
        best_cpu = max(best_cpu, 2 * n**3 / max(cpu, 1e-9) / 1e9)
    return best_wall, best_cpu


def step_flops(cfg, shape, rate_subsample: int = 1) -> dict[str, float]:
    """FLOPs of one training step (forward + backward = 3x the forward's multiply-adds, x2 FLOP per MAC); the
    context model counts the latents the rate term evaluates (1 row in ``rate_subsample`` of the large levels)."""
    n = float(np.prod(shape))
    lat = 0.0
    for lvl in range(cfg.levels):
        dims = [-(-s // 2**lvl) for s in shape]
        count = float(np.prod(dims))
        if rate_subsample > 1 and count >= RATE_SUBSAMPLE_MIN and dims[0] >= rate_subsample:
            count *= 1.0 / rate_subsample
        lat += count

    def mlp_macs(d_in, width, layers, d_out):
        total, d = 0, d_in
        for _ in range(layers):
            total += d * width
            d = width
        return total + d * d_out

    synth = mlp_macs(cfg.levels, cfg.hidden, cfg.hidden_layers, cfg.channels) * n
    arm = mlp_macs(n_context(cfg.ndim), cfg.arm_hidden, cfg.arm_layers, 2) * lat
    conv = cfg.conv_layers * cfg.channels**2 * cfg.kernel**cfg.ndim * n
    taps = 4 if cfg.upsampling == "cubic" else 2
    ups = cfg.levels * taps * 2 * n  # separable: about two passes of `taps` MACs per output sample and level
    macs = {"synthesis_mlp": synth, "context_mlp": arm, "convolutions": conv, "upsampling": ups}
    return {k: 3 * 2 * v for k, v in macs.items()}


# profile categories (torch.profiler self time of the ops named; each op's backward node shares its name's prefix)
CATEGORIES = {
    "upsampling": ("_Upsample2d", "_Levels2d", "aten::stack"),
    "synthesis_mlp": ("_MLPFunction",),
    "convolutions": ("_Conv2d", "_Residual2d", "aten::relu", "aten::threshold_backward"),
    "context_model": ("_ArmRate", "_Context2d", "aten::index_select", "aten::index_add_"),
    "noise": ("aten::uniform_", "aten::rand"),
    "optimiser": ("Optimizer.", "aten::_foreach", "aten::lerp", "aten::addcdiv", "aten::addcmul", "aten::sqrt",
                  "aten::_fused_adam"),
}


def categorise(key_averages, step_cpu_ms: float) -> dict[str, float]:
    """ms per step by part of the step: each part's share of the profiler's self time (ops not named in CATEGORIES:
    "other" — torch glue: loss, noise arithmetic, copies, autograd bookkeeping) times the step's measured CPU
    time (the profiler's own times are inflated by its overhead and, on a loaded machine, by waiting)."""
    out = {k: 0.0 for k in CATEGORIES} | {"other": 0.0}
    for e in key_averages:
        cat = next((k for k, names in CATEGORIES.items() if any(e.key.startswith(n) for n in names)), "other")
        out[cat] += e.self_cpu_time_total
    total = sum(out.values()) or 1.0
    return {k: round(v / total * step_cpu_ms, 1) for k, v in out.items()}


def run_steps(net, target, steps: int, threads: int, frac: float):
    """Median CPU and wall time of ``steps`` training steps at schedule progress ``frac`` (after 3 warm-up steps),
    and the median CPU time of the step's phases (forward incl. the rate term, backward, optimiser, after_step)."""
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(net.param_groups(1e-2))
    gen = torch.Generator().manual_seed(0)
    counter = [0]

    def one(frac, phases=None):
        c = [time.process_time()]
        net.on_progress(frac)
        pred, ref = net.training_batch(target, gen)
        if FIT_LOSS:  # what inrcodec/fit.py does: the fused loss, gradient clipping where the model asks for it
            loss = torch.nn.functional.mse_loss(pred, ref)
            extra = net.regularizer()
            loss = loss if extra is None else loss + extra
        else:  # the three-op loss of the figures before session 22
            loss = torch.mean((pred - ref) ** 2) + net.regularizer()
        c.append(time.process_time())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if FIT_LOSS and net.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], net.grad_clip_norm)
        c.append(time.process_time())
        opt.step()
        c.append(time.process_time())
        counter[0] += 1
        net.after_step(counter[0], target)  # a real step counter: includes the steering's rate every 4th step
        c.append(time.process_time())
        if phases is not None:
            for name, a, b in zip(("forward", "backward", "optimiser", "after_step"), c, c[1:]):
                phases.setdefault(name, []).append(b - a)

    for _ in range(3):
        one(frac)
    wall, cpu, phases = [], [], {}
    for k in range(steps):
        t, c = time.perf_counter(), time.process_time()
        one(frac, phases)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    phase_ms = {k: round(1000 * statistics.mean(v) / threads, 1) for k, v in phases.items()}
    return wall, cpu, phase_ms, one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodim01")
    ap.add_argument("--bpp", default="0.5,1.0")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rate-subsample", default=f"{RATE_SUBSAMPLE}",
                    help="row subsampling of the training rate term to measure (1: exact rate every step)")
    ap.add_argument("--no-reference", action="store_true", help="skip the runs without the compiled kernels")
    ap.add_argument("--reference-threads", default=None,
                    help="thread counts for the torch-reference runs (default: --threads); they are slow")
    ap.add_argument("--old-loss", action="store_true",
                    help="torch.mean((pred - ref) ** 2) and no gradient clipping, as before session 22 (fit.py "
                         "uses mse_loss, and clips where the recipe asks)")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/latentgrid_step"))
    args = ap.parse_args()
    global FIT_LOSS
    FIT_LOSS = not args.old_loss

    torch.set_flush_denormal(True)
    sig = load(DATA / f"{args.image}.png")
    desc = sig.describe()
    target = torch.from_numpy(sig.normalized())
    cls = get_model("latentgrid")
    threads = [int(t) for t in args.threads.split(",")]
    subsamples = [int(k) for k in args.rate_subsample.split(",")]
    import subprocess

    cpu0 = time.process_time()
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    result = {
        "command": "python " + " ".join(sys.argv),
        "commit": commit + ("+dirty" if dirty else ""),
        "image": args.image, "shape": list(sig.data.shape),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "kernel": str(getattr(latentgrid_mlp.library(), "_name", None)),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")},
        "loss": "fit.py (mse_loss, clipping)" if FIT_LOSS else "old (mean of squares, no clipping)",
        "load_before": os.getloadavg(),
        "matmul_peak_gflops": {},  # per thread count: (by wall clock, by CPU time per thread)
        "runs": [],
    }
    for t in threads:
        result["matmul_peak_gflops"][t] = matmul_peak(t)
    for bpp in [float(b) for b in args.bpp.split(",")]:
        bits = bpp * sig.num_pixels
        cfg = cls.config_for(desc, bits)
        shape = tuple(desc["shape"][:-1])
        ref_threads = [int(t) for t in args.reference_threads.split(",")] if args.reference_threads else threads
        variants = [(True, t, sub) for sub in subsamples for t in threads]
        if not args.no_reference:
            variants += [(False, t, subsamples[0]) for t in ref_threads]
        for use_kernel, t, sub in variants:
            torch.manual_seed(0)
            net = cls(cfg, desc)
            net.set_targets(bits, None)
            net.init_from_signal(target)
            net.rate_subsample = sub
            original = latentgrid_mlp.kernel_usable
            if not use_kernel:
                latentgrid_mlp.kernel_usable = lambda x: False
            run = {"bpp": bpp, "config": vars(cfg), "params": network_param_count(cfg), "kernels": use_kernel,
                   "threads": t, "rate_subsample": sub, "load_at_start": os.getloadavg()[0], "phases": {}}
            try:
                # the noise phase (90 % of the schedule: the rate term on the row subsample) and the
                # straight-through phase (the last 10 %: exact rate), then their schedule-weighted mean
                for phase, frac in (("noise", 0.5), ("straight_through", 0.95)):
                    wall, cpu, phase_ms, one = run_steps(net, target, args.steps, t, frac)
                    ms_wall = 1000 * statistics.median(wall)
                    ms_cpu = 1000 * statistics.median(cpu) / t
                    flops = step_flops(cfg, shape, sub if phase == "noise" else 1)
                    gflop = sum(flops.values()) / 1e9
                    entry = {"ms_per_step_wall": round(ms_wall, 1), "ms_per_step_cpu_per_thread": round(ms_cpu, 1),
                             "cpu_ms_per_thread_by_phase": phase_ms, "gflop_per_step": round(gflop, 3),
                             "gflop_by_part": {k: round(v / 1e9, 3) for k, v in flops.items()},
                             "gflops_cpu": round(gflop / (ms_cpu / 1000), 2),
                             # idealised to an idle machine: GFLOP / (CPU time / threads), step and matmul alike
                             "utilisation_of_matmul_peak_cpu": round(gflop / (ms_cpu / 1000)
                                                                     / result["matmul_peak_gflops"][t][1], 4)}
                    if use_kernel and t == threads[0]:
                        from torch.profiler import ProfilerActivity, profile as prof

                        with prof(activities=[ProfilerActivity.CPU]) as p:
                            for _ in range(3):
                                one(frac)
                        entry["profile_ms_per_step"] = categorise(p.key_averages(), ms_cpu)
                        total = sum(e.self_cpu_time_total for e in p.key_averages())
                        entry["profile_top_ops"] = [
                            {"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4),
                             "calls_per_step": e.count / 3}
                            for e in sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]]
                    run["phases"][phase] = entry
            finally:
                latentgrid_mlp.kernel_usable = original
            noise, ste = run["phases"]["noise"], run["phases"]["straight_through"]
            w = RECIPE.ste_start
            run["ms_per_step_cpu_per_thread"] = round(w * noise["ms_per_step_cpu_per_thread"]
                                                      + (1 - w) * ste["ms_per_step_cpu_per_thread"], 1)
            run["ms_per_step_wall"] = round(w * noise["ms_per_step_wall"] + (1 - w) * ste["ms_per_step_wall"], 1)
            print(json.dumps({"bpp": bpp, "kernels": use_kernel, "threads": t, "rate_subsample": sub,
                              "ms_cpu": run["ms_per_step_cpu_per_thread"], "ms_wall": run["ms_per_step_wall"],
                              "noise": {k: noise.get(k) for k in ("ms_per_step_cpu_per_thread",
                                                                  "cpu_ms_per_thread_by_phase",
                                                                  "profile_ms_per_step", "gflops_cpu")},
                              "ste": ste["ms_per_step_cpu_per_thread"], "load": run["load_at_start"]}),
                  flush=True)
            result["runs"].append(run)
    result["load_after"] = os.getloadavg()
    result["process_cpu_s"] = round(time.process_time() - cpu0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))


def plot(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    labels = [f"{r['bpp']} bpp\n{'kernel' if r['kernels'] else 'torch'} {r['threads']} thr\nrate 1/{r['rate_subsample']}"
              for r in runs]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(max(10, 1.6 * len(runs) + 5), 4.5))
    x = np.arange(len(runs))
    ax.bar(x - 0.2, [r["ms_per_step_wall"] for r in runs], 0.4, label="wall (shared machine)")
    ax.bar(x + 0.2, [r["ms_per_step_cpu_per_thread"] for r in runs], 0.4, label="CPU time / threads")
    ax.axhline(60, color="k", ls="--", lw=1, label="target 60 ms")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("ms per training step (schedule-weighted)")
    ax.set_yscale("log")
    ax.set_title(f"latentgrid step, {result['image']} ({result['shape'][1]}x{result['shape'][0]}), "
                 f"load {result['load_before'][0]:.1f}", fontsize=9)
    ax.legend(fontsize=7)
    prof = [(lab, r["phases"][ph]["profile_ms_per_step"], ph) for lab, r in zip(labels, runs)
            for ph in ("noise", "straight_through") if "profile_ms_per_step" in r["phases"][ph]]
    bottom = np.zeros(len(prof))
    for cat in list(CATEGORIES) + ["other"]:
        v = np.array([p[cat] for _, p, _ in prof])
        bx.bar(np.arange(len(prof)), v, 0.6, bottom=bottom, label=cat)
        bottom += v
    bx.set_xticks(np.arange(len(prof)), [f"{lab}\n{ph}" for lab, _, ph in prof], fontsize=6)
    bx.set_ylabel("ms per step, 1 thread (profiler self CPU time)")
    bx.set_title("step breakdown", fontsize=9)
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
