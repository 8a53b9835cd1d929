"""Scale check: peak RSS and seconds of ``inrcodec fit`` per image model on one large photo, tiled or not.

    .venv/bin/python benchmarks/bench_scale.py --photo icinfo_gray8bit_spider_web --models gaussian,latentgrid \\
        --steps 5 --modes auto -o benchmarks/results/scale_12mp

Each encode is the CLI in its own process (``--steps N --bpp R``, ``--no-tile`` or the automatic tiling), so its
peak RSS is ``ru_maxrss`` of that child and its CPU seconds ``ru_utime + ru_stime`` (less sensitive to the
machine's load than wall-clock). Few steps on purpose: memory is set by the image and the model's tensors
(what a step holds), not by how many steps run; seconds here are start-up + placement + N steps + coding, under
the shared machine's load (stored), not an RD figure. ``--crops`` adds top-left crops of the photo (in
megapixels) to run instead of the whole photo.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.signals._atomic import atomic_output  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos"


def crop_to(photo: Path, megapixels: float, tmp: Path) -> Path:
    import imagecodecs
    import numpy as np

    img = imagecodecs.png_decode(photo.read_bytes())
    h, w = img.shape[:2]
    k = min(1.0, (megapixels * 1e6 / (h * w)) ** 0.5)
    out = tmp / f"{photo.stem}_{megapixels:g}mp.png"
    out.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(img[: round(h * k), : round(w * k)])))
    return out


def run(photo: Path, model: str, steps: int, bpp: float, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rep = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "inrcodec", "fit", str(photo), "-o", str(Path(tmp) / "o.inrc"), "--model",
               model, "--steps", str(steps), "--bpp", str(bpp), "--json", str(rep), "-q"]
        if mode == "whole":
            cmd.append("--no-tile")
        elif mode != "auto":
            cmd += ["--tile", mode]
        load = list(os.getloadavg())
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        out = {"model": model, "mode": mode, "steps": steps, "wall_s": time.perf_counter() - t0,
               "peak_rss_mb": usage.ru_maxrss / 1024.0, "cpu_s": usage.ru_utime + usage.ru_stime, "load_before": load, "cmd": shlex.join(cmd[1:])}
        if status != 0:
            out["error"] = proc.stdout.read().decode(errors="replace").strip().splitlines()[-1:]
            return out
        r = json.loads(rep.read_text())
        out.update({k: r.get(k) for k in ("bpp", "psnr", "seconds", "tiles", "grid", "layout", "fit_steps")})
        out["load_after"] = list(os.getloadavg())
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--photo", default="icinfo_gray8bit_spider_web")
    ap.add_argument("--models", default="gaussian,latentgrid")
    ap.add_argument("--modes", default="auto", help="comma list of auto | whole | TILE_SIDE")
    ap.add_argument("--crops", default="", help="comma list of megapixels (default: the whole photo)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--bpp", default="0.5", help="comma list of rates")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    photo = args.data / f"{args.photo}.png"
    result = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "photo": args.photo,
              "machine": "2-core shared dev machine, timings under contention (load stored per run)",
              "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        crops = [(float(c), crop_to(photo, float(c), Path(tmp))) for c in args.crops.split(",") if c]
        inputs = crops or [(None, photo)]
        for mp, path in inputs:
            for model in args.models.split(","):
                for mode, bpp in [(m, float(b)) for b in args.bpp.split(",") for m in args.modes.split(",")]:
                    r = run(path, model, args.steps, bpp, mode)
                    r["megapixels"] = mp
                    print(json.dumps(r), flush=True)
                    result["runs"].append(r)
                    args.output.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_output(args.output.with_suffix(".json")) as t:
                        Path(t).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
