"""mcvideo's intra frame alone, by image model (issue 11, session 20: ``gaussian`` vs ``gaussian+dct`` as the first
frame of every GOP): the intra frame's PSNR, bytes and encode CPU seconds at the bit rates the GOP coder gives it,
and the decode CPU milliseconds of one intra frame (what the decoder pays once per GOP).

The intra frame is the first frame of the shared clip area-scaled like ``bench_video.py`` does, coded by
``codec.compress`` exactly as ``mcvideo.encode_gop`` calls it (fixed fit ``--steps``, so that the models compare at
equal work whatever the load of the other jobs on this shared machine). Encode CPU seconds are
``time.process_time`` of this process (one thread); decode is best of 3 ``decompress`` calls.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_video_intra.py --size 640x360 --steps 300 \\
        --bpps 0.1,0.2,0.4,0.8 -o benchmarks/results/video_intra_frame_640x360
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_video_intra.py --size 640x480 --steps 300 \\
        --bpps 0.2 --decode-only -o benchmarks/results/video_intra_decode_640x480
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_video import DEFAULT_CLIP, excerpt  # noqa: E402
from inrcodec.codec import compress, decompress  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--start", type=int, default=0, help="the frame of the clip to code")
    ap.add_argument("--models", default="gaussian,gaussian+dct",
                    help="image models, each NAME or gaussian+dct@BASE_SHARE (the Gaussians' share of the bytes)")
    ap.add_argument("--bpps", default="0.1,0.2,0.4,0.8", help="intra-frame bit rates (bits per pixel of the frame)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--decode-only", action="store_true", help="report decode CPU only (the encode still runs)")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frame = excerpt(DEFAULT_CLIP, args.start, 1, (w, h)).data[0]
    sig = Signal(np.ascontiguousarray(frame), kind="image", value_range=(0.0, 255.0))
    rows = []
    for bpp in (float(b) for b in args.bpps.split(",")):
        for spec in args.models.split(","):
            model, _, share = spec.partition("@")
            c0, t0 = time.process_time(), time.perf_counter()
            r = compress(sig, model, bpp=bpp, steps=args.steps, seed=0,
                         config={"base_share": float(share)} if share else None)
            enc_cpu, enc_wall = time.process_time() - c0, time.perf_counter() - t0
            dec = []
            for _ in range(3):
                c1 = time.process_time()
                out = decompress(r.data).data
                dec.append(time.process_time() - c1)
            rows.append({"model": spec, "target_bpp": bpp, "bytes": len(r.data), "bpp": 8 * len(r.data) / (h * w),
                         "psnr": float(psnr(frame, out, 255.0)), "encode_cpu_s": enc_cpu, "encode_wall_s": enc_wall,
                         "decode_cpu_ms_best": 1000 * min(dec), "load": os.getloadavg()[0]})
            if args.decode_only:
                rows[-1] = {k: v for k, v in rows[-1].items() if not k.startswith("encode")}
            print(json.dumps(rows[-1]), flush=True)
    out = {"command": "python benchmarks/bench_video_intra.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "clip": f"{DEFAULT_CLIP.name} frame {args.start}, {args.size} (area filter)", "steps": args.steps,
           "note": "CPU seconds of one thread on a 2-core machine shared with other jobs (load stored per row)",
           "rows": rows}
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
