"""The CPU rasteriser's factorised weights against its direct per-pixel exp, on a fitted Gaussian set.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_gaussian_step.py --image kodak/kodim01 --bpp 0.6 \\
        --steps 800 --save-params /tmp/kodim01_06.pt -o /tmp/profile
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_raster_factor.py --params /tmp/kodim01_06.pt \\
        -o benchmarks/results/raster_factor_kodim01

Forward and forward + backward (with the MSE loss against the image, as a fit step does) of the trained float set
that the fit hands to ``finalize``, one torch thread, the two kernel paths interleaved (``GR_NO_FACTOR`` is read
on every call) so that both see the same load of the shared machine. Medians of CPU milliseconds
(``time.process_time``) beside wall ones. The rate is (Gaussian, pixel) pairs inside the cutoff per CPU second,
and, for what the arithmetic allows, the fp32 matmul rate of the same thread (``torch.mm``, 1024^2): the kernel's
useful work per evaluated 8-lane vector is ~15 flops per lane forward (q: 4, mask: 2, weight: 3, colours: 6).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import gaussian_raster as GR  # noqa: E402
from inrcodec.kernels import kernel_status, rasterize_gaussians  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402


def bbox_row_vectors(means, chol, h, w) -> int:
    """8-lane row vectors in the Gaussians' bboxes: an upper bound of what the tile loops evaluate."""
    s = GR.gaussian_setup(means, chol, h, w)
    v = s["valid"]
    return int((((s["x1"] // 8) - (s["x0"] // 8) + 1) * (s["y1"] - s["y0"] + 1))[v].sum())


def matmul_gflops(repeats: int = 5) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    best = []
    for _ in range(repeats):
        c = time.process_time()
        torch.mm(a, b)
        best.append(time.process_time() - c)
    return 2 * 1024**3 / statistics.median(best) / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, required=True, help=".pt from profile_gaussian_step.py --save-params")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = torch.load(args.params)
    target = d["target"]
    h, w = target.shape[:2]
    means, chol, colors = d["means"], d["chol"], d["colors"]
    load0 = os.getloadavg()

    def forward():
        with torch.no_grad():
            rasterize_gaussians(means, chol, colors, h, w, backend="cpu")

    def step():
        m, c, col = (t.clone().requires_grad_(True) for t in (means, chol, colors))
        torch.mean((rasterize_gaussians(m, c, col, h, w, backend="cpu") - target) ** 2).backward()

    paths = {"direct": "1", "factorised": "0"}
    times = {p: {"forward": ([], []), "forward_backward": ([], [])} for p in paths}
    for _ in range(args.repeats):
        for name, flag in paths.items():
            os.environ["GR_NO_FACTOR"] = flag
            for case, fn in (("forward", forward), ("forward_backward", step)):
                c, t = time.process_time(), time.perf_counter()
                fn()
                times[name][case][0].append(time.process_time() - c)
                times[name][case][1].append(time.perf_counter() - t)
    os.environ.pop("GR_NO_FACTOR")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from profile_gaussian_step import pairs_in_ellipse

    pairs = pairs_in_ellipse(means, chol, h, w)
    vectors = bbox_row_vectors(means, chol, h, w)
    peak = matmul_gflops()
    out = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "params": str(args.params),
           "shape": [h, w], "gaussians": int(means.shape[0]), "pairs_in_ellipse": pairs,
           "bbox_row_vectors_upper_bound": vectors, "threads": 1, "repeats": args.repeats,
           "matmul_fp32_gflops_1_thread": peak, "kernel": kernel_status(),
           "machine": "2-core shared dev machine (AVX2, no AVX-512)", "load_average_start": load0,
           "load_average_end": os.getloadavg(), "paths": {}}
    for name in paths:
        r = {}
        for case, (cpu, wall) in times[name].items():
            ms = 1e3 * statistics.median(cpu)
            r[case] = {"cpu_ms_median": ms, "wall_ms_median": 1e3 * statistics.median(wall),
                       "cpu_ms_min": 1e3 * min(cpu), "pairs_per_cpu_s": pairs / (ms / 1e3)}
        r["forward"]["useful_gflops_upper_bound"] = vectors * 8 * 15 / (r["forward"]["cpu_ms_median"] / 1e3) / 1e9
        r["forward"]["share_of_matmul_rate"] = r["forward"]["useful_gflops_upper_bound"] / peak
        out["paths"][name] = r
    f, dr = out["paths"]["factorised"], out["paths"]["direct"]
    out["speedup"] = {c: dr[c]["cpu_ms_median"] / f[c]["cpu_ms_median"] for c in ("forward", "forward_backward")}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.output.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
