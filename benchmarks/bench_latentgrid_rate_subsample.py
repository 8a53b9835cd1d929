"""Rate-distortion of the latent-grid training with the rate term on a row subsample (context.RATE_SUBSAMPLE)
against the exact rate every step, at an equal, short step count: real coded bpp and PSNR of `inrcodec fit`.

    PYTHONPATH=. python benchmarks/bench_latentgrid_rate_subsample.py run --subsample 1,4,8 \
        [--images kodim03,kodim01] [--bpp 0.3,1.0] [--steps 400] [--src DIR] --out-dir /tmp/rd
    PYTHONPATH=. python benchmarks/bench_latentgrid_rate_subsample.py summarise exact=/tmp/rd/1 sub4=/tmp/rd/4 ... \
        -o benchmarks/results/latentgrid_rate_subsample_rd

``run`` calls the command line once per (image, bpp, subsample): ``inrcodec fit IMAGE --model latentgrid --bpp R
--steps N --seed 0 --json`` with OMP_NUM_THREADS=1, the subsample set by patching the model's RATE_SUBSAMPLE
before the CLI starts (``--src``: run another checkout's code instead, e.g. the parent commit for "before"; there
subsample 1 means "as that checkout trains"). ``summarise`` reads the run folders (``NAME_BPP.json`` and the
``NAME_BPP.time`` of /usr/bin/time: wall and user seconds) and compares each variant with the first at equal bpp:
the coded bpp never lands exactly on the target, so the PSNR difference is corrected along the first variant's own
curve (its slope in dB per doubling of rate between its two points on that image).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "kodak"

PATCH = ("import sys, inrcodec.models.latentgrid.model as m; k = int(sys.argv.pop(1)); "
         "setattr(m, 'RATE_SUBSAMPLE', k) if hasattr(m, 'RATE_SUBSAMPLE') else None; "
         "from inrcodec.cli import main; sys.argv[0] = 'inrcodec'; main()")


def run(args) -> None:
    src = Path(args.src).resolve() if args.src else ROOT
    for k in [int(v) for v in args.subsample.split(",")]:
        out = Path(args.out_dir) / str(k)
        out.mkdir(parents=True, exist_ok=True)
        for img in args.images.split(","):
            for bpp in args.bpp.split(","):
                stem = out / f"{img}_{bpp}"
                cmd = ["/usr/bin/time", "-f", "%e wall %U user", "-o", f"{stem}.time", sys.executable, "-c", PATCH,
                       str(k), "fit", str(DATA / f"{img}.png"), "--model", "latentgrid", "--bpp", bpp, "--steps",
                       str(args.steps), "--seed", "0", "-q", "-o", f"{stem}.inrc", "--json", f"{stem}.json"]
                env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(src))
                load = os.getloadavg()[0]
                subprocess.run(cmd, cwd=src, env=env, check=True)
                (stem.parent / f"{stem.name}.load").write_text(f"{load}\n")
                print(stem, Path(f"{stem}.time").read_text().strip(), f"load {load:.1f}", flush=True)


def _point(folder: Path, name: str) -> dict | None:
    js = folder / f"{name}.json"
    if not js.is_file():
        return None
    d = json.loads(js.read_text())
    p = {"bpp": d["bpp"], "psnr": d["psnr"], "bytes": d["bytes"], "fit_seconds_wall": d["seconds"]}
    tm = folder / f"{name}.time"
    if tm.is_file():
        parts = tm.read_text().split()
        p["process_wall_s"], p["process_user_cpu_s"] = float(parts[0]), float(parts[2])
    return p


def summarise(args) -> None:
    variants = [v.split("=", 1) for v in args.variants]
    images, bpps = args.images.split(","), args.bpp.split(",")
    table = {name: {img: {b: _point(Path(d), f"{img}_{b}") for b in bpps} for img in images} for name, d in variants}
    ref_name = variants[0][0]
    comparisons = []
    for img in images:
        ref = table[ref_name][img]
        lo, hi = ref[bpps[0]], ref[bpps[-1]]
        slope = (hi["psnr"] - lo["psnr"]) / math.log2(hi["bpp"] / lo["bpp"])  # dB per doubling of rate
        for name, _ in variants[1:]:
            for b in bpps:
                p, r = table[name][img][b], ref[b]
                if p is None or r is None:
                    continue
                raw = p["psnr"] - r["psnr"]
                at_equal_bpp = raw - slope * math.log2(p["bpp"] / r["bpp"])
                comparisons.append({"image": img, "target_bpp": float(b), "variant": name, "reference": ref_name,
                                    "bpp": round(p["bpp"], 4), "ref_bpp": round(r["bpp"], 4),
                                    "psnr_diff_raw_db": round(raw, 3), "slope_db_per_doubling": round(slope, 3),
                                    "psnr_diff_at_equal_bpp_db": round(at_equal_bpp, 3),
                                    "cpu_s": p.get("process_user_cpu_s"), "ref_cpu_s": r.get("process_user_cpu_s")})
    result = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "steps": args.steps, "variants": dict(variants), "points": table, "comparisons": comparisons,
              "load_now": os.getloadavg(), "note": args.note}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    for c in comparisons:
        print(json.dumps(c))
    plot(table, images, bpps, out.with_suffix(".png"), args.steps)


def plot(table, images, bpps, path: Path, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(5 * len(images), 4))
    for ax, img in zip(list(axes) if len(images) > 1 else [axes], images):
        for name, per_img in table.items():
            pts = [per_img[img][b] for b in bpps if per_img[img][b] is not None]
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], "o-", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("coded bpp (whole file)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{img}, latentgrid, {steps} steps", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--subsample", default="1,4")
    r.add_argument("--src", default=None)
    r.add_argument("--out-dir", required=True)
    s = sub.add_parser("summarise")
    s.add_argument("variants", nargs="+", help="NAME=FOLDER, the first is the reference")
    s.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/latentgrid_rate_subsample_rd"))
    s.add_argument("--note", default="")
    for p in (r, s):
        p.add_argument("--images", default="kodim03,kodim01")
        p.add_argument("--bpp", default="0.3,1.0")
        p.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    run(args) if args.mode == "run" else summarise(args)


if __name__ == "__main__":
    main()
