"""How mcvideo codes its predicted frames: the measurements behind its defaults (docs/video.md, "Residual").

    # residual coders side by side on 12 frames of the shared clip at 640x360, from a lossless intra frame
    # (closed loop, same motion), plus the Cool-chic-style latent grid fitted to one P-frame residual:
    python benchmarks/bench_video_residual.py --coders --latentgrid -o benchmarks/results/video_residual_coders
    # GOP length and intra share of the whole codec (24 frames, 0.05 bpp, 96 s per encode):
    python benchmarks/bench_video_residual.py --sweep -o benchmarks/results/video_residual_sweep
    # residual forms and in-loop deblocking on the predicted frames (closed loop, same motion, same blurred intra
    # frame), RD over 5 steps and BD-rate against the first form "dct":
    python benchmarks/bench_video_residual.py --variants dct,dct2,dct2:8,dct2:16,dct2:32 \
        -o benchmarks/results/video_residual_variants

Timings are wall-clock on 2 CPU cores shared with other jobs (load averages stored with every row).
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

from bench_video import DEFAULT_CLIP, excerpt, machine  # noqa: E402
from inrcodec.models import mcvideo as mc  # noqa: E402
from inrcodec.video_codec import compress_video, frame_psnrs  # noqa: E402


def coders(clip: np.ndarray) -> list[dict]:
    rows = []
    h, w = clip.shape[1:3]
    flows = mc.dense_flows(clip)
    for block in (16, 32):
        vectors = mc.block_motion(flows, block, h, w)
        motion = len(mc.encode_motion(vectors))
        for name, coder in mc.RESIDUALS.items():
            for step in (4, 8, 16, 32, 64):
                t0 = time.perf_counter()
                decoded, syms = mc.closed_loop(clip[0], clip, vectors, block, coder, step)
                blob = coder.encode_symbols(syms)
                t1 = time.perf_counter()
                back = mc.reconstruct(clip[0], vectors, block, coder, step,
                                      coder.decode_symbols(blob, len(clip) - 1, h, w))
                t2 = time.perf_counter()
                assert np.array_equal(back, decoded)
                p = frame_psnrs(clip, decoded)[0][1:]
                rows.append({"motion_block": block, "motion_bytes": motion, "coder": name, "step": step,
                             "residual_bytes": len(blob), "p_frames_psnr": float(p.mean()),
                             "last_frame_psnr": float(p[-1]), "encode_s": t1 - t0, "decode_s": t2 - t1,
                             "load": os.getloadavg()[0]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def latentgrid(clip: np.ndarray) -> list[dict]:
    """The existing latentgrid image model (codec.compress) fitted to the residual of frame 1 warped from 0."""
    from inrcodec.codec import compress, decompress
    from inrcodec.signal import Signal

    h, w = clip.shape[1:3]
    vectors = mc.block_motion(mc.dense_flows(clip[:2]), 16, h, w)
    pred = mc.warp(clip[0], vectors[0], 16)
    res = clip[1].astype(np.float32) - pred.astype(np.float32)
    base = float(frame_psnrs(clip[1:2], pred[None])[0][0])
    rows = []
    for target, budget in ((800, 10), (800, 30), (2000, 30)):
        t0 = time.perf_counter()
        r = compress(Signal(res, kind="image", value_range=(-255.0, 255.0)), "latentgrid",
                     bpp=8 * target / (h * w), time_budget=budget)
        dt = time.perf_counter() - t0
        rec = np.clip(np.rint(pred + decompress(r.data).data), 0, 255).astype(np.uint8)
        rows.append({"target_bytes": target, "time_budget_s": budget, "bytes": len(r.data), "seconds": dt,
                     "prediction_psnr": base, "psnr_with_residual": float(frame_psnrs(clip[1:2], rec[None])[0][0]),
                     "load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def sweep(clip) -> list[dict]:
    rows = []
    for gop, share in ((12, 0.5), (6, 0.5), (24, 0.5), (12, 0.3), (12, 0.7), (24, 0.3), (6, 0.3), (12, 0.2)):
        t0 = time.perf_counter()
        r = compress_video(clip, "mcvideo", bpp=0.05, gop=gop, time_budget=96, config={"intra_share": share})
        rep = r.report
        rows.append({"gop": gop, "intra_share": share, "bpp": rep["bpp"], "psnr": rep["psnr"],
                     "seconds": time.perf_counter() - t0, "load": os.getloadavg()[0],
                     "frame_psnr": rep["frame_psnr"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def variants(clip: np.ndarray, specs: list[str], steps=(16, 26, 42, 68, 110)) -> dict:
    """Residual forms (``NAME[:DEBLOCK[:DEAD_ZONE[:RDO_LAMBDA[:RDOQ[:CHROMA[:PRIOR]]]]]]``; RDOQ: mcdct2's
    RDOQ_LAMBDA, 0 off; CHROMA: the chroma step / luma step in 1/16, 0 = 32; PRIOR: RDOQ_PRIOR; empty fields: the
    module's defaults) on the same predicted frames: an intra frame blurred like a low-rate one (area down by 2,
    bilinear up), block-32 motion, the closed loop at each step; bytes = the coded residual, PSNR = mean over the
    predicted frames. BD-rate of each against the first."""
    import cv2

    from inrcodec.metrics import bd_rate

    h, w = clip.shape[1:3]
    intra = cv2.resize(cv2.resize(clip[0], (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h),
                       interpolation=cv2.INTER_LINEAR)
    vectors = mc.block_motion(mc.dense_flows(clip), 32, h, w)
    from inrcodec.models import mcdct2

    defaults = {k: getattr(mcdct2, k) for k in ("RDOQ_LAMBDA", "RDOQ_PRIOR")}
    curves, rows = {}, []
    for spec in specs:
        name, strength, dead_zone, lam, rdoq, chroma, prior = (spec.split(":") + [""] * 6)[:7]
        coder = mc.RESIDUALS[name]
        if dead_zone:
            coder.DEAD_ZONE = float(dead_zone)
        if lam:
            coder.RDO_LAMBDA = float(lam)
        if name == mcdct2.NAME:  # the session-21 fields fall back to the defaults for every spec
            mcdct2.RDOQ_LAMBDA = float(rdoq) if rdoq else defaults["RDOQ_LAMBDA"]
            mcdct2.RDOQ_PRIOR = float(prior) if prior else defaults["RDOQ_PRIOR"]
            if chroma and int(chroma):
                coder = mcdct2.Coder(int(chroma))
        curves[spec] = []
        for step in steps:
            t0 = time.process_time()
            decoded, syms = mc.closed_loop(intra, clip, vectors, 32, coder, step, int(strength or 0))
            blob = coder.encode_symbols(syms)
            t1 = time.process_time()
            back = mc.reconstruct(intra, vectors, 32, coder, step, coder.decode_symbols(blob, len(clip) - 1, h, w),
                                  int(strength or 0))
            t2 = time.process_time()
            assert np.array_equal(back, decoded)
            p = frame_psnrs(clip, decoded)[0][1:]
            point = {"bpp": 8 * len(blob) / ((len(clip) - 1) * h * w), "psnr": float(p.mean())}
            curves[spec].append(point)
            rows.append({"variant": spec, "step": step, "residual_bytes": len(blob), **point,
                         "encode_cpu_s": t1 - t0, "decode_cpu_s": t2 - t1, "load": os.getloadavg()[0]})
            print(json.dumps(rows[-1]), flush=True)
    ref = specs[0]
    bd = {spec: bd_rate(curves[ref], c) for spec, c in curves.items() if spec != ref}
    print("BD-rate vs", ref, json.dumps(bd))
    return {"rows": rows, "bd_rate_vs_" + ref: bd}


def allocations(clip: np.ndarray, specs: list[str], steps=(16, 26, 42, 68, 110)) -> dict:
    """Temporal quality allocation (``ALLOCATION:PROPAGATION``, 0:0 = one step for the GOP) of the default residual
    on the same predicted frames as ``variants`` (blurred intra frame, block-32 motion, closed loop): each base step
    gives per-frame steps ``frame_step_multipliers``; bytes = the coded residual, PSNR = mean over the predicted
    frames. BD-rate of each against the first."""
    import cv2

    from inrcodec.metrics import bd_rate
    from inrcodec.models import deblock

    h, w = clip.shape[1:3]
    intra = cv2.resize(cv2.resize(clip[0], (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h),
                       interpolation=cv2.INTER_LINEAR)
    vectors = mc.block_motion(mc.dense_flows(clip), 32, h, w)
    coder = mc.RESIDUALS[mc.DEFAULT_RESIDUAL]
    curves, rows = {}, []
    for spec in specs:
        a, _, p = spec.partition(":")
        p, _, cascade = p.partition(":")
        mult = mc.frame_step_multipliers(len(clip) - 1, float(a), float(p or mc.PROPAGATION))
        if cascade:  # exploratory: HEVC low-delay QP offsets (every 4th frame finer), DEPTH x (3, 2, 3, 1) / 3 QP
            offsets = float(cascade) * np.array([3, 2, 3, 1])[np.arange(len(clip) - 1) % 4] / 3
            mult = mult * 2 ** (offsets / 6)
            mult = mult / np.exp(np.mean(np.log(mult)))
        curves[spec] = []
        for step in steps:
            fs = np.array(mc.frame_steps_for(step * mc.STEP_UNIT, mult), np.float64) / mc.STEP_UNIT
            t0 = time.process_time()
            decoded, syms = mc.closed_loop(intra, clip, vectors, 32, coder, fs, deblock.DEFAULT_STRENGTH)
            blob = coder.encode_symbols(syms)
            cpu = time.process_time() - t0
            p_frames = frame_psnrs(clip, decoded)[0][1:]
            point = {"bpp": 8 * len(blob) / ((len(clip) - 1) * h * w), "psnr": float(p_frames.mean())}
            curves[spec].append(point)
            rows.append({"allocation": spec, "base_step": step, "frame_steps": fs.tolist(),
                         "residual_bytes": len(blob), **point, "frame_psnr": p_frames.round(2).tolist(),
                         "encode_cpu_s": cpu, "load": os.getloadavg()[0]})
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("frame_steps", "frame_psnr")}),
                  flush=True)
    ref = specs[0]
    bd = {spec: bd_rate(curves[ref], c) for spec, c in curves.items() if spec != ref}
    print("BD-rate vs", ref, json.dumps(bd))
    return {"rows": rows, "bd_rate_vs_" + ref: bd}


def _clip(source: str, frames: int) -> np.ndarray:
    """``shared``: the shared clip from frame 0, area-scaled to 640x360; ``crop``: the shared clip from frame 150,
    a 640x360 crop of the full-size frames at (320, 200) (other content, no scaling); ``shapes``: the generated
    moving-shapes clip (``inrcodec.samples``, what scenes/ and the tests use) at 640x360."""
    if source == "shapes":
        from inrcodec.samples import moving_shapes_video

        return moving_shapes_video(frames, 360, 640, seed=1).data
    if source == "crop":
        return np.ascontiguousarray(excerpt(DEFAULT_CLIP, 150, frames, None).data[:, 200:560, 320:960])
    return excerpt(DEFAULT_CLIP, 0, frames, (640, 360)).data


def open_loop_inherit(clip: np.ndarray, vectors: np.ndarray, block: int) -> list[np.ndarray]:
    """The encoder-known fraction each 8x8 block of predicted frame k passes on (x264's 1 - inter / intra cost):
    inter = luma SAD of the source minus its warp of the previous source, intra = luma SAD around the block's mean
    (a stand-in for an intra prediction), in 1/RHO_UNIT."""
    from inrcodec.models import blocktree

    n, h, w = clip.shape[:3]
    gy, gx = h // 8, w // 8
    out = [None]
    luma = clip[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    for k in range(1, n):
        pred = mc.warp(clip[k - 1], vectors[k - 1], block).astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                                                          np.float32)
        cur = luma[k][:gy * 8, :gx * 8].reshape(gy, 8, gx, 8)
        inter = np.abs(cur - pred[:gy * 8, :gx * 8].reshape(gy, 8, gx, 8)).sum(axis=(1, 3))
        intra = np.abs(cur - cur.mean(axis=(1, 3), keepdims=True)).sum(axis=(1, 3)) + 64.0
        frac = np.clip(1.0 - inter / intra, 0.0, 1.0)
        out.append(np.minimum(np.rint(frac * blocktree.RHO_UNIT), blocktree.RHO_UNIT - 1).astype(np.int64))
    return out


def block_steps(clip: np.ndarray, specs: list[str], steps=(16, 26, 42, 68, 110)) -> dict:
    """Per-block residual steps on top of the per-frame steps (the default temporal allocation), on the same
    predicted frames as ``variants`` (blurred intra frame, block-32 motion, closed loop). Specs: ``F`` per-frame
    steps only (the reference); ``D:STRENGTH:RHO`` weights from the decoded motion alone (no bits, the codec's
    ``block_steps``); ``E:STRENGTH:LEVELS`` weights from the real open-loop prediction errors (encoder-known,
    x264's way), offsets rounded to LEVELS (3 or 5) values 2 quarter octaves apart and sent as a coded map (its
    bytes counted with the residual's). BD-rate of each against the first."""
    import cv2

    from inrcodec.entropy import encode_ints
    from inrcodec.metrics import bd_rate
    from inrcodec.models import blocktree, deblock

    n, h, w = clip.shape[:3]
    intra = cv2.resize(cv2.resize(clip[0], (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h),
                       interpolation=cv2.INTER_LINEAR)
    block = 32
    vectors = mc.block_motion(mc.dense_flows(clip), block, h, w)
    coder = mc.RESIDUALS[mc.DEFAULT_RESIDUAL]
    mult = mc.frame_step_multipliers(n - 1)
    gy, gx = -(-h // 8), -(-w // 8)
    inherit = None
    curves, rows = {}, []
    for spec in specs:
        kind, *par = spec.split(":")
        offsets, map_bytes = None, 0
        frame_mult = mult
        if kind in ("D", "X"):  # X: x264's form, offsets relative to an unreferenced block, no per-frame steps
            strength, rho = float(par[0]), float(par[1])
            chain = blocktree.p_chain(vectors, block, 8, gy, gx)
            wts = blocktree.propagate(chain, gy, gx, 8, int(round(rho * blocktree.RHO_UNIT)))
            ref = blocktree.ONE if kind == "X" else None
            offsets = [blocktree.step_offsets(wts[k], int(round(100 * strength)), ref) for k in range(1, n)]
            if kind == "X":
                frame_mult = np.ones(n - 1)
        elif kind == "E":
            strength, levels = float(par[0]), int(par[1])
            inherit = inherit or open_loop_inherit(clip, vectors, block)
            chain = blocktree.p_chain(vectors, block, 8, gy, gx)
            for k in range(1, n):
                chain[k].inherit = inherit[k]
            wts = blocktree.propagate(chain, gy, gx, 8, 0)
            half = levels // 2
            cell = int(par[2]) if len(par) > 2 else 8  # the map's resolution in pixels
            r = cell // 8
            my, mx = -(-gy // r), -(-gx // r)
            coarse = []
            for k in range(1, n):  # the mean weight of each map cell
                pad = np.pad(wts[k], ((0, my * r - gy), (0, mx * r - gx)), mode="edge")
                cw = pad.reshape(my, r, mx, r).sum(axis=(1, 3)) // (r * r)
                o = np.clip(2 * np.rint(blocktree.step_offsets(cw, int(round(100 * strength))) / 2),
                            -2 * half, 2 * half).astype(np.int64)
                coarse.append(o)
            offsets = [np.repeat(np.repeat(o, r, 0), r, 1)[:gy, :gx] for o in coarse]
            # the map as the codec would send it: one symbol per map cell and frame, entropy-coded
            map_bytes = len(encode_ints((np.stack(coarse) // 2).ravel()))
        curves[spec] = []
        for step in steps:
            units = mc.frame_steps_for(step * mc.STEP_UNIT, frame_mult)
            run = (np.array(units, np.float64) / mc.STEP_UNIT if offsets is None
                   else [blocktree.block_units(u, o) for u, o in zip(units, offsets)])
            t0 = time.process_time()
            decoded, syms = mc.closed_loop(intra, clip, vectors, block, coder, run, deblock.DEFAULT_STRENGTH)
            blob = coder.encode_symbols(syms)
            cpu = time.process_time() - t0
            p_frames = frame_psnrs(clip, decoded)[0][1:]
            total = len(blob) + map_bytes
            point = {"bpp": 8 * total / ((n - 1) * h * w), "psnr": float(p_frames.mean())}
            curves[spec].append(point)
            rows.append({"spec": spec, "base_step": step, "residual_bytes": len(blob), "map_bytes": map_bytes,
                         **point, "frame_psnr": p_frames.round(2).tolist(), "encode_cpu_s": cpu,
                         "load": os.getloadavg()[0]})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "frame_psnr"}), flush=True)
    ref = specs[0]
    bd = {spec: bd_rate(curves[ref], c) for spec, c in curves.items() if spec != ref}
    print("BD-rate vs", ref, json.dumps(bd))
    return {"rows": rows, "bd_rate_vs_" + ref: bd}


def codec_runs(clip, specs: list[str], rates: list[float], steps: int | None, seconds: float | None) -> list[dict]:
    """The whole codec (``compress_video``) at each rate for each ``GOP:INTRA_SHARE:ALLOCATION[:FIELD...]`` (a FIELD
    is a structure ``hier2``/``hier4``/``hier8`` or ``p``, an intra image model ``img=NAME``, or a block
    strength ``STRENGTH[/RHO]``; empty fields: the defaults), the intra frame fitted with fixed ``steps`` so that runs compare at equal work whatever the load."""
    rows = []
    for spec in specs:
        gop, share, alloc, *rest = spec.split(":") + ["", "", ""]
        config = {}
        for field in rest:  # "hier2/4/8": hierarchical B-frames (mcorder); "p": the P chain; a number: block steps
            if field.startswith("hier"):
                config["structure"], config["mini_gop"] = "hier", int(field[4:])
            elif field == "p":
                config["structure"] = ""
            elif field.startswith("img="):  # the intra frame's image model, e.g. img=gaussian+dct
                config["image_model"] = field[4:]
            elif field:
                strength, _, rho = field.partition("/")
                config["block_strength"] = float(strength)
                if rho:
                    config["block_propagation"] = float(rho)
        if spec.count(":") == 3 and spec.endswith(":"):  # an empty 4th field: the P chain (the bframes runs' form)
            config["structure"] = ""
        if share:
            config["intra_share"] = float(share)
        if alloc:
            config["allocation"] = float(alloc)
        for bpp in rates:
            t0, c0 = time.perf_counter(), time.process_time()
            r = compress_video(clip, "mcvideo", bpp=bpp, gop=int(gop) if gop else None, steps=steps,
                               time_budget=seconds, config=config or None, workers=1)
            rep = r.report
            rows.append({"spec": spec, "target_bpp": bpp, "bpp": rep["bpp"], "psnr": rep["psnr"],
                         "psnr_y": rep["psnr_y"], "wall_s": time.perf_counter() - t0,
                         "cpu_s": time.process_time() - c0, "load": os.getloadavg()[0],
                         "frame_psnr": rep["frame_psnr"]})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "frame_psnr"}), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coders", action="store_true")
    ap.add_argument("--latentgrid", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--variants", default=None, help="residual forms NAME[:DEBLOCK],... (the first is the reference)")
    ap.add_argument("--allocations", default=None,
                    help="temporal step allocations ALLOCATION:PROPAGATION,... (the first is the reference; 0:0 = one step)")
    ap.add_argument("--block-steps", default=None,
                    help="per-block steps F | D:STRENGTH:RHO | E:STRENGTH:LEVELS,... (the first is the reference)")
    ap.add_argument("--source", default="shared",
                    help="--variants / --block-steps / --codec-runs: shared | crop | shapes")
    ap.add_argument("--codec-runs", default=None,
                    help="whole codec: GOP:INTRA_SHARE:ALLOCATION[:FIELD...],... (empty: default); a FIELD is a "
                         "structure hier2/hier4/hier8 or p (the P chain), an intra image model img=NAME, or a block "
                         "strength STRENGTH[/RHO]; an empty 4th field alone also means the P chain")
    ap.add_argument("--rates", default="0.02,0.05", help="--codec-runs: bpp targets")
    ap.add_argument("--steps", type=int, default=None, help="--codec-runs: fixed fit steps of the intra frames")
    ap.add_argument("--time-budget", type=float, default=None, help="--codec-runs: seconds per encode")
    ap.add_argument("--frames", type=int, default=12, help="--variants/--allocations: frames of the excerpt")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    result = {"command": "python benchmarks/bench_video_residual.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
              "loadavg_start": os.getloadavg(), "clip": f"{DEFAULT_CLIP.name} frames 0.., 640x360 (area filter)",
              "commit": machine()["commit"]}
    if args.coders or args.latentgrid:
        clip = excerpt(DEFAULT_CLIP, 0, 12, (640, 360)).data
        if args.coders:
            result["coders"] = coders(clip)
        if args.latentgrid:
            result["latentgrid"] = latentgrid(clip)
    if args.variants:
        result["source"] = args.source
        result["variants"] = variants(_clip(args.source, args.frames), args.variants.split(","))
    if args.allocations:
        result["allocations"] = allocations(excerpt(DEFAULT_CLIP, 0, args.frames, (640, 360)).data,
                                            args.allocations.split(","))
    if args.block_steps:
        result["source"] = args.source
        result["block_steps"] = block_steps(_clip(args.source, args.frames), args.block_steps.split(","))
    if args.codec_runs:
        clip = excerpt(DEFAULT_CLIP, 0, args.frames, (640, 360))
        if args.source != "shared":
            from inrcodec.signal import Signal

            result["source"] = args.source
            clip = Signal(_clip(args.source, args.frames), kind="video", metadata=clip.metadata)
        result["codec_runs"] = codec_runs(clip, args.codec_runs.split(","), [float(r) for r in args.rates.split(",")],
                                          args.steps, args.time_budget)
    if args.sweep:
        result["sweep"] = sweep(excerpt(DEFAULT_CLIP, 0, 24, (640, 360)))
    result["loadavg_end"] = os.getloadavg()
    Path(args.out + ".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
