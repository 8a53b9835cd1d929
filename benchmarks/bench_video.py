"""Video rate-distortion, encode time, decode speed and peak memory: inrcodec's GOP layout against x264, x265 and
SVT-AV1 on the shared clip, measured the same way (``inrcodec.video_compare.compare_video``, the code path of
``inrcodec compare clip.mp4``).

    # RD at 640x360 on a short excerpt (what the committed results were made with; see benchmarks/README.md):
    .venv/bin/python benchmarks/bench_video.py --size 640x360 --frames 24 --models fourier \\
        --rates 0.02,0.05,0.1,0.2 --time-budget 240 -o benchmarks/results/video_rd_640x360
    # peak RSS of `inrcodec fit` on the whole 1280x720, 280-frame clip (memory does not depend on the steps):
    .venv/bin/python benchmarks/bench_video.py --rss --steps 3 -o benchmarks/results/video_rss_720p
    # x264 / x265 on the whole clip at full size, beside the --rss run's rate point:
    .venv/bin/python benchmarks/bench_video.py --baseline-points x264:34,x264:30,x265:32 \
        -o benchmarks/results/video_baselines_720p
    # decode speed at 640x480 (the excerpt resized; encoded with few steps: decode time does not depend on them):
    .venv/bin/python benchmarks/bench_video.py --decode-fps --size 640x480 --frames 48 --bpp 0.1 --steps 5 \
        -o benchmarks/results/video_decode_640x480

Measurement (DESIGN.md contract 2): bpp = file bytes x 8 / (frames x H x W); PSNR = mean over frames of the
per-frame RGB PSNR against the source's own decoded frames (Y-PSNR beside it); kbit/s at the clip's 20 fps. The
excerpt is resized with OpenCV's area filter before any codec sees it, so every codec codes the same frames.
Timings are wall-clock on 2 CPU cores shared with other jobs: the load average is stored in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.compare import rd_figure, to_json  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402
from inrcodec.signals.video import VideoSource  # noqa: E402

DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4"


def excerpt(path: Path, start: int, frames: int, size: tuple[int, int] | None) -> Signal:
    import cv2

    src = VideoSource(path)
    out = []
    for i, frame in enumerate(src.frames()):
        if i < start:
            continue
        if size is not None:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        out.append(frame)
        if len(out) == frames:
            break
    meta = src.info.metadata()
    meta["frames"] = len(out)
    return Signal(np.stack(out), kind="video", metadata=meta)


def git_commit() -> str:
    """The commit the run's code is (INRCODEC_COMMIT for a run from an exported snapshot, which has no .git)."""
    if os.environ.get("INRCODEC_COMMIT"):
        return os.environ["INRCODEC_COMMIT"]
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip()


def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True).stdout.strip()
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "loadavg_start": os.getloadavg(), "python": platform.python_version(),
            "commit": commit + ("+uncommitted" if dirty else "")}


def run_rss(args) -> dict:
    """`inrcodec fit` on the whole clip in a child process; its peak RSS from getrusage(RUSAGE_CHILDREN)."""
    out = Path("/tmp") / f"bench_video_rss_{os.getpid()}.inrc"
    cmd = [sys.executable, "-m", "inrcodec", "fit", str(args.clip), "-o", str(out), "--bpp", str(args.bpp),
           "--steps", str(args.steps), "-q", "--json", str(out) + ".json"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    report = json.loads(Path(str(out) + ".json").read_text())
    t1 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "inrcodec", "decode", str(out), "-o", str(out) + ".mkv"], check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    dec = time.perf_counter() - t1
    for p in (out, Path(str(out) + ".json"), Path(str(out) + ".mkv")):
        p.unlink(missing_ok=True)
    return {"command": " ".join(shlex.quote(c) for c in cmd), "peak_rss_bytes": peak,
            "peak_rss_gib": peak / 2**30, "encode_s": seconds, "decode_to_mkv_s": dec,
            "decode_fps_incl_ffv1_write": report["frames"] / dec, "report": report}


def run_decode_fps(args, clip: Signal) -> dict:
    """Frames per second of ``decode_windows`` (the decoder proper, no file writing), serial (1 worker) and with
    GOPs decoded two at a time, 3 runs each; wall fps, and frames per CPU-second (all threads' CPU time)."""
    from inrcodec.video_codec import compress_video, decode_windows

    t0 = time.perf_counter()
    r = compress_video(clip, args.model or None, bpp=args.bpp, steps=args.steps, gop=args.gop,
                       workers=args.workers)
    enc = time.perf_counter() - t0
    out = {"encode_s": enc}
    for workers in (1, 2):
        runs, cpu_runs, loads = [], [], []
        for _ in range(3):
            t1, c1 = time.perf_counter(), time.process_time()
            frames = sum(len(w) for w in decode_windows(r.data, workers=workers))
            runs.append(frames / (time.perf_counter() - t1))
            cpu_runs.append(frames / (time.process_time() - c1))
            loads.append(os.getloadavg()[0])
        out[f"workers_{workers}"] = {
            "decode_fps_runs": runs, "decode_fps_best": max(runs), "decode_fps_median": float(np.median(runs)),
            "frames_per_cpu_second_runs": cpu_runs, "cpu_ms_per_frame_best": 1000.0 / max(cpu_runs),
            "loadavg_1min": loads}
    report = {k: v for k, v in r.report.items() if k != "frame_psnr"}
    return {"frames": frames, **out, "report": report}


def run_baseline_points(args) -> list[dict]:
    """x264/x265 medium at the given CRFs on the whole clip at its native size (the full-size comparison for the
    --rss run's rate point), measured like compare_video: bare stream bytes, mean per-frame RGB PSNR."""
    from inrcodec import baselines
    from inrcodec.video_codec import frame_psnrs

    frames = np.stack(list(VideoSource(args.clip).frames()))
    t, h, w = frames.shape[:3]
    rows = []
    for spec in args.baseline_points.split(","):
        name, crf = spec.split(":")
        codec = baselines.get_codec(name)
        t0 = time.perf_counter()
        blob = codec.encode(frames, int(crf))
        enc = time.perf_counter() - t0
        p, y = frame_psnrs(frames, codec.decode(blob))
        rows.append({"codec": name, "crf": int(crf), "bytes": len(blob), "bpp": 8 * len(blob) / (t * h * w),
                     "psnr": float(p.mean()), "psnr_y": float(y.mean()), "encode_s": enc, "frames": t,
                     "load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def set_constant(item: str) -> None:
    """``MODULE.NAME=VALUE``: set an existing constant of ``inrcodec.models.MODULE`` (VALUE a Python literal)."""
    import ast
    import importlib

    target, _, value = item.partition("=")
    module, _, name = target.rpartition(".")
    mod = importlib.import_module(f"inrcodec.models.{module}")
    if not hasattr(mod, name):
        sys.exit(f"--set: inrcodec.models.{module} has no {name}")
    setattr(mod, name, ast.literal_eval(value))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--size", default=None, help="WxH to resize to (default: native)")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--models", default="fourier")
    ap.add_argument("--codecs", default="x264,x265,svtav1")
    ap.add_argument("--rates", default="0.02,0.05,0.1,0.2")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds per encode of the whole excerpt")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--gop", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rss", action="store_true", help="peak RSS of `inrcodec fit` on the whole clip")
    ap.add_argument("--bpp", type=float, default=0.05, help="--rss / --decode-fps: the rate of that fit")
    ap.add_argument("--decode-fps", action="store_true", help="decode speed of one encode of the excerpt")
    ap.add_argument("--baseline-points", default=None, help="CODEC:CRF,... on the whole clip at native size")
    ap.add_argument("--model", default=None, help="--decode-fps: the model (default: the video default)")
    ap.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE",
                    help="override an encoder constant of inrcodec.models.MODULE for this run (A/B runs at equal "
                         "work, e.g. --set mcdct2.RDOQ_LAMBDA=0); repeatable")
    ap.add_argument("--merge", default=None,
                    help="a previous run's JSON on the same frames (rates run in two parts, e.g. the extreme rates "
                         "first): its inrcodec points join this run's curves, its baselines are kept where this run "
                         "has none (--codecs none), and the BD-rates are computed on the whole")
    ap.add_argument("-o", "--out", required=True, help="output prefix (writes PREFIX.json and PREFIX.png)")
    args = ap.parse_args()
    for item in args.set:
        set_constant(item)
    if not args.clip.exists():
        sys.exit(f"{args.clip} not found (the shared data folder is absent)")
    command = "python benchmarks/bench_video.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    info = machine()
    if args.baseline_points:
        result = {"command": command, "machine": info, "points": run_baseline_points(args)}
        result["machine"]["loadavg_end"] = os.getloadavg()
        Path(args.out + ".json").write_text(json.dumps(result, indent=2))
        return
    if args.rss:
        result = {"command": command, "machine": info, "rss": run_rss(args)}
        result["machine"]["loadavg_end"] = os.getloadavg()
        Path(args.out + ".json").write_text(json.dumps(result, indent=2))
        print(json.dumps({k: v for k, v in result["rss"].items() if k != "report"}, indent=2))
        return

    from inrcodec.video_compare import compare_video

    size = None if args.size is None else tuple(int(v) for v in args.size.lower().split("x"))
    clip = excerpt(args.clip, args.start, args.frames, size)
    if args.decode_fps:
        result = {"command": command, "machine": info, "decode": run_decode_fps(args, clip)}
        result["machine"]["loadavg_end"] = os.getloadavg()
        Path(args.out + ".json").write_text(json.dumps(result, indent=2))
        print(json.dumps({k: v for k, v in result["decode"].items() if k != "report"}, indent=2))
        return
    models = [m for m in args.models.split(",") if m and m != "none"]
    rates = [float(r) for r in args.rates.split(",")]

    def progress(frac, msg):
        print(f"[{100 * frac:3.0f}%] {msg} (load {os.getloadavg()[0]:.1f})", flush=True)

    t, h, w = clip.data.shape[:3]
    codecs = [c for c in args.codecs.split(",") if c and c != "none"]
    result = compare_video(clip, codecs, models, rates, args.time_budget, args.steps,
                           name=f"{args.clip.name} frames {args.start}-{args.start + t - 1}", gop=args.gop,
                           workers=args.workers, progress=progress)
    result["command"] = command
    result["commit"] = git_commit()
    if args.merge:
        from inrcodec.compare import PREFIX, bd_rates

        prev = json.loads(Path(args.merge).read_text())
        for name, pts in prev["curves"].items():
            if name.startswith(PREFIX):
                result["curves"][name] = sorted(result["curves"].get(name, []) + pts, key=lambda p: p["bpp"])
            elif name not in result["curves"]:
                result["curves"][name] = pts
        result["bd_rate"], result["bd_rate_notes"] = bd_rates(result["curves"])
        result["merged_from"] = {"path": args.merge, "command": prev.get("command"), "commit": prev.get("commit"),
                                 "machine": prev.get("machine")}
    info["loadavg_end"] = os.getloadavg()
    info["peak_rss_bytes_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["machine"] = info
    result["note"] = ("2 CPU cores shared with other jobs (load averages in 'machine'): encode seconds are upper "
                      "bounds. inrcodec encodes each GOP with the given --time-budget split over GOPs.")
    Path(args.out + ".json").write_text(to_json(result))
    fig = rd_figure(result, title=f"{args.clip.name}: {w}x{h}, {t} frames")
    fig.savefig(args.out + ".png", format="png")
    for name, pts in result["curves"].items():
        print(name, [(round(p["bpp"], 4), round(p["psnr"], 2), round(p["encode_s"], 1)) for p in pts])
    print(json.dumps(result["bd_rate"], indent=1))


if __name__ == "__main__":
    main()
