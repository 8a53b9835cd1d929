"""Interpolation filter of mcvideo's motion compensation (issue 11, session 21): is bilinear sampling the limit?

``mcvideo.warp`` samples the reference along the dense field (block vectors interpolated between block centres)
with ``cv2.remap(INTER_LINEAR)``. This swaps the sampler in the closed loop (an experiment: no bitstream carries
another filter) for cv2's bicubic / Lanczos-4, or bilinear followed by a [a, 1 - 2a, a] separable smoothing, and
measures on the predicted frames of ``bench_video_residual.py --variants`` (an intra frame blurred like a low-rate
one, block-32 DIS motion, the P chain, the default residual):

- the open-loop prediction PSNR (each source frame warped from the previous source frame),
- the same with a per-16-px-block oracle choice among the filters (what a per-block switch could win before its
  bits),
- the closed loop's RD at 5 residual steps and its BD-rate (residual bytes vs mean PSNR) against bilinear,
- the CPU ms of one warp at 640x480 (median of 20, one thread).

    python benchmarks/bench_video_interp.py --source shared -o benchmarks/results/video_interp_shared
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_video_residual import _clip  # noqa: E402
from inrcodec.metrics import bd_rate  # noqa: E402
from inrcodec.models import deblock  # noqa: E402
from inrcodec.models import mcvideo as mc  # noqa: E402
from inrcodec.video_codec import frame_psnrs  # noqa: E402

FILTERS = ("linear", "cubic", "lanczos4", "smooth0.0625", "smooth0.125", "smooth0.25")
BILINEAR_WARP = mc.warp


def warp_with(name: str):
    """``mc.warp`` with another sampler (``FILTERS``)."""
    import cv2

    def warp(prev: np.ndarray, vectors: np.ndarray, block: int) -> np.ndarray:
        if name in ("linear",) or name.startswith("smooth"):
            out = BILINEAR_WARP(prev, vectors, block)
            if name.startswith("smooth"):
                a = float(name[len("smooth"):])
                k = np.array([a, 1 - 2 * a, a], np.float32)
                out = cv2.sepFilter2D(out, -1, k, k, borderType=cv2.BORDER_REPLICATE)
            return out
        h, w = prev.shape[:2]
        by, bx = vectors.shape[:2]
        field = vectors.astype(np.float32) / mc.MV_SCALE
        dense = cv2.resize(field, (bx * block, by * block), interpolation=cv2.INTER_LINEAR)[:h, :w]
        ys, xs = mc._pixel_grid(h, w)
        flag = {"cubic": cv2.INTER_CUBIC, "lanczos4": cv2.INTER_LANCZOS4}[name]
        return cv2.remap(prev, xs + dense[..., 0], ys + dense[..., 1], flag, borderMode=cv2.BORDER_REPLICATE)

    return warp


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="shared", help="shared | crop | shapes (bench_video_residual._clip)")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--filters", default=",".join(FILTERS))
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    filters = args.filters.split(",")
    result = {"command": "python benchmarks/bench_video_interp.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
              "loadavg_start": os.getloadavg(), "source": args.source, "frames": args.frames}
    try:
        import subprocess

        result["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                          text=True).stdout.strip()
    except OSError:
        pass
    clip = _clip(args.source, args.frames)
    n, h, w = clip.shape[:3]
    intra = cv2.resize(cv2.resize(clip[0], (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h),
                       interpolation=cv2.INTER_LINEAR)
    vectors = mc.block_motion(mc.dense_flows(clip), 32, h, w)

    # open loop, and the per-block oracle
    b = 16
    by, bx = h // b, w // b
    sse = {f: [] for f in filters}
    open_loop = {}
    for f in filters:
        warp = warp_with(f)
        psnrs = []
        for k in range(1, n):
            pred = warp(clip[k - 1], vectors[k - 1], 32)
            psnrs.append(float(frame_psnrs(clip[k:k + 1], pred[None])[0][0]))
            err = ((pred.astype(np.float64) - clip[k]) ** 2).sum(-1)[:by * b, :bx * b]
            sse[f].append(err.reshape(by, b, bx, b).sum(axis=(1, 3)))
        open_loop[f] = float(np.mean(psnrs))
    stack = np.stack([np.stack(sse[f]) for f in filters])  # (filters, frames, by, bx)
    best = stack.min(axis=0)
    mse = best.sum(axis=(1, 2)) / (by * b * bx * b * 3)
    result["open_loop_psnr"] = open_loop
    result["oracle_16px_psnr"] = float(np.mean(10 * np.log10(255.0**2 / mse)))
    result["oracle_16px_share"] = {f: float(np.mean(stack.argmin(axis=0) == i)) for i, f in enumerate(filters)}
    print(json.dumps({k: result[k] for k in ("open_loop_psnr", "oracle_16px_psnr", "oracle_16px_share")}), flush=True)

    # closed loop
    coder = mc.RESIDUALS[mc.DEFAULT_RESIDUAL]
    curves, rows = {}, []
    for f in filters:
        mc.warp = warp_with(f)
        curves[f] = []
        try:
            for step in (16, 26, 42, 68, 110):
                t0 = time.process_time()
                decoded, syms = mc.closed_loop(intra, clip, vectors, 32, coder, step, deblock.DEFAULT_STRENGTH)
                blob = coder.encode_symbols(syms)
                cpu = time.process_time() - t0
                p = frame_psnrs(clip, decoded)[0][1:]
                point = {"bpp": 8 * len(blob) / ((n - 1) * h * w), "psnr": float(p.mean())}
                curves[f].append(point)
                rows.append({"filter": f, "step": step, "residual_bytes": len(blob), **point, "encode_cpu_s": cpu,
                             "load": os.getloadavg()[0]})
        finally:
            mc.warp = BILINEAR_WARP
        print(f, json.dumps(curves[f]), flush=True)
    result["closed_loop"] = rows
    result["bd_rate_vs_linear"] = {f: bd_rate(curves["linear"], curves[f]) for f in filters if f != "linear"}
    print("BD-rate vs linear", json.dumps(result["bd_rate_vs_linear"]), flush=True)

    # cost of one warp at 640x480
    frame = cv2.resize(clip[0], (640, 480), interpolation=cv2.INTER_AREA)
    field = np.repeat(np.repeat(vectors[0], 2, 0), 2, 1)[:-(-480 // 32), :-(-640 // 32)]
    cost = {}
    for f in filters:
        warp = warp_with(f)
        times = []
        for _ in range(20):
            t0 = time.process_time()
            warp(frame, field, 32)
            times.append(time.process_time() - t0)
        cost[f] = 1000 * float(np.median(times))
    result["warp_cpu_ms_640x480"] = cost
    print("warp CPU ms at 640x480", json.dumps(cost), flush=True)
    result["loadavg_end"] = os.getloadavg()
    Path(args.out + ".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
