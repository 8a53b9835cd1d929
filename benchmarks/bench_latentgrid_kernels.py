"""CPU milliseconds and GFLOP/s of each compiled latent-grid kernel at the shapes of one Kodak training step
(768x512, the 0.5 bpp config: synthesis 7->16->16->3 + two 3x3 residual blocks, context 11->16->16->2 over the 7
levels' latents), one thread; optionally A/B against a library built from other sources, alternated in one process.

    PYTHONPATH=. python benchmarks/bench_latentgrid_kernels.py [--hidden 16] [--reps 5] [--rounds 3]
        [--simd native,avx2,...] [--before-src DIR] [-o OUT.json]

Each kernel call is timed by process CPU time (``time.process_time``): on the shared 2-core machine that is what a
call costs, whatever the load; the load average is stored beside it. ``--before-src DIR``: a directory holding an
older ``latentgrid_cpu.cpp``, built the same way and timed alternately with this tree's (round by round).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import latentgrid_mlp  # noqa: E402
from inrcodec.kernels.latentgrid_arm import arm_rate  # noqa: E402
from inrcodec.kernels.latentgrid_context import context_2d  # noqa: E402
from inrcodec.kernels.latentgrid_conv import residual_block  # noqa: E402
from inrcodec.kernels.latentgrid_mlp import mlp  # noqa: E402

H, W, LEVELS = 512, 768, 7


def cases(hidden: int, arm_hidden: int):
    """name -> (setup() -> callable, GFLOP per call)."""
    g = torch.Generator().manual_seed(0)
    n = H * W

    def lin(i, o):
        m = torch.nn.Linear(i, o)
        with torch.no_grad():
            m.weight.copy_(torch.randn(o, i, generator=g) / i**0.5)
            m.bias.copy_(torch.randn(o, generator=g) * 0.1)
        return m

    synth = [lin(LEVELS, hidden), lin(hidden, hidden), lin(hidden, 3)]
    arm = [lin(11, arm_hidden), lin(arm_hidden, arm_hidden), lin(arm_hidden, 2)]
    x = torch.randn(LEVELS, n, generator=g).t().requires_grad_()
    gout = torch.randn(3, n, generator=g).t()
    synth_macs = n * (LEVELS * hidden + hidden * hidden + hidden * 3)

    def synth_fwd():
        with torch.no_grad():
            mlp(x.detach(), synth, feature_major=True)

    def synth_bwd_setup():
        out = mlp(x, synth, feature_major=True)
        return lambda: out.backward(gout)

    shapes = [(-(-H // 2**lv), -(-W // 2**lv)) for lv in range(LEVELS)]
    lat = [torch.randn(s, generator=g) * 2 for s in shapes]
    n_lat = sum(a * b for a, b in shapes)
    arm_macs = n_lat * (11 * arm_hidden + arm_hidden * arm_hidden + arm_hidden * 2)

    def arm_feats():
        return [context_2d(lv, LEVELS, lat[lv], lat[lv + 1] if lv + 1 < LEVELS else None).detach()
                for lv in range(LEVELS)]

    feats = arm_feats()

    def arm_fwd_bwd():
        total = 0.0
        for lv in range(LEVELS):
            f = feats[lv].requires_grad_()
            y = lat[lv].reshape(-1).requires_grad_()
            total = total + arm_rate(f, y, arm, (-5.0, 7.0))
        total.backward()

    def arm_fwd_only():
        with torch.no_grad():
            for lv in range(LEVELS):
                arm_rate(feats[lv], lat[lv].reshape(-1), arm, (-5.0, 7.0))

    def ctx_fwd():
        with torch.no_grad():
            arm_feats()

    def ctx_bwd_setup():
        ys = [y.detach().clone().requires_grad_() for y in lat]
        outs = [context_2d(lv, LEVELS, ys[lv], ys[lv + 1] if lv + 1 < LEVELS else None) for lv in range(LEVELS)]
        gs = [torch.randn(o.shape[1], o.shape[0], generator=g).t() for o in outs]
        return lambda: torch.autograd.backward(outs, gs)

    def context_model_setup(fused: bool):
        """The whole rate term of a step (every level: context features, context MLP, rate; forward + backward),
        features built inside the fused kernel (lg_arm_rate_ctx2d) or by the context kernel first."""
        from inrcodec.kernels.latentgrid_arm import arm_rate_ctx2d

        def setup():
            ys = [y.clone().requires_grad_() for y in lat]

            def run():
                total = 0.0
                for lv in range(LEVELS):
                    coarse = ys[lv + 1] if lv + 1 < LEVELS else None
                    if fused:
                        total = total + arm_rate_ctx2d(lv, LEVELS, ys[lv], coarse, None, arm, (-5.0, 7.0))
                    else:
                        f = context_2d(lv, LEVELS, ys[lv], coarse)
                        total = total + arm_rate(f, ys[lv].reshape(-1), arm, (-5.0, 7.0))
                total.backward()
            return run
        return setup

    conv_w = [torch.randn(3, 3, 3, 3, generator=g) * 0.1 for _ in range(2)]
    conv_b = [torch.randn(3, generator=g) * 0.1 for _ in range(2)]
    xc = torch.randn(3, H, W, generator=g)
    gc = torch.randn(3, H, W, generator=g)
    conv_macs = 2 * 3 * 3 * 9 * n

    def conv_fwd():
        with torch.no_grad():
            h = xc
            for i in range(2):
                h = residual_block(h, conv_w[i], conv_b[i], i == 0)

    def conv_bwd_setup():
        h = xc.clone().requires_grad_()
        ws = [w.clone().requires_grad_() for w in conv_w]
        o = h
        for i in range(2):
            o = residual_block(o, ws[i], conv_b[i].clone().requires_grad_(), i == 0)
        return lambda: o.backward(gc)

    return {
        "synthesis_mlp_forward": (lambda: synth_fwd, 2 * synth_macs / 1e9),
        "synthesis_mlp_backward": (synth_bwd_setup, 2 * 2 * synth_macs / 1e9 + 2 * synth_macs / 1e9),
        "arm_rate_forward_backward": (lambda: arm_fwd_bwd, 3 * 2 * arm_macs / 1e9),
        "arm_rate_forward_only": (lambda: arm_fwd_only, 2 * arm_macs / 1e9),
        "context_model_fused": (context_model_setup(True), 3 * 2 * arm_macs / 1e9),
        "context_model_unfused": (context_model_setup(False), 3 * 2 * arm_macs / 1e9),
        "context_features_forward": (lambda: ctx_fwd, 0.0),
        "context_features_backward": (ctx_bwd_setup, 0.0),
        "residual_blocks_forward": (lambda: conv_fwd, 2 * conv_macs / 1e9),
        "residual_blocks_backward": (conv_bwd_setup, 2 * 2 * conv_macs / 1e9),
    }


def time_case(setup, reps: int) -> float:
    """Median CPU ms of one call (setup excluded) over ``reps`` calls after one warm-up."""
    fn = setup()
    fn()
    out = []
    for _ in range(reps):
        fn = setup()
        c = time.process_time()
        fn()
        out.append(1000 * (time.process_time() - c))
    return statistics.median(out)


def setup_any(path) -> object:
    """ctypes setup of a library built from this tree's or older sources (an older ABI version, no lg_simd_width)."""
    import ctypes

    lib = ctypes.CDLL(str(path))
    saved = latentgrid_mlp.ABI_VERSION
    latentgrid_mlp.ABI_VERSION = lib.lg_mlp_abi_version()
    try:
        for name in ("lg_simd_width", "lg_arm_rate_ctx2d"):  # newer entry points (not timed for older sources)
            if not hasattr(lib, name):
                setattr(lib, name, lambda *a: 8)
        return latentgrid_mlp._setup(lib)
    finally:
        latentgrid_mlp.ABI_VERSION = saved


def load_variant(src_dir: Path | None, simd: str):
    """The library built from ``src_dir`` (None: this tree) at SIMD level ``simd``."""
    path = latentgrid_mlp.build(src_dir=src_dir, level=simd) if src_dir else latentgrid_mlp.build(level=simd)
    return setup_any(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--arm-hidden", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--simd", default="native", help="comma-separated SIMD levels of this tree's library")
    ap.add_argument("--before-src", default=None, help="directory with an older latentgrid_cpu.cpp to A/B against")
    ap.add_argument("--lib", action="append", default=[], help="NAME=PATH: also time a prebuilt library")
    ap.add_argument("--only", default=None, help="comma-separated kernel names")
    ap.add_argument("-o", "--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    variants = {f"this:{s}": (None, s) for s in args.simd.split(",")}
    if args.before_src:
        variants["before"] = (Path(args.before_src), "native")
    libs = {k: load_variant(*v) for k, v in variants.items()}
    for spec in args.lib:
        name, path = spec.split("=", 1)
        variants[name] = path
        libs[name] = setup_any(path)
    table = cases(args.hidden, args.arm_hidden)
    if args.only:
        table = {k: v for k, v in table.items() if k in args.only.split(",")}
    res = {k: {name: [] for name in table} for k in libs}
    load = [os.getloadavg()[0]]
    cpu0 = time.process_time()
    for _ in range(args.rounds):
        for k, lib in libs.items():
            with latentgrid_mlp.using_library(lib):
                for name, (setup, _) in table.items():
                    try:
                        res[k][name].append(time_case(setup, args.reps))
                    except RuntimeError:  # an entry point older sources lack
                        pass
        load.append(os.getloadavg()[0])
    summary = {k: {name: {"cpu_ms_median": round(statistics.median(v), 2), "cpu_ms_runs": [round(t, 2) for t in v],
                          "gflops": round(table[name][1] / (statistics.median(v) / 1000), 1) if table[name][1] else None}
                   for name, v in r.items() if v} for k, r in res.items()}
    for name in table:
        print(f"{name:28s} " + "  ".join(f"{k}: {summary[k][name]['cpu_ms_median']:7.2f} ms"
                                          + (f" {summary[k][name]['gflops']:5.1f} GF/s" if summary[k][name]['gflops'] else "")
                                          for k in summary if name in summary[k]))
    if args.out:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        Path(args.out).write_text(json.dumps({
            "command": "python " + " ".join(sys.argv), "commit": commit, "shape": [H, W], "levels": LEVELS,
            "hidden": args.hidden, "arm_hidden": args.arm_hidden, "threads": 1, "load_by_round": load,
            "process_cpu_s": round(time.process_time() - cpu0, 1), "variants": {k: str(v) for k, v in variants.items()},
            "kernels": summary}, indent=1))


if __name__ == "__main__":
    main()
