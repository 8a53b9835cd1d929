"""Peak RSS of ``compress_video`` on the first 48 frames of the shared 1280x720 clip at 0.05 bpp: with GOPs of 24
that is one wave of two GOPs coded side by side, the encoder's largest working set (the whole-clip run,
``bench_video.py --rss``, takes ~50 min under load). Intra fits of 3 steps: memory does not depend on them.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_video_gop_memory.py -o benchmarks/results/video_rss_720p_gop24

The clip excerpt itself is held in memory here (``clip_uint8_gib``; the CLI streams it), and ``rss_before_encode_gib``
(imports + excerpt) is included in the peak. Load average stored: the machine is shared.
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_video import DEFAULT_CLIP, excerpt  # noqa: E402
from inrcodec.video_codec import compress_video  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    clip = excerpt(DEFAULT_CLIP, 0, 48, None)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    r = compress_video(clip, "mcvideo", bpp=0.05, steps=3, workers=2)
    out = {"command": "python benchmarks/bench_video_gop_memory.py -o " + args.out, "frames": 48,
           "size": list(clip.data.shape), "gops": r.report["gop_frames"], "bpp": r.report["bpp"],
           "psnr": r.report["psnr"], "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "rss_before_encode_gib": base / 2**20, "clip_uint8_gib": clip.data.nbytes / 2**30,
           "wall_s": time.perf_counter() - t0, "load": os.getloadavg()}
    print(json.dumps(out))
    Path(args.out + ".json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
