"""The Gaussian rasteriser on a CUDA device: speed of our CUDA kernel (and gsplat, and the torch reference where
they run), agreement with the compiled CPU kernel on real-sized scenes, and a plain fitting loop's time per step.

Run on a machine with a GPU (the session's lent H100/H200; `benchmarks/gpu_check.sh` calls it):

    python3 benchmarks/bench_raster_gpu.py --out results/raster_gpu.json [--image kodim07.png]

Scenes (as `bench_raster.py`): 768x512 RGB with 20 000 Gaussians of std 1-5 px, the same with 60 000 of 0.7-3 px,
and a 12-megapixel 4032x3024 RGB scene with the first scene's density (620 000 Gaussians). Per backend: median
forward and forward+backward milliseconds over CUDA events after warm-up. Agreement: the CUDA kernel's image and
gradients against the CPU kernel's (itself held to the torch reference by tests/test_kernels.py), as max
relative differences. Fit: Adam on means/Cholesky factors/colours against an image (a given PNG, else a generated
one) for --fit-steps steps, MSE, milliseconds per step and the PSNR reached, on the GPU and (for comparison, on
the host CPU of the same machine) the CPU kernel. `--device cpu` runs the CPU-side parts only (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import available_backends, count_pairs, kernel_status, rasterize_gaussians  # noqa: E402
from inrcodec.kernels.gaussian_raster import rasterize_torch  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_raster import scene  # noqa: E402


def timed_ms(fn, repeats: int, device: str) -> float:
    """Median milliseconds per call: CUDA events on the GPU, perf_counter on the CPU."""
    fn()
    fn()
    out = []
    for _ in range(repeats):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            out.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out)


def speed(backend: str, means, chol, colors, h, w, repeats: int) -> dict:
    dev = means.device.type
    params = [t.clone().requires_grad_(True) for t in (means, chol, colors)]
    upstream = torch.randn(h, w, colors.shape[1], generator=torch.Generator().manual_seed(1)).to(means.device)

    def fwd():
        with torch.no_grad():
            rasterize_gaussians(means, chol, colors, h, w, backend=backend)

    def fwd_bwd():
        for p in params:
            p.grad = None
        rasterize_gaussians(*params, h, w, backend=backend).backward(upstream)

    f, fb = timed_ms(fwd, repeats, dev), timed_ms(fwd_bwd, repeats, dev)
    return {"forward_ms": round(f, 3), "forward_backward_ms": round(fb, 3), "repeats": repeats}


def grads(backend, means, chol, colors, h, w, upstream):
    m, c, col = (t.detach().clone().requires_grad_(True) for t in (means, chol, colors))
    img = rasterize_gaussians(m, c, col, h, w, backend=backend)
    (img * upstream).sum().backward()
    return [img.detach().cpu(), m.grad.cpu(), c.grad.cpu(), col.grad.cpu()]


def agreement(means, chol, colors, h, w) -> dict:
    """CUDA kernel against the CPU kernel: max |difference| relative to the largest magnitude, per output."""
    up = torch.randn(h, w, colors.shape[1], generator=torch.Generator().manual_seed(3))
    ref = grads("cpu", means, chol, colors, h, w, up)
    got = grads("cuda", *(t.cuda() for t in (means, chol, colors)), h, w, up.cuda())
    again = grads("cuda", *(t.cuda() for t in (means, chol, colors)), h, w, up.cuda())
    out = {}
    for name, a, b in zip(("image", "grad_means", "grad_chol", "grad_colors"), got, ref):
        out[name + "_max_rel_diff"] = float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
    out["cuda_deterministic"] = all(torch.equal(a, b) for a, b in zip(got, again))
    return out


def load_target(path: str | None, device) -> torch.Tensor:
    if path:
        import imageio.v3 as iio

        img = torch.from_numpy(iio.imread(path)[..., :3].astype("float32") / 255.0)
    else:  # a smooth generated image with edges, Kodak-sized
        y, x = torch.meshgrid(torch.linspace(0, 1, 512), torch.linspace(0, 1, 768), indexing="ij")
        img = torch.stack([0.5 + 0.4 * torch.sin(9 * x + 4 * y), (x > 0.4).float() * 0.6 + 0.2 * y,
                           0.5 + 0.3 * torch.cos(13 * x * y)], -1)
    return img.to(device)


def fit(target: torch.Tensor, backend: str, n: int, steps: int, seed: int = 0) -> dict:
    """GaussianImage-style plain fit: random placement, Adam, MSE. Same seed and schedule on every device."""
    h, w, c = target.shape
    g = torch.Generator().manual_seed(seed)
    dev = target.device
    means = (torch.rand(n, 2, generator=g) * torch.tensor([float(w), float(h)])).to(dev).requires_grad_(True)
    s = math.sqrt(h * w / n) * 0.8
    chol = torch.tensor([s, 0.0, s]).repeat(n, 1).to(dev).requires_grad_(True)
    colors = (torch.rand(n, c, generator=g) * 0.1).to(dev).requires_grad_(True)
    opt = torch.optim.Adam([{"params": [means], "lr": 0.5}, {"params": [chol], "lr": 0.05},
                            {"params": [colors], "lr": 0.01}])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((rasterize_gaussians(means, chol, colors, h, w, backend=backend) - target) ** 2)
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    with torch.no_grad():
        mse = float(torch.mean((rasterize_gaussians(means, chol, colors, h, w, backend=backend).clamp(0, 1)
                                - target) ** 2))
    return {"backend": backend, "gaussians": n, "steps": steps, "ms_per_step": round(sec / steps * 1e3, 3),
            "psnr_db": round(-10 * math.log10(max(mse, 1e-12)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--image", default=None, help="target of the fitting loop (else a generated image)")
    ap.add_argument("--fit-steps", type=int, default=1000)
    ap.add_argument("--fit-cpu-steps", type=int, default=100, help="steps of the CPU-kernel fit, for comparison")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_raster_gpu: no CUDA device")
    t_start = time.perf_counter()
    report: dict = {"benchmark": "Gaussian rasteriser on a CUDA device", "command": " ".join(sys.argv),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "host_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if dev == "cuda":
        p = torch.cuda.get_device_properties(0)
        report["gpu"] = {"name": p.name, "multiprocessors": p.multi_processor_count,
                         "memory_gib": round(p.total_memory / 2**30, 1)}
    report["backends"] = available_backends()
    report["kernel_status"] = {k: (str(v)[:300] if v is not None else None) for k, v in kernel_status().items()}
    kernel = "cuda" if dev == "cuda" else "cpu"
    scenes = {"kodak_20k": (20000, 512, 768, 1.0, 5.0, 0), "kodak_60k_small": (60000, 512, 768, 0.7, 3.0, 1),
              "12mp_620k": (620000, 3024, 4032, 1.0, 5.0, 2)}
    results = {}
    for name, (n, h, w, smin, smax, seed) in scenes.items():
        if dev == "cpu" and n > 100000:
            continue
        m, c, col = scene(n, h, w, 3, smin, smax, seed)
        row = {"gaussians": n, "height": h, "width": w, "tile_gaussian_pairs": count_pairs(m, c, h, w)}
        md, cd, cold = (t.to(dev) for t in (m, c, col))
        row[kernel] = speed(kernel, md, cd, cold, h, w, args.repeats)
        if dev == "cuda" and report["backends"].get("gsplat"):
            try:  # alpha compositing, not the same operation: a speed reference only
                row["gsplat_alpha"] = speed("gsplat", md, cd, cold.abs(), h, w, args.repeats)
            except Exception as exc:  # noqa: BLE001 - recorded, the rest still runs
                row["gsplat_alpha"] = {"error": str(exc)[:300]}
        if n <= 20000:
            def ref_fwd():
                with torch.no_grad():
                    rasterize_torch(md, cd, cold, h, w)
            row["torch_reference_forward_ms"] = round(timed_ms(ref_fwd, 3, dev), 1)
        if dev == "cuda":
            row["cuda_vs_cpu_kernel"] = agreement(m, c, col, h, w)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    report["scenes"] = results
    target = load_target(args.image, dev)
    report["fit_image"] = args.image or "generated 768x512"
    report["fit"] = [fit(target, kernel, 20000, args.fit_steps if dev == "cuda" else args.fit_cpu_steps)]
    if dev == "cuda":
        report["fit"].append(fit(target.cpu(), "cpu", 20000, args.fit_cpu_steps))
    print("fit", json.dumps(report["fit"]), flush=True)
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
