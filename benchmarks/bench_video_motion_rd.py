"""Where an ``mcvideo`` GOP's bytes go, and what rate-constrained motion (``inrcodec/models/mcmotion.py``) buys.

    # byte breakdown of the default (hierarchical M = 2) at three rates, intra frames fitted with a fixed 300 steps
    # (equal work whatever the load), 24 frames of the shared clip at 640x360:
    python benchmarks/bench_video_motion_rd.py --runs '[["hier2", {}, null]]' --rates 0.02,0.05,0.1 \\
        -o benchmarks/results/video_bytes_breakdown_s20
    # ("b_scale" / "radius" in a run's options set mcorder.B_BLOCK_SCALE / mcmotion.RADIUS for that run)
    # the same runs with the motion chosen by SSE + lambda x bits (motion_rd: the lambda scale, 0 = DIS vectors):
    python benchmarks/bench_video_motion_rd.py --runs '[["dis", {"motion_rd": 0}, null], ["rd", {}, null]]' \\
        --rates 0.02,0.05,0.1 -o benchmarks/results/video_motion_rd_24f

Per GOP: intra bytes; motion bytes of the anchors (P fields), of the B frames' forward and backward fields, of the
B modes; residual bytes, split into the anchors' and the B frames' part by coding each subset's symbols alone
(the split sums to within a few bytes of the real section). Mean PSNR of the anchors and of the B frames.
Timings: CPU seconds (``time.process_time``) beside wall seconds; 2 CPU cores shared with other jobs, the load
average stored with every row.
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
from inrcodec.container import read_container  # noqa: E402
from inrcodec.entropy._bytes import read_varint  # noqa: E402
from inrcodec.models import mcdct2, mcmotion, mcorder, mcvideo  # noqa: E402
from inrcodec.video_codec import compress_video, open_video  # noqa: E402


def _blobs(data: bytes, count: int) -> list[bytes]:
    """``count`` varint-prefixed blobs, then the rest."""
    out, pos = [], 0
    for _ in range(count):
        size, pos = read_varint(data, pos, "bad length", 5)
        out.append(data[pos:pos + size])
        pos += size
    return out + [data[pos:]]


def gop_breakdown(part: bytes) -> dict:
    c = read_container(part)
    cfg = c.config
    n, h, w = c.signal["shape"][:3]
    row = {"frames": n, "block": cfg["block"], "b_block": cfg.get("b_block", 0), "intra": len(c.sections["intra"]),
           "motion": len(c.sections["motion"]), "residual_section": len(c.sections.get("residual", b"")),
           "residual_step": cfg.get("residual_step", 0)}
    coder = mcvideo.RESIDUALS[cfg["residual"]]
    if cfg.get("structure"):
        anchors, fwd, bwd = _blobs(c.sections["motion"], 2)
        modes, res = _blobs(c.sections["residual"], 1)
        row.update(motion_p=len(anchors), motion_b_fwd=len(fwd), motion_b_bwd=len(bwd), modes=len(modes))
        plan = mcorder.coding_order(n, cfg["mini_gop"])
        is_b = {f.frame: f.is_b for f in plan}
    else:
        res = c.sections["residual"]
        row.update(motion_p=len(c.sections["motion"]), motion_b_fwd=0, motion_b_bwd=0, modes=0)
        is_b = {k: False for k in range(1, n)}
    by, bx = mcdct2.grid(h, w)
    syms = []  # the decoder's sparse blocks back to the encoder's dense (3, by, bx, 64) symbols
    for sp in coder.decode_symbols(res, n - 1, h, w):
        full = np.zeros((by * bx, 3, 64), np.int16)
        full[sp.index] = sp.coef
        syms.append(full.reshape(by, bx, 3, 64).transpose(2, 0, 1, 3))
    p_syms = [s for k, s in enumerate(syms, 1) if not is_b[k]]
    b_syms = [s for k, s in enumerate(syms, 1) if is_b[k]]
    row["residual_p"] = len(coder.encode_symbols(p_syms)) if p_syms else 0
    row["residual_b"] = len(coder.encode_symbols(b_syms)) if b_syms else 0
    row["b_frames"] = len(b_syms)
    row["is_b"] = [is_b[k] for k in range(1, n)]
    return row


def runs(clip, specs: list, rates: list[float], steps: int) -> list[dict]:
    rows = []
    for name, config, gop in specs:
        config = dict(config)
        mcorder.B_BLOCK_SCALE = config.pop("b_scale", 2)  # the B frames' motion block / the anchors'
        mcmotion.RADIUS = config.pop("radius", 2)  # the search window around the DIS vector (half pels)
        for bpp in rates:
            t0, c0 = time.perf_counter(), time.process_time()
            r = compress_video(clip, "mcvideo", bpp=bpp, gop=gop, steps=steps, config=dict(config), workers=1)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rep = r.report
            vf = open_video(r.data)
            parts = [v for k, v in vf.container.sections.items() if k.startswith("part:")]
            gops = [gop_breakdown(p) for p in parts]
            fp, start, p_psnr, b_psnr, i_psnr = rep["frame_psnr"], 0, [], [], []
            for g in gops:
                i_psnr.append(fp[start])
                for k, b in enumerate(g["is_b"], 1):
                    (b_psnr if b else p_psnr).append(fp[start + k])
                start += g["frames"]
            total = {k: sum(g[k] for g in gops) for k in ("intra", "motion_p", "motion_b_fwd", "motion_b_bwd",
                                                          "modes", "residual_p", "residual_b", "residual_section")}
            rows.append({"name": name, "config": config, "b_scale": mcorder.B_BLOCK_SCALE,
                         "radius": mcmotion.RADIUS, "target_bpp": bpp, "bpp": rep["bpp"], "psnr": rep["psnr"],
                         "psnr_y": rep["psnr_y"], "bytes": len(r.data), "totals": total,
                         "intra_psnr": float(np.mean(i_psnr)), "p_psnr": float(np.mean(p_psnr)) if p_psnr else None,
                         "b_psnr": float(np.mean(b_psnr)) if b_psnr else None,
                         "gops": [{k: v for k, v in g.items() if k != "is_b"} for g in gops],
                         "wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0], "frame_psnr": fp})
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("frame_psnr", "gops")}), flush=True)
    mcorder.B_BLOCK_SCALE, mcmotion.RADIUS = 2, 2
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="JSON list of [name, encode_gop options, gop or null]")
    ap.add_argument("--rates", default="0.02,0.05,0.1")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--start", type=int, default=0, help="first frame of the excerpt")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--intra-steps", type=int, default=300, help="fixed fit steps of the intra frames")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    result = {"command": "python benchmarks/bench_video_motion_rd.py "
              + " ".join(shlex.quote(a) for a in sys.argv[1:]),
              "loadavg_start": os.getloadavg(), "clip": DEFAULT_CLIP.name, "cpus": os.cpu_count(),
              "note": "2 CPU cores shared with other engineers' jobs; CPU seconds are the figure to compare"}
    clip = excerpt(DEFAULT_CLIP, args.start, args.frames, (w, h))
    result["runs"] = runs(clip, json.loads(args.runs), [float(r) for r in args.rates.split(",")], args.intra_steps)
    result["loadavg_end"] = os.getloadavg()
    Path(args.out + ".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
