"""``gaussian+dct`` with the Gaussian base fitted for the residual (``residual_loss``) against the MSE-fitted base:
real files (``inrcodec.compress`` at each target bpp, decoded, PSNR on 8-bit RGB), no baselines.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_base_loss_lab.py --images kodim03,kodim07 \\
        --rates 0.2,0.35,0.6,1.0 --steps 1000 --set BASE_LOSS=rd --set RD_START=0.5 \\
        --anchor benchmarks/results/gdct_base_loss_mse.json -o benchmarks/results/gdct_base_loss_rd0p5

``--set NAME=VALUE`` sets a constant of ``inrcodec.models.gaussian_dct`` (BASE_LOSS, RD_START, RD_STEP_FACTOR,
RD_ESTIMATES as a ``/``-separated list) or ``residual_loss`` / ``image_dct`` / ``codec`` (``residual_loss.BITS_CODED``,
``codec.SIZE_SEARCH_TOL``...) for this run.
``--anchor`` (a JSON of this script): BD-rate of this run against it per image, and their mean. ``--baselines``
(a ``bench_kodak.py`` JSON per image, ``{stem}`` in the name): BD-rate of this run (and the anchor) against its
JPEG / WebP / AVIF curves (deterministic codecs: any machine's run serves). ``--rescore RUN.json`` recomputes
the comparisons of an earlier run without fitting. One thread,
fixed steps: the figures are independent of the machine's load except the CPU seconds. Writes ``<out>.json``
(+ ``.png`` of the curves with the anchor's).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import compress, decompress, metrics  # noqa: E402
from inrcodec.compare import crop_signal  # noqa: E402
from inrcodec import codec as codec_mod  # noqa: E402
from inrcodec.models import gaussian_dct, image_dct, residual_loss  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def _set(name: str, value: str) -> None:
    mod = gaussian_dct
    if "." in name:
        prefix, name = name.split(".", 1)
        mod = {"residual_loss": residual_loss, "gaussian_dct": gaussian_dct, "codec": codec_mod,
               "image_dct": image_dct}[prefix]
    old = getattr(mod, name)
    if isinstance(old, tuple):
        new = tuple(float(v) for v in value.split("/") if v)
    elif isinstance(old, str):
        new = value
    else:
        new = type(old)(value)
    setattr(mod, name, new)


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse > 0 else 99.0


def _curve(points):
    pts = sorted(points, key=lambda p: p["bpp"])
    return {"bpp": [p["bpp"] for p in pts], "psnr": [p["psnr"] for p in pts]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--rates", default="0.2,0.35,0.6,1.0")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--crop", type=int, default=0, help="centred NxN crop (0: the whole image; for quick screens)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--anchor", type=Path, default=None)
    ap.add_argument("--baselines", default="benchmarks/results/gaussian_dct_s21gtx_kodak_rd_medium1000_{stem}.json")
    ap.add_argument("--rescore", type=Path, default=None, help="a JSON of this script: compare again, no fits")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for s in args.set:
        _set(*s.split("=", 1))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout)
    result = {"command": "python benchmarks/gdct_base_loss_lab.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
              "git_commit": commit + ("+dirty" if dirty else ""), "settings": args.set, "steps": args.steps,
              "crop": args.crop, "seed": args.seed,
              "load_start": os.getloadavg(), "threads": 1, "per_image": {}}
    if args.rescore is not None:
        result = json.loads(args.rescore.read_text())
        return _compare(result, args)
    for stem in args.images.split(","):
        sig = load(DATA / f"{stem}.png")
        if args.crop:
            sig = crop_signal(sig, args.crop, args.crop)
        pts = []
        for rate in (float(r) for r in args.rates.split(",")):
            c0 = time.process_time()
            res = compress(sig, "gaussian+dct", bpp=rate, steps=args.steps, seed=args.seed)
            cpu = time.process_time() - c0
            dec = decompress(res.data).data
            p = {"target": rate, "bytes": len(res.data), "bpp": 8 * len(res.data) / sig.num_pixels,
                 "psnr": psnr8(sig.data, dec), "cpu_s": round(cpu, 2), "load": os.getloadavg()[0]}
            pts.append(p)
            print(f"{stem} {rate}: {p['bpp']:.4f} bpp {p['psnr']:.3f} dB {cpu:.1f} CPU-s", flush=True)
        result["per_image"][stem] = {"points": pts}
    result["load_end"] = os.getloadavg()
    return _compare(result, args)


def _compare(result: dict, args) -> int:
    anchor = None if args.anchor is None else json.loads(args.anchor.read_text())
    for stem, r in result["per_image"].items():
        path = ROOT / args.baselines.format(stem=stem)
        if not path.exists():
            continue
        curves = json.loads(path.read_text())["per_image"][stem]["curves"]
        r["bd_rate_vs_baselines"] = {b: metrics.bd_rate(_curve(curves[b]), _curve(r["points"]))
                                     for b in ("jpeg", "webp", "avif") if b in curves}
        if anchor is not None and stem in anchor["per_image"]:
            r["anchor_bd_rate_vs_baselines"] = {
                b: metrics.bd_rate(_curve(curves[b]), _curve(anchor["per_image"][stem]["points"]))
                for b in ("jpeg", "webp", "avif") if b in curves}
        r["baselines_from"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        print(stem, "vs baselines:", json.dumps(r["bd_rate_vs_baselines"]),
              "anchor:", json.dumps(r.get("anchor_bd_rate_vs_baselines")))
    _average_bd_rates(result, args, anchor)
    if anchor is not None:
        result["anchor"] = str(args.anchor)
        bds = {}
        for stem, r in result["per_image"].items():
            if stem in anchor["per_image"]:
                bds[stem] = metrics.bd_rate(_curve(anchor["per_image"][stem]["points"]), _curve(r["points"]))
                r["bd_rate_vs_anchor"] = bds[stem]
        result["mean_bd_rate_vs_anchor"] = float(np.mean(list(bds.values()))) if bds else None
        print("BD-rate vs anchor:", json.dumps(bds), "mean", result["mean_bd_rate_vs_anchor"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    _figure(result, args.out, anchor)
    return 0


def _average_bd_rates(result: dict, args, anchor: dict | None) -> None:
    """Where every image has its baselines: BD-rate of the average curves (``bench_kodak.py``'s averaging: mean
    PSNR at its grid of the first baseline file) of this run and of the anchor against each baseline's average,
    and the mean of the per-image figures."""
    import bench_kodak

    stems = list(result["per_image"])
    files = [ROOT / args.baselines.format(stem=s) for s in stems]
    if len(stems) < 2 or not all(f.exists() for f in files):
        return
    runs = [json.loads(f.read_text()) for f in files]
    grid = np.asarray(runs[0]["settings"]["average_grid_bpp"], dtype=np.float64)
    ours = "inrcodec-gaussian+dct"

    def as_curve(points):  # the fields the averaging reads
        return [{"bpp": p["bpp"], "psnr": p["psnr"], "encode_s": p.get("cpu_s", 0.0), "decode_s": 0.0} for p in points]
    out = {}
    for label, res in (("this run", result), ("anchor", anchor)):
        if res is None or not all(s in res["per_image"] for s in stems):
            continue
        per_image = {s: {"curves": {**{b: run["per_image"][s]["curves"][b] for b in ("jpeg", "webp", "avif")},
                                    ours: as_curve(res["per_image"][s]["points"])}} for s, run in zip(stems, runs)}
        table, _ = bench_kodak.average_bd_rates(bench_kodak.dataset_average(per_image, grid), {})
        out[label] = {"average_curves": table[ours],
                      "mean_of_images": {b: float(np.mean([metrics.bd_rate(_curve(c[b]), _curve(res["per_image"][s]["points"]))
                                                           for s, c in ((s, p["curves"]) for s, p in per_image.items())]))
                                         for b in ("jpeg", "webp", "avif")}}
    result["bd_rate_kodak_average"] = {"images": stems, "grid_bpp": grid.tolist(), **out}
    print("average curves:", json.dumps(out))


def _figure(result: dict, out: Path, anchor: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stems = list(result["per_image"])
    fig, axes = plt.subplots(1, len(stems), figsize=(5 * len(stems), 4), squeeze=False)
    for ax, stem in zip(axes[0], stems):
        for label, res, style in (("anchor", anchor, "--o"), ("this run", result, "-o")):
            if res is None or stem not in res["per_image"]:
                continue
            c = _curve(res["per_image"][stem]["points"])
            ax.plot(c["bpp"], c["psnr"], style, ms=3, label=label)
        bd = result["per_image"][stem].get("bd_rate_vs_anchor")
        ax.set_title(stem + ("" if bd is None else f": {bd:+.2f} % vs anchor"))
        ax.set_xlabel("bpp")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=90)


if __name__ == "__main__":
    sys.exit(main())
