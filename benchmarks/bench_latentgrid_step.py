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

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import latentgrid_mlp  # noqa: E402
from inrcodec.models import get_model  # noqa: E402
from inrcodec.models.latentgrid import n_context, network_param_count  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


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


def step_flops(cfg, shape) -> dict[str, float]:
    """FLOPs of one training step (forward + backward = 3x the forward's multiply-adds, x2 FLOP per MAC)."""
    n = float(np.prod(shape))
    lat = sum(float(np.prod([-(-s // 2**lvl) for s in shape])) for lvl in range(cfg.levels))

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


def run_steps(net, target, steps: int, threads: int):
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(net.param_groups(1e-2))
    gen = torch.Generator().manual_seed(0)

    def one(frac):
        net.on_progress(frac)
        pred, ref = net.training_batch(target, gen)
        loss = torch.mean((pred - ref) ** 2) + net.regularizer()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        net.after_step(1, target)

    for _ in range(3):
        one(0.5)
    wall, cpu = [], []
    for k in range(steps):
        t, c = time.perf_counter(), time.process_time()
        one(0.5 if k % 2 else 0.95)  # noise phase and straight-through phase alternately
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu, one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodim01")
    ap.add_argument("--bpp", default="0.5,1.0")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--no-reference", action="store_true", help="skip the runs without the compiled kernels")
    ap.add_argument("--reference-threads", default=None,
                    help="thread counts for the torch-reference runs (default: --threads); they are slow")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/latentgrid_step"))
    args = ap.parse_args()

    torch.set_flush_denormal(True)
    sig = load(DATA / f"{args.image}.png")
    desc = sig.describe()
    target = torch.from_numpy(sig.normalized())
    cls = get_model("latentgrid")
    threads = [int(t) for t in args.threads.split(",")]
    result = {
        "command": "python " + " ".join(sys.argv),
        "image": args.image, "shape": list(sig.data.shape),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "kernel": str(getattr(latentgrid_mlp.library(), "_name", None)),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")},
        "load_before": os.getloadavg(),
        "matmul_peak_gflops": {},  # per thread count: (by wall clock, by CPU time per thread)
        "runs": [],
    }
    for t in threads:
        result["matmul_peak_gflops"][t] = matmul_peak(t)
    for bpp in [float(b) for b in args.bpp.split(",")]:
        bits = bpp * sig.num_pixels
        cfg = cls.config_for(desc, bits)
        flops = step_flops(cfg, tuple(desc["shape"][:-1]))
        total_gflop = sum(flops.values()) / 1e9
        ref_threads = [int(t) for t in args.reference_threads.split(",")] if args.reference_threads else threads
        for use_kernel in ([True] if args.no_reference else [True, False]):
            for t in (threads if use_kernel else ref_threads):
                torch.manual_seed(0)
                net = cls(cfg, desc)
                net.set_targets(bits, None)
                net.init_from_signal(target)
                original = latentgrid_mlp.kernel_usable
                if not use_kernel:
                    latentgrid_mlp.kernel_usable = lambda x: False
                try:
                    load0 = os.getloadavg()[0]
                    wall, cpu, one = run_steps(net, target, args.steps, t)
                    profile = None
                    if use_kernel and t == threads[0]:
                        from torch.profiler import ProfilerActivity, profile as prof

                        with prof(activities=[ProfilerActivity.CPU]) as p:
                            for _ in range(3):
                                one(0.5)
                        total = sum(e.self_cpu_time_total for e in p.key_averages())
                        profile = [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4),
                                    "calls_per_step": e.count / 3}
                                   for e in sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:20]]
                finally:
                    latentgrid_mlp.kernel_usable = original
                ms_wall = 1000 * statistics.median(wall)
                ms_cpu = 1000 * statistics.median(cpu) / t
                run = {"bpp": bpp, "config": vars(cfg), "params": network_param_count(cfg),
                       "kernels": use_kernel, "threads": t, "ms_per_step_wall": round(ms_wall, 1),
                       "ms_per_step_cpu_per_thread": round(ms_cpu, 1), "gflop_per_step": round(total_gflop, 3),
                       "gflop_by_part": {k: round(v / 1e9, 3) for k, v in flops.items()},
                       "gflops_wall": round(total_gflop / (ms_wall / 1000), 2),
                       "gflops_cpu": round(total_gflop / (ms_cpu / 1000), 2),
                       "utilisation_of_matmul_peak_wall": round(total_gflop / (ms_wall / 1000)
                                                                / result["matmul_peak_gflops"][t][0], 4),
                       # both idealised to an idle machine: GFLOP / (CPU time / threads), step and matmul alike
                       "utilisation_of_matmul_peak_cpu": round(total_gflop / (ms_cpu / 1000)
                                                               / result["matmul_peak_gflops"][t][1], 4),
                       "load_at_start": load0, "profile_top_ops": profile}
                print(json.dumps({k: v for k, v in run.items() if k not in ("profile_top_ops", "config")}),
                      flush=True)
                result["runs"].append(run)
    result["load_after"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))


def plot(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    labels = [f"{r['bpp']} bpp\n{'kernel' if r['kernels'] else 'torch'}\n{r['threads']} thr" for r in runs]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(runs)), 4))
    x = np.arange(len(runs))
    ax.bar(x - 0.2, [r["ms_per_step_wall"] for r in runs], 0.4, label="wall (shared machine)")
    ax.bar(x + 0.2, [r["ms_per_step_cpu_per_thread"] for r in runs], 0.4, label="CPU time / threads")
    ax.axhline(60, color="k", ls="--", lw=1, label="target 60 ms")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("ms per training step")
    ax.set_yscale("log")
    ax.set_title(f"latentgrid step on {result['image']} ({result['shape'][1]}x{result['shape'][0]}), "
                 f"load {result['load_before'][0]:.1f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
