"""Render speed of the 2D Gaussian rasteriser: compiled CPU kernel vs the torch reference.

Scene: 768x512 RGB, 20000 Gaussians spread over the image, per-axis std log-uniform in [1, 5] px with random
shear (a fitted GaussianImage-style cloud of this size has similar footprints: about 9 Gaussians per pixel
inside their 3-sigma ellipses). Timings are wall-clock medians of repeated calls after one warm-up, plus the
median process CPU time (all threads): the machine is shared with other jobs, so the load average before and
after is recorded too, and wall-clock numbers are only as good as the quietest moment.

    .venv/bin/python benchmarks/bench_raster.py [--repeats 15] [--out benchmarks/results/raster_cpu.json]

Writes JSON with the command, machine, settings and per-case medians (ms) and frames per second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# libgomp (shipped inside torch and shared with our kernel) spin-waits 300k iterations by default, which on a
# machine shared with other busy jobs burns the time slices the other thread needs (measured here: 2 threads
# 3x slower than 1). Read once when torch loads libgomp, so it must be set before `import torch`; recorded in
# the JSON. Results are identical whatever the thread count.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import count_pairs, kernel_status, rasterize_gaussians  # noqa: E402


def scene(n: int, h: int, w: int, c: int, smin: float, smax: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 2, generator=g) * torch.tensor([float(w), float(h)])
    s = torch.exp(torch.empty(n, 2).uniform_(math.log(smin), math.log(smax), generator=g))
    chol = torch.stack([s[:, 0], torch.randn(n, generator=g) * s.mean(1) * 0.5, s[:, 1]], 1)
    colors = torch.rand(n, c, generator=g) * 0.3
    return means, chol, colors


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU time (all threads) per call, in ms."""
    fn()  # warm-up (thread pool start, page faults)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def bench_case(backend: str, means, chol, colors, h, w, repeats: int) -> dict:
    def fwd():
        with torch.no_grad():
            rasterize_gaussians(means, chol, colors, h, w, backend=backend)

    params = [t.clone().requires_grad_(True) for t in (means, chol, colors)]
    upstream = torch.randn(h, w, colors.shape[1], generator=torch.Generator().manual_seed(1))

    def fwd_bwd():
        for p in params:
            p.grad = None
        out = rasterize_gaussians(*params, h, w, backend=backend)
        out.backward(upstream)

    f, fc = median_ms(fwd, repeats)
    fb, fbc = median_ms(fwd_bwd, repeats)
    return {"forward_ms": round(f, 3), "forward_fps": round(1e3 / f, 2),
            "forward_backward_ms": round(fb, 3), "forward_backward_per_s": round(1e3 / fb, 2),
            "forward_cpu_time_ms": round(fc, 3), "forward_backward_cpu_time_ms": round(fbc, 3),
            "repeats": repeats}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> dict:
    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "git_commit": commit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15, help="timed calls per case for the compiled kernel")
    ap.add_argument("--torch-repeats", type=int, default=3, help="timed calls per case for the torch reference")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "raster_cpu.json")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. what else ran meanwhile)")
    args = ap.parse_args()

    h, w, c, n = 512, 768, 3, 20000
    means, chol, colors = scene(n, h, w, c, 1.0, 5.0)
    status = kernel_status()
    if status["cpu_library"] is None:
        raise SystemExit(f"compiled CPU kernel unavailable: {status['cpu_error']}")
    threads = torch.get_num_threads()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results = {}
    for nt in sorted({1, threads}):
        torch.set_num_threads(nt)
        results[f"cpu_kernel_{nt}_threads"] = bench_case("cpu", means, chol, colors, h, w, args.repeats)
    torch.set_num_threads(threads)
    results[f"torch_reference_{threads}_threads"] = bench_case("torch", means, chol, colors, h, w,
                                                               args.torch_repeats)
    # A denser, finer cloud, as after longer fits (kernel only: the reference would take minutes).
    m2, c2, col2 = scene(60000, h, w, c, 0.7, 3.0, seed=1)
    results[f"cpu_kernel_{threads}_threads_60k_small"] = bench_case("cpu", m2, c2, col2, h, w, args.repeats)
    elapsed = time.perf_counter() - t0

    report = {
        "benchmark": "2D Gaussian rasterisation (accumulated sum), render speed",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "note": args.note,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "kernel": {"simd": status["cpu_simd"], "openmp": status["cpu_openmp"],
                   "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT")},
        "scene": {"height": h, "width": w, "channels": c, "gaussians": n, "std_px": [1.0, 5.0],
                  "tile_gaussian_pairs": count_pairs(means, chol, h, w)},
        "scene_60k_small": {"gaussians": 60000, "std_px": [0.7, 3.0],
                            "tile_gaussian_pairs": count_pairs(m2, c2, h, w)},
        "default_threads": threads,
        "results": results,
        "speedup_forward_vs_torch": round(results[f"torch_reference_{threads}_threads"]["forward_ms"]
                                          / results[f"cpu_kernel_{threads}_threads"]["forward_ms"], 1),
        "speedup_forward_backward_vs_torch": round(
            results[f"torch_reference_{threads}_threads"]["forward_backward_ms"]
            / results[f"cpu_kernel_{threads}_threads"]["forward_backward_ms"], 1),
        "seconds": round(elapsed, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
