"""Where one Gaussian fit step's CPU goes: forward, backward, loss, optimiser, colour solves, rate control.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_gaussian_step.py --image kodak/kodim01 --bpp 0.6 \\
        --steps 800 -o benchmarks/results/profile_gaussian_step_kodim01
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_gaussian_step.py --image photos/wikimedia_044 \\
        --bpp 0.4 --steps 150 -o benchmarks/results/profile_gaussian_step_wikimedia_044

One ``compress(image, bpp=R, steps=S, tile=False)`` in this process, one torch thread, with the rasteriser's
autograd forward/backward, the loss, Adam and the fit's phases (placement, colour solves, rate control at QAT,
finalize, the codec's rate search) timed by wrapping them, in CPU seconds (``time.process_time``) beside wall
seconds. The rasteriser's rate is given as evaluated (Gaussian, pixel) pairs per CPU second, where the pairs are
those inside the cutoff ellipse (exactly what the kernels sum: counted with the torch reference's enumeration at a
few sampled steps) -- the kernels also touch the lanes of a 16-pixel tile row outside the ellipse, which this
rate does not count. The load average is stored: the machine is shared (timings under contention).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import codec  # noqa: E402
from inrcodec.kernels import gaussian_raster as GR  # noqa: E402
from inrcodec.models import gaussian as G  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DATA = ROOT.parent / "shared" / "data"

phases: dict[str, list[float]] = {}  # label -> [calls, cpu_s, wall_s]


def _add(label: str, cpu: float, wall: float) -> None:
    d = phases.setdefault(label, [0, 0.0, 0.0])
    d[0] += 1
    d[1] += cpu
    d[2] += wall


def wrap(obj, name: str, label: str) -> None:
    f = getattr(obj, name)

    def timed(*a, **k):
        c, t = time.process_time(), time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            _add(label, time.process_time() - c, time.perf_counter() - t)

    setattr(obj, name, timed if not isinstance(f, staticmethod) else staticmethod(timed))


def pairs_in_ellipse(means: torch.Tensor, chol: torch.Tensor, h: int, w: int) -> int:
    """(Gaussian, pixel) pairs inside the cutoff, enumerated as the torch reference does (exact count)."""
    s = GR.gaussian_setup(means, chol, h, w)
    idx = torch.nonzero(s["valid"]).flatten()
    total = 0
    for a in range(0, idx.numel(), 2048):
        sel = idx[a:a + 2048]
        x0, x1, y0, y1 = s["x0"][sel], s["x1"][sel], s["y0"][sel], s["y1"][sel]
        bw, bh = x1 - x0 + 1, y1 - y0 + 1
        cnt = bw * bh
        gid = torch.repeat_interleave(torch.arange(len(cnt)), cnt)
        k = torch.arange(gid.numel()) - (torch.cumsum(cnt, 0) - cnt)[gid]
        dx = ((x0[gid] + k % bw[gid]).float() + 0.5) - s["mx"][sel][gid]
        dy = ((y0[gid] + k // bw[gid]).float() + 0.5) - s["my"][sel][gid]
        q = GR._q(s["A"][sel][gid], s["B"][sel][gid], s["C"][sel][gid], dx, dy)
        total += int((q <= GR.QMAX).sum())
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodak/kodim01", help="path under ../shared/data, without .png")
    ap.add_argument("--bpp", type=float, default=0.6)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--sample-every", type=int, default=100, help="count in-ellipse pairs every N forwards")
    ap.add_argument("--save-params", type=Path, default=None, help="save the trained float params (.pt) here")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)

    sig = load(DATA / f"{args.image}.png")
    h, w = sig.data.shape[:2]
    load0 = os.getloadavg()
    fwd_calls = {"n": 0, "pairs": [], "samples": []}
    orig_fwd = GR._CpuRaster.forward

    def fwd(ctx, means, chol, colors, height, width, keep_bins):
        fwd_calls["n"] += 1
        if keep_bins and (fwd_calls["n"] % args.sample_every == 1):
            # outside the timed region (the wrapper below times only orig_fwd); subtracted from the totals
            c = time.process_time()
            fwd_calls["samples"].append((fwd_calls["n"], pairs_in_ellipse(means, chol, height, width),
                                         int(means.shape[0])))
            _add("pair_counting (not part of the encode)", time.process_time() - c, 0.0)
        c, t = time.process_time(), time.perf_counter()
        out = orig_fwd(ctx, means, chol, colors, height, width, keep_bins)
        _add("raster_forward", time.process_time() - c, time.perf_counter() - t)
        return out

    GR._CpuRaster.forward = staticmethod(fwd)
    wrap(GR._CpuRaster, "backward", "raster_backward")
    wrap(torch.optim.Adam, "step", "adam_step")
    wrap(G, "place_gaussians", "placement")
    wrap(G, "solve_colors", "colour_solves")
    wrap(G.GaussianImage, "choose_steps", "rate_control_at_qat")
    wrap(G.GaussianImage, "finalize", "finalize")
    wrap(G.GaussianImage, "after_step", "after_step")
    wrap(codec, "_search_quality", "rate_search")
    import inrcodec.fit as fit_module

    wrap(fit_module, "evaluate_psnr", "evaluate_psnr")
    saved = {}
    orig_final = G.GaussianImage.finalize

    def finalize(self):
        m, c, col = (t.detach().clone() for t in self.active_params())
        saved.update(means=m, chol=c, colors=col, target=self._target.clone())
        return orig_final(self)

    G.GaussianImage.finalize = finalize

    c0, t0 = time.process_time(), time.perf_counter()
    res = codec.compress(sig, bpp=args.bpp, steps=args.steps, tile=False, seed=0)
    cpu_total, wall_total = time.process_time() - c0, time.perf_counter() - t0
    counting = phases.pop("pair_counting (not part of the encode)", [0, 0.0, 0.0])[1]
    cpu_total -= counting  # the profiler's own pair counting
    wall_total -= counting
    r = res.report
    if args.save_params:
        torch.save(saved, args.save_params)

    # Rasteriser passes inside the Adam loop = fit steps (+ evaluations); the rest are colour solves etc.
    steps = r["fit_steps"]
    mp = h * w / 1e6
    fwd_ph = phases.get("raster_forward", [0, 0, 0])
    bwd_ph = phases.get("raster_backward", [0, 0, 0])
    mean_pairs = sum(p for _, p, _ in fwd_calls["samples"]) / max(len(fwd_calls["samples"]), 1)
    out = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "image": args.image, "shape": [h, w], "megapixels": mp, "target_bpp": args.bpp,
        "threads": torch.get_num_threads(), "bpp": r["bpp"], "psnr": r["psnr"], "fit_steps": steps,
        "fit_psnr_unquantised": r["fit_psnr_unquantised"], "gaussians": len(saved.get("means", [])),
        "cpu_s_total": cpu_total, "wall_s_total": wall_total, "pair_counting_cpu_s_excluded": counting,
        "kernel_path": "direct exp (GR_NO_FACTOR=1)" if os.environ.get("GR_NO_FACTOR") == "1" else "default",
        "phases": {k: {"calls": v[0], "cpu_s": v[1], "wall_s": v[2], "cpu_share": v[1] / cpu_total}
                   for k, v in sorted(phases.items(), key=lambda kv: -kv[1][1])},
        "per_pass_ms": {"forward_cpu": 1e3 * fwd_ph[1] / max(fwd_ph[0], 1),
                        "backward_cpu": 1e3 * bwd_ph[1] / max(bwd_ph[0], 1)},
        "pair_samples": [{"forward_call": n, "pairs_in_ellipse": p, "gaussians": g}
                         for n, p, g in fwd_calls["samples"]],
        "mean_pairs_in_ellipse": mean_pairs,
        "pairs_per_pixel": mean_pairs / (h * w),
        "forward_pairs_per_cpu_s": mean_pairs / max(fwd_ph[1] / max(fwd_ph[0], 1), 1e-9),
        "backward_pairs_per_cpu_s": mean_pairs / max(bwd_ph[1] / max(bwd_ph[0], 1), 1e-9),
        "cpu_s_per_step_per_mp": cpu_total / max(steps, 1) / mp,
        "machine": "2-core shared dev machine (AVX2, no AVX-512), torch " + torch.__version__,
        "load_average_start": load0, "load_average_end": os.getloadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.output.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k not in ("pair_samples",)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
