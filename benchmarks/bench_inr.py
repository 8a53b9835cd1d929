"""Rate-distortion and speed of the INR family (latentgrid, fourier, siren, hashgrid) on Kodak, against JPEG / WebP /
AVIF and the published COIN, COIN++, Strümpler et al. and Cool-chic curves.

    # what the committed results were made with (a few full images; the machine was shared, see the JSON note):
    .venv/bin/python benchmarks/bench_inr.py --images kodim03,kodim07,kodim01 --models latentgrid \\
        --rates 0.2,0.35,0.6,1.0 --time-budget 300 -o benchmarks/results/inr_kodak
    # all twelve images, every model (hours on 2 cores; resumable: finished points are kept in the JSON):
    .venv/bin/python benchmarks/bench_inr.py --models latentgrid,fourier,siren,hashgrid -o benchmarks/results/inr_kodak_all
    # speech (bits per sample, SNR):
    .venv/bin/python benchmarks/bench_inr.py --audio ../shared/data/audio/OSR_us_000_0034_8k.wav \\
        --models latentgrid,fourier,siren,hashgrid --rates 1,2,4 --time-budget 120 -o benchmarks/results/inr_audio
    # centre crops for a quick look (published curves are then not comparable and are left out):
    .venv/bin/python benchmarks/bench_inr.py --crop 256 --models fourier,siren --time-budget 60 -o /tmp/inr_crop

Every model point is one ``inrcodec.compress(signal, model, bpp=R, time_budget=T)`` (the same path as
``inrcodec fit --bpp R --time-budget T``) followed by ``decompress``; bpp counts the whole file and PSNR is measured
on the decoded 8-bit image (DESIGN.md, contract 2). Baseline curves come from benchmarks/results/kodak_rd.json when
it holds the image at full size, else they are swept here. The JSON is rewritten after every point, so an
interrupted run continues where it stopped (same output prefix and settings).

Derived figures: per image, the Bjøntegaard delta rate of each model against each baseline over the overlap of the
curves (rates restricted to --bd-range, default 0.2-1.0 bpp); the dataset average at matched rates (mean PSNR of
the images at common bpp points, see bench_kodak.py) and the BD-rate of those averages; median encode and decode
seconds per model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # before torch loads libgomp (see inrcodec/__init__.py)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_kodak  # noqa: E402
import published  # noqa: E402

from inrcodec import baselines, metrics  # noqa: E402
from inrcodec.codec import compress, decompress  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "kodak"
DEFAULT_BASELINES = ROOT / "benchmarks" / "results" / "kodak_rd.json"
BASELINES = ("jpeg", "webp", "avif")

# Strümpler, Postels, Yang, Van Gool, Tombari: "Implicit Neural Representations for Image Compression", ECCV 2022
# (arXiv:2112.04267). Their Kodak curve is published as a figure only (no result file in their repository,
# github.com/YannickStruempler/inr_based_compression), so only the one point quoted in issue #6 is drawn, as an
# approximate marker; one point cannot be BD-rated.
STRUMPLER = {
    "label": "Strümpler et al. 2022 (published, approx. point)",
    "bpp": [0.25], "psnr": [28.3],
    "images": "kodim01-24",
    "source": ("Strümpler et al., ECCV 2022, arXiv:2112.04267, Kodak RD figure (~28.3 dB at 0.25 bpp, as quoted "
               "in issue #6)"),
    "exact": False,
    "note": "one approximate point read off the paper's figure; not used for BD-rates",
}


def centre_crop(img: np.ndarray, n: int) -> np.ndarray:
    h, w = img.shape[:2]
    n = min(n, h, w)
    y, x = (h - n) // 2, (w - n) // 2
    return np.ascontiguousarray(img[y : y + n, x : x + n])


def baseline_curves(name: str, img: np.ndarray, crop: int, stored: dict) -> dict[str, list[dict]]:
    if not crop and name in stored:
        return {c: stored[name]["curves"][c] for c in BASELINES if c in stored[name]["curves"]}
    return {c: baselines.sweep_to_range(c, img, 0.12, 1.8, n=10) for c in BASELINES}


def run_point(sig: Signal, model: str, rate: float, time_budget: float | None, steps: int | None) -> dict:
    t0 = time.perf_counter()
    res = compress(sig, model, bpp=rate, time_budget=time_budget, steps=steps, seed=0)
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = decompress(res.data)
    dec = time.perf_counter() - t0
    rep = res.report
    x, e = sig.data.astype(np.float64), out.data.astype(np.float64) - sig.data.astype(np.float64)
    image = sig.kind == "image"
    return {"model": model, "target_bpp": rate, "bytes": len(res.data), "bpp": rep["bpp"],
            "psnr": metrics.psnr(sig.data, out.data), "ms_ssim": metrics.ms_ssim(sig.data, out.data) if image else None,
            "snr": float(10 * np.log10(np.sum(x**2) / max(np.sum(e**2), 1e-30))),
            "encode_s": enc, "decode_s": dec, "fit_steps": rep["fit_steps"], "fit_seconds": rep["fit_seconds"],
            "target_met": rep.get("target_met"), "quality": rep["quality"], "config": rep["config"],
            "load_avg_1min": os.getloadavg()[0]}


def in_range(points: list[dict], lo: float, hi: float) -> list[dict]:
    return [p for p in points if lo <= p["bpp"] <= hi]


RANGE_SLACK = 0.9  # rate control lands a little under its target: a 0.2 bpp target's 0.19 bpp file counts


def pareto(points: list[dict]) -> list[dict]:
    """Points not dominated by a smaller file of higher PSNR. (A fit whose network was too large to train in
    the time budget can come out worse than a smaller target's file, which also meets the larger target: an
    encoder would send that one; and BD-rate fits assume a monotone curve.)"""
    out: list[dict] = []
    for p in sorted(points, key=lambda q: q["bpp"]):
        if not out or p["psnr"] > out[-1]["psnr"]:
            out.append(p)
    return out


def derive(result: dict) -> None:
    lo, hi = result["settings"]["bd_range"]
    per_image = result["per_image"]
    for rec in per_image.values():
        rec["bd_rate"] = {}
        rec["dominated"] = {m: [p["target_bpp"] for p in pts if p not in pareto(pts)]
                            for m, pts in rec["models"].items()}
        for m, pts in rec["models"].items():
            rec["bd_rate"][m] = {}
            for b, bpts in rec["baselines"].items():
                try:
                    # baselines a little beyond the range so their fit covers the models' PSNR interval
                    rec["bd_rate"][m][b] = metrics.bd_rate(in_range(bpts, 0.8 * lo, 1.25 * hi),
                                                           in_range(pareto(pts), RANGE_SLACK * lo, hi))
                except InputError as exc:
                    rec["bd_rate"][m][b] = f"n/a: {exc}"
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 9))
    curves = {n: {"curves": {**r["baselines"], **{f"inrcodec-{m}": pareto(p) for m, p in r["models"].items()}}}
              for n, r in per_image.items()}
    avg = bench_kodak.dataset_average(curves, grid) if curves else {}
    result["average"] = avg
    extra = {} if result["dataset"]["crop"] else {**{k: dict(v) for k, v in published.CURVES.items()},
                                                  "strumpler": dict(STRUMPLER)}
    names = [n for n in per_image if n in published.COOLCHIC_KODAK_PER_IMAGE]
    if not result["dataset"]["crop"] and names:
        extra["coolchic-same-images"] = {"label": f"Cool-chic v1 (published, {', '.join(names)})",
                                         **published.coolchic_average(names), "images": ",".join(names),
                                         "source": published.COOLCHIC_SOURCE, "exact": True}
    result["published"] = extra
    result["bd_rate_of_averages"], result["bd_rate_psnr_overlap_db"] = bench_kodak.average_bd_rates(avg, extra)
    bd = {}
    for rec in per_image.values():
        for m, row in rec["bd_rate"].items():
            for b, v in row.items():
                if isinstance(v, float):
                    bd.setdefault(m, {}).setdefault(b, []).append(v)
    result["bd_rate_per_image_summary"] = {m: {b: {"mean": float(np.mean(v)), "median": float(np.median(v)),
                                                   "images": len(v)} for b, v in row.items()} for m, row in bd.items()}
    times = {}
    for rec in per_image.values():
        for m, pts in rec["models"].items():
            times.setdefault(m, {"encode": [], "decode": []})
            times[m]["encode"] += [p["encode_s"] for p in pts]
            times[m]["decode"] += [p["decode_s"] for p in pts]
    result["derivation"] = ("per image, each model's curve keeps its Pareto points (a file beaten by a smaller "
                            "one is dropped: `dominated` lists their targets) with bpp >= "
                            f"{RANGE_SLACK} x the range's low end; BD-rate over the shared PSNR interval")
    result["timing"] = {m: {"median_encode_s": float(np.median(t["encode"])),
                            "median_decode_s": float(np.median(t["decode"])), "points": len(t["encode"])}
                        for m, t in times.items()}


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for name, cur in result["average"].items():
        if cur.get("bpp"):
            ours = name.startswith("inrcodec-")
            ax.plot(cur["bpp"], cur["psnr"], "o-" if ours else "--", lw=2 if ours else 1.2, ms=4,
                    label=f"{name} (mean of {cur['images']})")
    for key, cur in result["published"].items():
        if cur.get("bpp"):
            ax.plot(cur["bpp"], cur["psnr"], ":", marker="x", ms=4, label=cur["label"])
    lo, hi = result["settings"]["bd_range"]
    ax.set_xlim(0.8 * lo, 1.25 * hi)
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("RGB PSNR (dB)")
    crop = result["dataset"]["crop"]
    ax.set_title(f"Kodak {', '.join(result['per_image'])}" + (f" (centre {crop}px crops)" if crop else ""), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write(result: dict, out: Path) -> None:
    with atomic_output(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=float))


def audio_main(args) -> int:
    """--audio FILE: each model at each rate (bits per sample) on one recording; SNR and PSNR of the decoded
    samples, encode/decode seconds. Writes <out>.json."""
    sig = load(args.audio)
    x = sig.data.astype(np.float64)
    rows = []
    for model in [m for m in args.models.split(",") if m]:
        for rate in [float(r) for r in args.rates.split(",") if r]:
            p = run_point(sig, model, rate, args.time_budget or None, args.steps)
            rows.append(p)
            print(f"{model} target {rate}: {p['bpp']:.3f} bit/sample PSNR {p['psnr']:.2f} dB "
                  f"SNR {p['snr']:.2f} dB encode {p['encode_s']:.0f} s", flush=True)
    opus = []
    sr = int(sig.metadata.get("sample_rate") or 8000)
    for kbps in (6, 8, 12, 16, 24, 32):  # the codec a speech user already has
        try:
            data, y = baselines.opus_roundtrip(sig.data, sr, kbps)
        except InputError as exc:
            opus = [{"skipped": str(exc)}]
            break
        e = y.astype(np.float64) - x[:, 0]
        opus.append({"kbps": kbps, "bytes": len(data), "bpp": 8 * len(data) / x.shape[0],
                     "snr": float(10 * np.log10(np.sum(x**2) / max(np.sum(e**2), 1e-30))),
                     "psnr": metrics.psnr(sig.data, y[:, None])})
        print(f"opus {kbps} kbit/s: {opus[-1]['bpp']:.3f} bit/sample SNR {opus[-1]['snr']:.2f} dB", flush=True)
    summary = {}
    for model in {p["model"] for p in rows}:
        pts = sorted((p["bpp"], p["snr"]) for p in rows if p["model"] == model)
        ref = sorted((o["bpp"], o["snr"]) for o in opus if "snr" in o)
        try:
            summary[model] = {"bd_rate_vs_opus_snr": metrics.bd_rate([{"bpp": b, "psnr": q} for b, q in ref],
                                                                      [{"bpp": b, "psnr": q} for b, q in pts])}
        except InputError as exc:
            summary[model] = {"bd_rate_vs_opus_snr": f"n/a: {exc}"}
    result = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "note": args.note,
              "opus": opus, "bd_rate_vs_opus_snr": summary,
              "input": str(args.audio), "samples": int(x.shape[0]), "sample_rate": sig.metadata.get("sample_rate"),
              "settings": {"time_budget": args.time_budget, "steps": args.steps},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "points": rows,
              "conventions": "bpp = file bits per sample; PSNR on the int16 peak; SNR = 10 log10(sum x^2 / sum e^2); "
                             "BD-rate vs Opus computed on (bits per sample, SNR) curves; Opus = libopus via PyAV, "
                             "Ogg container, constant target bitrate, a perceptual codec (SNR is not what it "
                             "optimises)"}
    write(result, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", default="", help="comma-separated stems (default: every kodim*.png)")
    ap.add_argument("--crop", type=int, default=0, help="centred NxN crop (0: full image)")
    ap.add_argument("--models", default="latentgrid")
    ap.add_argument("--rates", default="0.2,0.35,0.6,1.0")
    ap.add_argument("--time-budget", type=float, default=300.0, help="seconds per encode (0: none)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--bd-range", default="0.2,1.0")
    ap.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES, help="stored baseline curves (JSON)")
    ap.add_argument("--note", default="")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks" / "results" / "inr_kodak")
    ap.add_argument("--audio", type=Path, default=None, help="benchmark this recording instead of Kodak")
    ap.add_argument("--rederive", type=Path, default=None,
                    help="recompute the derived figures and the plot of a results JSON (no encoding)")
    args = ap.parse_args(argv)
    if args.audio is not None:
        return audio_main(args)
    if args.rederive is not None:
        result = json.loads(args.rederive.read_text())
        derive(result)
        write(result, args.rederive.with_suffix(""))
        figure(result, args.rederive.with_suffix(".png"))
        for m, row in result["bd_rate_of_averages"].items():
            print(m, {b: (round(v, 1) if isinstance(v, float) else v) for b, v in row.items()})
        return 0

    names = [s for s in args.images.split(",") if s] or sorted(p.stem for p in args.data.glob("kodim*.png"))
    models = [m for m in args.models.split(",") if m]
    rates = [float(r) for r in args.rates.split(",") if r]
    settings = {"models": models, "rates": rates, "time_budget": args.time_budget or None, "steps": args.steps,
                "bd_range": [float(v) for v in args.bd_range.split(",")], "crop": args.crop}
    json_path = args.out.with_suffix(".json")
    result = json.loads(json_path.read_text()) if json_path.exists() else {}
    same = result.get("settings", {}).get("time_budget") == settings["time_budget"] and \
        result.get("dataset", {}).get("crop") == args.crop
    if not same:
        result = {"per_image": {}}
    result.update({
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None
                                                                                else sys.argv[1:])]),
        "note": args.note or result.get("note", ""),
        "dataset": {"folder": str(args.data), "images": sorted(set(result.get("dataset", {}).get("images", []))
                                                              | set(names)), "crop": args.crop},
        "settings": settings,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
    })
    stored = {}
    if args.baselines.exists():
        stored = json.loads(args.baselines.read_text()).get("per_image", {})
    for name in names:
        img = load(args.data / f"{name}.png").data
        if args.crop:
            img = centre_crop(img, args.crop)
        sig = Signal(img)
        rec = result["per_image"].setdefault(name, {"models": {}})
        if "baselines" not in rec:
            rec["baselines"] = baseline_curves(name, img, args.crop, stored)
        for model in models:
            pts = rec["models"].setdefault(model, [])
            for rate in rates:
                if any(p["target_bpp"] == rate for p in pts):
                    continue  # done in an earlier (interrupted) run
                p = run_point(sig, model, rate, settings["time_budget"], args.steps)
                pts.append(p)
                pts.sort(key=lambda q: q["bpp"])
                print(f"{name} {model} target {rate}: {p['bpp']:.3f} bpp {p['psnr']:.2f} dB "
                      f"encode {p['encode_s']:.0f} s ({p['fit_steps']} steps) load {p['load_avg_1min']:.1f}",
                      flush=True)
                derive(result)
                write(result, args.out)
    derive(result)
    write(result, args.out)
    figure(result, args.out.with_suffix(".png"))
    for m, row in result["bd_rate_of_averages"].items():
        print(m, {b: (round(v, 1) if isinstance(v, float) else v) for b, v in row.items()})
    print("timing", result["timing"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
