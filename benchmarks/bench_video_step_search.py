"""The residual step search of ``mcvideo`` (session 21): the secant search against the bisection before it, on the
same GOPs with the same intra frames (fixed-step fits, seeded: identical in both runs), so that only the search
differs. Per GOP and rate: the closed-loop frames each search ran (the prefix search's and the settling's), CPU
seconds, the GOP's bytes against its share, and the GOP's mean PSNR.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_video_step_search.py --size 640x480 --starts 0,48 \\
        --rates 0.02,0.05,0.1,0.2 --steps 50 -o benchmarks/results/video_step_search_640x480
"""

from __future__ import annotations

import argparse
import functools
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

from profile_video_encode import cached_excerpt, git_commit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=100, help="the excerpt the GOPs are taken from")
    ap.add_argument("--starts", default="0,48", help="first frame of each GOP tried")
    ap.add_argument("--rates", default="0.02,0.05,0.1,0.2")
    ap.add_argument("--steps", type=int, default=50, help="intra fit steps")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from inrcodec.models import mcorder, mcvideo
    from inrcodec.video_codec import frame_psnrs

    size = tuple(int(v) for v in args.size.lower().split("x"))
    clip, cache = cached_excerpt(args.clip, size, args.frames)
    frames_run = [0]

    def counting(fn):
        @functools.wraps(fn)
        def run(intra, frames, *a, **k):
            frames_run[0] += len(frames) - 1
            return fn(intra, frames, *a, **k)
        return run

    mcorder.closed_loop = counting(mcorder.closed_loop)  # the hierarchical loop (mcvideo's delegates to it)
    forward = mcvideo.closed_loop
    rows = []
    for start in [int(s) for s in args.starts.split(",")]:
        for rate in [float(r) for r in args.rates.split(",")]:
            n = mcvideo.gop_for(rate)
            window = clip.data[start:start + n]
            target = rate * window[..., 0].size / 8.0
            row = {"start": start, "rate": rate, "gop": len(window), "target_bytes": target}
            for name, secant in (("bisection", False), ("secant", True)):
                mcvideo.SECANT_SEARCH = secant
                frames_run[0] = 0
                c0 = time.process_time()
                blob = mcvideo.encode_gop(window, target, steps=args.steps, seed=start)
                cpu = time.process_time() - c0
                p, _ = frame_psnrs(window, mcvideo.decode_gop(blob))
                _, cfg = mcvideo._parse(blob)
                row[name] = {"bytes": len(blob), "fill": len(blob) / target, "psnr": float(p.mean()),
                             "residual_step": cfg.residual_step, "loop_frames": frames_run[0],
                             "cpu_s": round(cpu, 2), "load": os.getloadavg()[0]}
            print(json.dumps(row), flush=True)
            rows.append(row)
    mcvideo.closed_loop = forward
    summary = {k: float(np.mean([r["secant"][k] / r["bisection"][k] for r in rows])) for k in ("loop_frames", "cpu_s")}
    summary["psnr_diff_db_mean"] = float(np.mean([r["secant"]["psnr"] - r["bisection"]["psnr"] for r in rows]))
    summary["fill_mean"] = {m: float(np.mean([r[m]["fill"] for r in rows])) for m in ("bisection", "secant")}
    result = {"command": "python benchmarks/bench_video_step_search.py " + " ".join(shlex.quote(a)
                                                                                   for a in sys.argv[1:]),
              "commit": git_commit(), "excerpt": cache, "rows": rows, "summary_secant_over_bisection": summary,
              "loadavg_end": os.getloadavg()}
    Path(args.out + ".json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
