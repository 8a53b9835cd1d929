"""Decode CPU per frame of each mcvideo form on the same frames (issue 11: what B-frames and per-block steps cost the
decoder): the forward P chain, with per-block steps, hierarchical B-frames, and both (the default), each encoded at
the same rate with 5-step intra fits (decode time does not depend on them), every GOP decoded serially in this
process, best of 3 (``time.process_time``). Timings are CPU seconds on a shared 2-core machine: run it with nothing
else running (SMT siblings inflate CPU time under load); the load average is stored.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_video_decode_forms.py --frames 24 --bpp 0.1 \
        -o benchmarks/results/video_decode_forms_640x480
    # session 20: the intra frame by gaussian+dct (the default at this rate) against gaussian, same frames
    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_video_decode_forms.py --frames 24 --bpp 0.1 \
        --forms hier+blocks,hier+blocks+gaussian-intra -o benchmarks/results/video_decode_intra_640x480
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_video import DEFAULT_CLIP, excerpt  # noqa: E402
from inrcodec.container import read_container  # noqa: E402
from inrcodec.models import mcvideo  # noqa: E402
from inrcodec.parts import part_count, part_section  # noqa: E402
from inrcodec.video_codec import compress_video  # noqa: E402

FORMS = {"p": {"structure": "", "block_strength": 0}, "p+blocks": {"structure": ""},
         "hier": {"block_strength": 0}, "hier+blocks": {},
         # session 20: the default's vectors without the rate-constrained choice (the DIS vectors as they are)
         "hier+blocks+dis": {"motion_rd": 0},
         # session 20: the default form with the intra frame of session 19 (gaussian) instead of the rate's choice
         # (gaussian+dct from 0.15 bpp of intra frame: at 0.1 bpp of video, GOPs of 12)
         "hier+blocks+gaussian-intra": {"image_model": "gaussian"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--bpp", type=float, default=0.1)
    ap.add_argument("--gop", type=int, default=12)
    ap.add_argument("--forms", default=",".join(FORMS), help="which of " + ", ".join(FORMS))
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    clip = excerpt(DEFAULT_CLIP, 0, args.frames, (w, h))
    rows = []
    for name in args.forms.split(","):
        config = FORMS[name]
        r = compress_video(clip, "mcvideo", bpp=args.bpp, steps=5, gop=args.gop, config=config, workers=1,
                           audio=False)
        c = read_container(r.data)
        gops = [c.sections[part_section(i)] for i in range(part_count(c))]
        best = float("inf")
        for _ in range(3):
            t = time.process_time()
            for g in gops:
                mcvideo.decode_gop(g)
            best = min(best, time.process_time() - t)
        intra_models = sorted({read_container(read_container(g).sections["intra"]).model for g in gops})
        rows.append({"form": name, "config": config, "intra_models": intra_models,
                     "bpp": r.report["bpp"], "psnr": r.report["psnr"],
                     "decode_cpu_ms_per_frame": 1000.0 * best / args.frames, "load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    out = {"command": "python benchmarks/bench_video_decode_forms.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "clip": f"{DEFAULT_CLIP.name} frames 0..{args.frames - 1}, {args.size}", "rows": rows}
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
