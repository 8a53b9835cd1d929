"""Where an ``mcvideo`` encode's CPU goes, per stage: one ``compress_video`` of an excerpt of the shared clip (the
path of ``inrcodec fit clip --bpp R``), the stages timed by wrapping the functions that make them (CPU seconds of
the process, nested as a tree: ``encode_gop/residual_step_search/closed_loop``), plus cProfile's top functions of
the GOP encodes.

    # the issue's size (640x480, 100 frames), one worker, torch on one thread, intra fits of 300 steps:
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/profile_video_encode.py --size 640x480 --frames 100 \\
        --rates 0.02,0.1 --steps 300 --workers 1 -o benchmarks/results/video_encode_profile_640x480

The excerpt (``bench_video.excerpt``) is cached as ``/tmp/inrcodec_excerpt_WxH_N.npy`` so that every run codes the
same frames. ``--steps`` fixes the intra fits (without it they fill the default time budget, 40 s per megapixel
per GOP, and the profile measures only that budget).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import shlex
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_video import excerpt, git_commit  # noqa: E402


def cached_excerpt(clip: Path, size: tuple[int, int] | None, frames: int, start: int = 0):
    """``bench_video.excerpt`` of the clip, written once to /tmp as .npy (every run codes the same frames)."""
    from inrcodec.signal import Signal

    tag = "native" if size is None else f"{size[0]}x{size[1]}"
    path = Path("/tmp") / f"inrcodec_excerpt_{tag}_{start}_{frames}.npy"
    meta_path = path.with_suffix(".json")
    if not path.exists():
        sig = excerpt(clip, start, frames, size)
        np.save(path, sig.data)
        meta_path.write_text(json.dumps(sig.metadata, default=str))
    meta = json.loads(meta_path.read_text())
    return Signal(np.load(path), kind="video", metadata=meta), str(path)


class StageTimer:
    """Inclusive CPU seconds (process-wide: every thread) and calls per path of wrapped stages, per thread stack."""

    def __init__(self):
        self.cpu = defaultdict(float)
        self.wall = defaultdict(float)
        self.calls = defaultdict(int)
        self.local = threading.local()

    def wrap(self, module, attr: str, name: str) -> None:
        fn = getattr(module, attr)

        @functools.wraps(fn)
        def timed(*a, **k):
            stack = getattr(self.local, "stack", None)
            if stack is None:
                stack = self.local.stack = []
            stack.append(name)
            path = "/".join(stack)
            c0, t0 = time.process_time(), time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.cpu[path] += time.process_time() - c0
                self.wall[path] += time.perf_counter() - t0
                self.calls[path] += 1
                stack.pop()

        setattr(module, attr, timed)

    def table(self) -> dict:
        out = {}
        for path in sorted(self.cpu):
            children = sum(v for p, v in self.cpu.items() if p.startswith(path + "/") and p.count("/") ==
                           path.count("/") + 1)
            out[path] = {"cpu_s": round(self.cpu[path], 2), "self_cpu_s": round(self.cpu[path] - children, 2),
                         "wall_s": round(self.wall[path], 2), "calls": self.calls[path]}
        return out


def instrument(timer: StageTimer, profiles: list | None) -> None:
    import inrcodec.codec as codec
    from inrcodec import video_codec
    from inrcodec.models import mcdct2, mcmotion, mcorder, mcvideo

    timer.wrap(mcorder, "motion_fields", "dis_flow")
    timer.wrap(mcvideo, "motion_fields", "dis_flow")
    timer.wrap(mcmotion, "refine_motion", "motion_rd")
    timer.wrap(mcorder, "encode_motion", "motion_coding")
    timer.wrap(mcvideo, "_residual_search_seconds", "residual_time_estimate")
    timer.wrap(codec, "compress", "intra_fit")
    timer.wrap(codec, "decompress", "intra_decode")
    timer.wrap(mcvideo, "_residual_step_for", "residual_step_search")
    timer.wrap(mcvideo, "closed_loop", "closed_loop")
    timer.wrap(mcorder, "closed_loop", "hier_loop")
    timer.wrap(mcdct2, "analyse", "analyse")
    timer.wrap(mcdct2, "add", "add")
    timer.wrap(mcdct2, "encode_symbols", "encode_symbols")
    timer.wrap(mcdct2, "estimate_bytes", "estimate_bytes")
    timer.wrap(mcvideo, "block_step_units", "block_steps")
    timer.wrap(mcvideo, "warp", "warp")
    timer.wrap(mcorder, "choose_modes", "choose_modes")
    timer.wrap(mcvideo, "decode_gop", "score_decode")
    timer.wrap(video_codec, "frame_psnrs", "score_psnr")
    enc = mcvideo.encode_gop
    if profiles is None:
        timer.wrap(mcvideo, "encode_gop", "encode_gop")
        return

    @functools.wraps(enc)
    def profiled(*a, **k):  # cProfile sees only the thread that enables it: the GOP's worker thread
        prof = cProfile.Profile()
        prof.enable()
        try:
            return enc(*a, **k)
        finally:
            prof.disable()
            profiles.append(prof)

    mcvideo.encode_gop = profiled
    timer.wrap(mcvideo, "encode_gop", "encode_gop")


def top_functions(profiles: list, n: int = 40) -> list[dict]:
    if not profiles:
        return []
    stats = pstats.Stats(profiles[0], stream=io.StringIO())
    for p in profiles[1:]:
        stats.add(p)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc, "tottime_s": round(tt, 2),
                     "cumtime_s": round(ct, 2)})
    by_tot = sorted(rows, key=lambda r: -r["tottime_s"])[:n]
    by_cum = sorted(rows, key=lambda r: -r["cumtime_s"])[:n]
    return {"by_tottime": by_tot, "by_cumtime": by_cum}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rates", default="0.02,0.1")
    ap.add_argument("--steps", type=int, default=None, help="intra fit steps (default: the time-filled schedule)")
    ap.add_argument("--time-budget", type=float, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-cprofile", action="store_true")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    if not args.clip.exists():
        sys.exit(f"{args.clip} not found (the shared data folder is absent)")
    import torch

    torch.set_num_threads(1)
    from inrcodec.video_codec import compress_video

    size = tuple(int(v) for v in args.size.lower().split("x"))
    clip, cache = cached_excerpt(args.clip, size, args.frames)
    result = {"command": "python benchmarks/profile_video_encode.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
              "commit": git_commit(), "excerpt": cache, "shape": list(clip.data.shape), "runs": []}
    timer, profiles = StageTimer(), []
    instrument(timer, None if args.no_cprofile else profiles)
    for rate in [float(r) for r in args.rates.split(",")]:
        timer.cpu.clear(), timer.wall.clear(), timer.calls.clear(), profiles.clear()
        load0, c0, t0 = os.getloadavg(), time.process_time(), time.perf_counter()
        r = compress_video(clip, None, bpp=rate, steps=args.steps, time_budget=args.time_budget,
                           workers=args.workers)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        rep = {k: v for k, v in r.report.items() if k != "frame_psnr"}
        run = {"rate": rate, "bpp": rep["bpp"], "psnr": rep["psnr"], "psnr_y": rep["psnr_y"], "gops": rep["gops"],
               "encode_cpu_s": round(cpu, 2), "encode_wall_s": round(wall, 2), "loadavg_start": load0,
               "loadavg_end": os.getloadavg(), "stages": timer.table(),
               "top_functions": {} if args.no_cprofile else top_functions(profiles)}
        result["runs"].append(run)
        print(json.dumps({k: v for k, v in run.items() if k != "top_functions"}, indent=1), flush=True)
        Path(args.out + ".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
