"""Benchmarks of the 2D Gaussian image model (``--model gaussian``) on Kodak, on this machine's CPU.

    .venv/bin/python benchmarks/bench_gaussian.py time32 [--images kodim03,kodim05] [--budget 30] [--threads 1]
    .venv/bin/python benchmarks/bench_gaussian.py speed [--image kodim05] [--bpp 0.5,1.0] [--threads 1,2]

``time32``: fit the *unquantised* representation (no byte target, no final rounding) under a wall-clock budget and
record PSNR against wall-clock time, counted from the start of the content-adaptive placement (placement and
the least-squares colour solve included). Writes ``results/gaussian_time32.json`` and ``.png``.

``speed``: compress one image with the default preset at each rate (encode time), then time decoding (entropy
decode + render, ``codec.decompress``), rendering alone (frames per second at 768x512, no autograd), the
progressive prefixes (``fraction``) and the compiled CPU rasteriser against the torch reference on the same
Gaussians. Writes ``results/gaussian_speed.json``.

The codec's rate-distortion curve against JPEG/WebP/AVIF is measured by ``bench_kodak.py --models gaussian``
(results/gaussian_kodak_rd.*). Timings are medians of repeats on a shared 2-core VM whose load is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # same setting as bench_raster: short OpenMP spin on a shared VM

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_raster import cpu_model  # noqa: E402
from inrcodec import __version__  # noqa: E402
from inrcodec.codec import compress, decompress, load_representation  # noqa: E402
from inrcodec.fit import FitSettings, fit  # noqa: E402
from inrcodec.kernels import rasterize_gaussians  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from inrcodec.models import gaussian as G  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "inrcodec": __version__, "load_average": list(os.getloadavg())}


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


# ---------------------------------------------------------------------------------------------------------------
def time_to_32(args) -> dict:
    torch.set_num_threads(args.threads)
    runs = {}
    for name in args.images.split(","):
        sig = load(DATA / f"{name}.png")
        h, w, _ = sig.data.shape
        n = int(round(h * w / args.pixels_per_gaussian))
        net = G.GaussianImage(G.GaussianConfig(n_gaussians=n), sig.describe())
        net.finalize = lambda: None  # the unquantised representation: no final rounding
        target = torch.from_numpy(sig.normalized())
        t0 = time.perf_counter()
        marks = {}
        init = net.init_from_signal

        def timed_init(t, _init=init):
            _init(t)
            marks["init"] = time.perf_counter() - t0
            with torch.no_grad():
                marks["init_psnr"] = -10 * math.log10(torch.mean((net.render().clamp(0, 1) - t) ** 2).item())

        net.init_from_signal = timed_init
        history = []

        def progress(step, frac, value, elapsed):
            history.append((step, marks["init"] + elapsed, value))

        # the fit's own clock starts after the placement: give it what is left of the budget
        settings = FitSettings(max_steps=10**6, time_budget=None, lr=G.GaussianImage.default_lr, eval_every=10)
        init_estimate = args.budget * 0.08
        settings.time_budget = args.budget - init_estimate
        res = fit(net, target, settings, progress)
        total = time.perf_counter() - t0
        first = next(((s, t, p) for s, t, p in history if p >= args.target), None)
        runs[name] = {
            "gaussians": n, "init_seconds": marks["init"], "init_psnr": marks["init_psnr"], "steps": res.steps,
            "total_seconds": total, "final_psnr": history[-1][2],
            "seconds_to_target": None if first is None else first[1], "step_at_target": None if first is None else first[0],
            "history": [[s, round(t, 3), round(p, 4)] for s, t, p in history],
        }
        print(f"{name}: N={n} init {marks['init']:.1f}s ({marks['init_psnr']:.2f} dB) -> {history[-1][2]:.2f} dB "
              f"after {res.steps} steps, {total:.1f}s; {args.target} dB at "
              f"{'never' if first is None else f'{first[1]:.1f}s'}", flush=True)
    return {"runs": runs}


def plot_time32(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in result["runs"].items():
        hist = np.array(r["history"])
        ax.plot(np.r_[r["init_seconds"], hist[:, 1]], np.r_[r["init_psnr"], hist[:, 2]],
                label=f"{name} ({r['gaussians']} Gaussians)")
    ax.axhline(result["settings"]["target"], color="k", lw=0.8, ls="--")
    ax.axvline(result["settings"]["budget"], color="k", lw=0.8, ls=":")
    ax.set_xlabel("wall-clock seconds (placement + colour solve + Adam), 2-core shared VM")
    ax.set_ylabel("PSNR (dB), unquantised")
    ax.set_title("GaussianImage-style fit on CPU: PSNR vs time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------------------------------
def speed(args) -> dict:
    from inrcodec.kernels import gaussian_raster as gr

    sig = load(DATA / f"{args.image}.png")
    h, w, _ = sig.data.shape
    out: dict = {"image": args.image, "shape": [h, w], "rates": {}}
    torch.set_num_threads(1)
    for rate in [float(r) for r in args.bpp.split(",")]:
        t = time.perf_counter()
        res = compress(sig, "gaussian", bpp=rate, seed=0)
        enc = time.perf_counter() - t
        data = res.data
        entry = {"encode_seconds": enc, "bpp": res.report["bpp"], "psnr": res.report["psnr"],
                 "fit_seconds": res.report["fit_seconds"], "fit_steps": res.report["fit_steps"]}
        _, net = load_representation(data)
        entry["gaussians"] = int(net.means.shape[0])
        for threads in [int(x) for x in args.threads.split(",")]:
            torch.set_num_threads(threads)
            dec, _ = timed(lambda: decompress(data), args.repeats)
            ent, _ = timed(lambda: load_representation(data), args.repeats)
            with torch.no_grad():
                ren, _ = timed(lambda: net.render(), args.repeats)
            entry[f"threads_{threads}"] = {"decode_ms": 1e3 * dec, "entropy_decode_ms": 1e3 * ent,
                                           "render_ms": 1e3 * ren, "render_fps": 1.0 / ren}
            print(f"{args.image} {rate} bpp ({entry['gaussians']} Gaussians) threads {threads}: decode "
                  f"{1e3 * dec:.1f} ms (entropy + setup {1e3 * ent:.1f} ms), render {1e3 * ren:.1f} ms = "
                  f"{1 / ren:.0f} FPS", flush=True)
        torch.set_num_threads(1)
        entry["progressive"] = {str(f): psnr(sig.data, decompress(data, fraction=f).data) for f in (0.25, 0.5, 0.75, 1.0)}
        # kernel vs torch reference on these Gaussians (forward, and forward + backward)
        means, chol, colors = (t.detach().clone() for t in (net.means, net.chol, net.colors))
        kern = {}
        for backend, reps in (("cpu", args.repeats), ("torch", 3)):
            with torch.no_grad():
                f, _ = timed(lambda: rasterize_gaussians(means, chol, colors, h, w, backend=backend), reps)
            p = [x.clone().requires_grad_(True) for x in (means, chol, colors)]

            def fb():
                img = rasterize_gaussians(*p, h, w, backend=backend)
                img.sum().backward()

            fbt, _ = timed(fb, reps)
            kern[backend] = {"forward_ms": 1e3 * f, "forward_backward_ms": 1e3 * fbt}
        kern["speedup_forward"] = kern["torch"]["forward_ms"] / kern["cpu"]["forward_ms"]
        kern["speedup_forward_backward"] = kern["torch"]["forward_backward_ms"] / kern["cpu"]["forward_backward_ms"]
        kern["threads"] = 1
        kern["simd"] = gr._loader.status().get("cpu_simd") if hasattr(gr._loader, "status") else None
        entry["kernel_vs_torch"] = kern
        print(f"  progressive PSNR {entry['progressive']}; kernel speed-up fwd {kern['speedup_forward']:.0f}x, "
              f"fwd+bwd {kern['speedup_forward_backward']:.0f}x", flush=True)
        out["rates"][str(rate)] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("time32")
    a.add_argument("--images", default="kodim03,kodim07,kodim12,kodim05")
    a.add_argument("--budget", type=float, default=30.0)
    a.add_argument("--target", type=float, default=32.0)
    a.add_argument("--pixels-per-gaussian", type=float, default=12.0)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("-o", "--out", type=Path, default=RESULTS / "gaussian_time32")
    b = sub.add_parser("speed")
    b.add_argument("--image", default="kodim05")
    b.add_argument("--bpp", default="0.5,1.0")
    b.add_argument("--threads", default="1,2")
    b.add_argument("--repeats", type=int, default=15)
    b.add_argument("-o", "--out", type=Path, default=RESULTS / "gaussian_speed")
    args = ap.parse_args()
    t0 = time.perf_counter()
    before = machine()
    if args.what == "time32":
        result = time_to_32(args)
        result["settings"] = {"budget": args.budget, "target": args.target,
                              "pixels_per_gaussian": args.pixels_per_gaussian, "threads": args.threads}
    else:
        result = speed(args)
        result["settings"] = {"repeats": args.repeats, "threads": args.threads}
    result.update({"benchmark": f"gaussian {args.what}",
                   "command": "python benchmarks/bench_gaussian.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                   "machine": before, "load_average_after": list(os.getloadavg()),
                   "seconds": time.perf_counter() - t0})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    if args.what == "time32":
        plot_time32(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
