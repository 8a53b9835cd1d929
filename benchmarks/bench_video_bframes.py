"""Hierarchical B-frames (``mcvideo`` config ``structure: "hier"``, ``inrcodec/models/mcorder.py``) against the
forward P chain: decode cost per frame, and the motion bytes of each structure on the same frames.

    # decode CPU ms per frame at 640x480 (48 frames, intra fits of 5 steps: decode time does not depend on them),
    # the P chain and hier M = 2 / 4 / 8 encoded at the same rate, each decoded 3 times serially:
    python benchmarks/bench_video_bframes.py --decode --size 640x480 --frames 48 --bpp 0.1 \\
        -o benchmarks/results/video_bframes_decode_640x480
    # motion bytes per structure and block size (24 frames at 640x360), and the open-loop prediction PSNR of the
    # B frames (from source references) against each frame predicted from the previous one:
    python benchmarks/bench_video_bframes.py --motion -o benchmarks/results/video_bframes_motion

    # the whole codec with any mcvideo config per run ([name, config, gop] lists; "b_scale" sets
    # mcorder.B_BLOCK_SCALE for that run), intra frames fitted with a fixed 300 steps so runs compare at equal work:
    python benchmarks/bench_video_bframes.py --runs '[["hier2", {"structure": "hier", "mini_gop": 2}, null]]' \
        --rates 0.05,0.1 --frames 24 -o benchmarks/results/video_bframes_bblock

The first RD comparison of the structures is ``bench_video_residual.py --codec-runs :::,:::hier2,...``
(docs/video.md).
Timings are taken on 2 CPU cores shared with other jobs: CPU seconds per frame (``time.process_time``) are the
figure to compare; the load average is stored beside every row.
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

from bench_video import DEFAULT_CLIP, excerpt  # noqa: E402
from inrcodec.models import mcorder, mcvideo  # noqa: E402
from inrcodec.video_codec import compress_video, decode_windows  # noqa: E402

STRUCTURES = {"p": {"structure": ""}, "hier2": {"structure": "hier", "mini_gop": 2},
              "hier4": {"structure": "hier", "mini_gop": 4}, "hier8": {"structure": "hier", "mini_gop": 8}}


def decode_cost(clip, bpp: float, steps: int, names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        r = compress_video(clip, "mcvideo", bpp=bpp, steps=steps, workers=1, config=STRUCTURES[name])
        cpu, wall = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            frames = sum(len(w) for w in decode_windows(r.data, workers=1))
            wall.append((time.perf_counter() - t0) / frames * 1000)
            cpu.append((time.process_time() - c0) / frames * 1000)
        rows.append({"structure": name, "bpp": r.report["bpp"], "psnr": r.report["psnr"],
                     "cpu_ms_per_frame_median": float(np.median(cpu)), "cpu_ms_per_frame_runs": cpu,
                     "wall_ms_per_frame_runs": wall, "load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def motion_bytes(clip: np.ndarray, blocks=(16, 32, 64)) -> list[dict]:
    rows = []
    chain = mcvideo.motion_fields(clip, blocks)
    for b in blocks:
        rows.append({"structure": "p", "block": b, "motion_bytes": len(mcvideo.encode_motion(chain[b], "med"))})
    for m in (2, 4, 8):
        fields = mcorder.motion_fields(clip, m, blocks)
        for b in blocks:
            mo = mcorder.hier_motion(fields, len(clip), m, b, mcorder.b_block_for(b))
            b_psnr, p_psnr = [], []
            for f in mo.frames():
                if len(f.refs) == 1:
                    continue
                fwd, bwd, avg = mcorder._b_predictions(list(clip), f)
                modes = mcorder.choose_modes(clip[f.frame], fwd, bwd, avg, f.block, 8.0)
                b_psnr.append(_psnr(clip[f.frame], mcorder.blend(fwd, bwd, avg, modes, f.block)))
                p_psnr.append(_psnr(clip[f.frame], mcvideo.warp(clip[f.frame - 1], chain[b][f.frame - 1], b)))
            rows.append({"structure": f"hier{m}", "block": b, "b_block": mo.b_block,
                         "motion_bytes": len(mcorder.encode_motion(mo)),
                         "b_frames": len(b_psnr), "b_prediction_psnr": float(np.mean(b_psnr)),
                         "same_frames_from_previous_psnr": float(np.mean(p_psnr))})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def codec_runs(clip, specs: list, rates: list[float], steps: int) -> list[dict]:
    from inrcodec.container import read_container
    from inrcodec.video_codec import open_video

    rows = []
    for name, config, gop in specs:
        config = dict(config)
        mcorder.B_BLOCK_SCALE = config.pop("b_scale", 2)
        for bpp in rates:
            t0, c0 = time.perf_counter(), time.process_time()
            r = compress_video(clip, "mcvideo", bpp=bpp, gop=gop, steps=steps, config=config, workers=1)
            rep = r.report
            vf = open_video(r.data)
            gops = [read_container(v) for k, v in vf.container.sections.items() if k.startswith("part:")]
            rows.append({"name": name, "config": config, "b_scale": mcorder.B_BLOCK_SCALE, "target_bpp": bpp,
                         "bpp": rep["bpp"], "psnr": rep["psnr"], "psnr_y": rep["psnr_y"],
                         "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                         "load": os.getloadavg()[0], "blocks": [g.config["block"] for g in gops],
                         "motion_bytes": [len(g.sections["motion"]) for g in gops],
                         "intra_bytes": [len(g.sections["intra"]) for g in gops],
                         "residual_bytes": [len(g.sections.get("residual", b"")) for g in gops],
                         "frame_psnr": rep["frame_psnr"]})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "frame_psnr"}), flush=True)
    mcorder.B_BLOCK_SCALE = 2
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decode", action="store_true")
    ap.add_argument("--motion", action="store_true")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--bpp", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--structures", default="p,hier2,hier4,hier8")
    ap.add_argument("--runs", default=None, help="JSON list of [name, mcvideo config, gop or null]")
    ap.add_argument("--rates", default="0.02,0.05,0.1")
    ap.add_argument("--intra-steps", type=int, default=300, help="--runs: fixed fit steps of the intra frames")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    result = {"command": "python benchmarks/bench_video_bframes.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
              "loadavg_start": os.getloadavg(), "clip": DEFAULT_CLIP.name, "cpus": os.cpu_count()}
    if args.decode:
        w, h = (int(v) for v in args.size.split("x"))
        clip = excerpt(DEFAULT_CLIP, 0, args.frames, (w, h))
        result["decode"] = decode_cost(clip, args.bpp, args.steps, args.structures.split(","))
    if args.runs:
        clip = excerpt(DEFAULT_CLIP, 0, args.frames, (640, 360))
        result["runs"] = codec_runs(clip, json.loads(args.runs), [float(r) for r in args.rates.split(",")],
                                    args.intra_steps)
    if args.motion:
        result["motion"] = motion_bytes(excerpt(DEFAULT_CLIP, 0, 24, (640, 360)).data)
    result["loadavg_end"] = os.getloadavg()
    Path(args.out + ".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
