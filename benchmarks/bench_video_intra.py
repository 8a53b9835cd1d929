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
    # how well each decoded intra frame predicts the frames after it (``--predict D``: frames 1..D of the clip,
    # each warped from the decoded intra frame along the DIS flow from that frame to frame 0, averaged on
    # ``--block`` pixel blocks at 1/2 pel as mcvideo codes it; open loop, no residual): reference quality as the
    # predicted frames see it, beside the source frame itself and the source blurred
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_video_intra.py --size 640x360 --steps 300 \\
        --bpps 0.08,0.2,0.4 --predict 4 -o benchmarks/results/video_intra_prediction_640x360
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
from inrcodec.models import mcvideo  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402


def _fields_to_first(clip: np.ndarray, block: int) -> list[np.ndarray]:
    """Per frame d >= 1, the block vectors (1/2 pel) of the DIS flow from frame d to frame 0 (frame d ~ frame 0
    sampled at x + flow), as mcvideo averages and rounds them."""
    h, w = clip.shape[1:3]
    return [mcvideo.block_motion(mcvideo.dense_flows(np.stack([clip[0], clip[d]])), block, h, w)[0]
            for d in range(1, len(clip))]


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
    ap.add_argument("--predict", type=int, default=0,
                    help="also the prediction PSNR of frames 1..D from the decoded intra frame")
    ap.add_argument("--block", type=int, default=32, help="--predict: motion block size (pixels)")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    clip = excerpt(DEFAULT_CLIP, args.start, 1 + args.predict, (w, h)).data
    frame = clip[0]
    fields = _fields_to_first(clip, args.block) if args.predict else []

    def prediction(ref: np.ndarray) -> list[float]:
        return [float(psnr(clip[d], mcvideo.warp(ref, fields[d - 1], args.block), 255.0))
                for d in range(1, args.predict + 1)]
    sig = Signal(np.ascontiguousarray(frame), kind="image", value_range=(0.0, 255.0))
    rows = []
    if args.predict:  # references for scale: the source frame itself, and blurred (what a smooth base keeps)
        import cv2

        for name, ref in (("source", frame), ("source blurred 1.5 px", cv2.GaussianBlur(frame, (0, 0), 1.5))):
            rows.append({"model": name, "psnr": float(psnr(frame, ref, 255.0)), "prediction_psnr": prediction(ref)})
            print(json.dumps(rows[-1]), flush=True)
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
            if args.predict:
                rows[-1]["prediction_psnr"] = prediction(out)
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
