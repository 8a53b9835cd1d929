"""Kodak rate-distortion benchmark: classical codecs and inrcodec models, per image and dataset average.

    .venv/bin/python benchmarks/bench_kodak.py                          # all images, baselines + default model
    .venv/bin/python benchmarks/bench_kodak.py --models none            # baselines only (fast)
    .venv/bin/python benchmarks/bench_kodak.py --images kodim01,kodim02 --crop 256 --models fourier \\
        --time-budget 60 -o benchmarks/results/kodak_crop256

Each image goes through ``inrcodec.compare.compare`` (the same code path as ``inrcodec compare``). Baselines are
swept over ``--bpp-range`` (default 0.12-1.8 bpp, a little wider than the 0.15-1.5 bpp that is averaged, so that
every image's curve reaches the ends of the averaging grid), our models are fitted at ``--rates``.

Dataset average (measurement conventions, DESIGN.md): mean of per-image PSNR *at matched rates*. Each image's
curve is interpolated at common bpp points (``--grid`` points spaced evenly in log-bpp over the averaging range),
linearly in (log bpp, PSNR) between its measured points, never extrapolated; a grid point enters a codec's
average only if every image's curve covers it, so the mean is always over the same images. MS-SSIM is averaged
the same way. The published curves (benchmarks/published.py) are drawn as given by their authors.

A codec left out of a long model run is added afterwards without re-fitting: run it alone on the same images
(``--models none --codecs jpegxl``, the same ``--avg-range``) and pass that run to ``--merge``/``--replot`` with
``--add-baselines``.

Writes ``<out>.json`` (per-image curves, averages, BD-rates of the averages, JPEG cross-check, published curves,
versions, the exact command) and ``<out>.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import published  # noqa: E402

from inrcodec import metrics  # noqa: E402
from inrcodec.compare import (DEFAULT_CODECS, PREFIX, _finite_points, compare, crop_signal,  # noqa: E402
                              rd_figure, software_versions, to_json)
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "kodak"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "kodak_rd"


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def interpolate(points: list[dict], grid: np.ndarray, key: str = "psnr") -> np.ndarray:
    """``key`` of a curve at the bpp values of ``grid``: linear in log-bpp, NaN outside the measured range."""
    pts = [p for p in _finite_points(points) if p.get(key) is not None]
    if len(pts) < 2:
        return np.full(len(grid), np.nan)
    pts = sorted(pts, key=lambda p: p["bpp"])
    x = np.log([p["bpp"] for p in pts])
    y = np.array([p[key] for p in pts], dtype=np.float64)
    lg = np.log(grid)
    out = np.interp(lg, x, y)
    out[(lg < x[0] - 1e-12) | (lg > x[-1] + 1e-12)] = np.nan
    return out


def dataset_average(per_image: dict[str, dict], grid: np.ndarray) -> dict[str, dict]:
    """Per curve name: mean PSNR / MS-SSIM over images at each grid bpp that every image's curve covers."""
    names = sorted({n for r in per_image.values() for n in r["curves"]})
    out = {}
    for name in names:
        have = [r["curves"][name] for r in per_image.values() if name in r["curves"]]
        if len(have) != len(per_image):  # a codec skipped on some image: an average would mix image sets
            out[name] = {"bpp": [], "psnr": [], "ms_ssim": [], "images": len(have),
                         "note": f"missing on {len(per_image) - len(have)} image(s); no average"}
            continue
        psnr = np.array([interpolate(c, grid, "psnr") for c in have])
        ssim = np.array([interpolate(c, grid, "ms_ssim") for c in have])
        ok = ~np.isnan(psnr).any(axis=0)
        enc = [p["encode_s"] for c in have for p in c]
        dec = [p["decode_s"] for c in have for p in c]
        out[name] = {
            "bpp": grid[ok].tolist(),
            "psnr": psnr[:, ok].mean(axis=0).tolist(),
            "ms_ssim": ssim[:, ok].mean(axis=0).tolist(),
            "images": len(have),
            "median_encode_s": float(np.median(enc)),
            "median_decode_s": float(np.median(dec)),
        }
    return out


def average_bd_rates(avg: dict[str, dict], extra: dict[str, dict]) -> tuple[dict, dict]:
    """BD-rate (%) of each inrcodec average and each published curve against each baseline average.

    Returns ``(table, overlap)``: ``table[row][baseline]`` is a number or ``"n/a: why"``; ``overlap[row][baseline]``
    the PSNR interval [lo, hi] (dB) the two fits were averaged over (under ~1 dB the number is fragile)."""
    bases = [n for n in avg if not n.startswith(PREFIX)]
    rows = {n: avg[n] for n in avg if n.startswith(PREFIX)}
    rows.update({k: v for k, v in extra.items() if v.get("bpp")})
    table: dict[str, dict[str, float | str]] = {}
    overlap: dict[str, dict[str, list[float]]] = {}
    for r, cr in rows.items():
        table[r], overlap[r] = {}, {}
        for b in bases:
            try:
                table[r][b] = metrics.bd_rate(avg[b], {"bpp": cr["bpp"], "psnr": cr["psnr"]})
            except InputError as exc:
                table[r][b] = f"n/a: {exc}"
                continue
            overlap[r][b] = [max(min(avg[b]["psnr"]), min(cr["psnr"])), min(max(avg[b]["psnr"]), max(cr["psnr"]))]
    return table, overlap


def _per_image_bd_rates(curves: dict[str, list]) -> dict[str, dict[str, float | str]]:
    """BD-rate of each inrcodec curve of one image against each baseline curve of the same image."""
    out: dict[str, dict[str, float | str]] = {}
    for r in (n for n in curves if n.startswith(PREFIX)):
        out[r] = {}
        for b in (n for n in curves if not n.startswith(PREFIX)):
            pts = {n: sorted(curves[n], key=lambda p: p["bpp"]) for n in (r, b)}
            c = {n: {"bpp": [p["bpp"] for p in v], "psnr": [p["psnr"] for p in v]} for n, v in pts.items()}
            try:
                out[r][b] = metrics.bd_rate(c[b], c[r])
            except InputError as exc:
                out[r][b] = f"n/a: {exc}"
    return out


def _mean_of_images(per_image_bd: dict) -> dict[str, dict[str, float]]:
    """Mean over images of the per-image BD-rates (the images where the number exists; their count beside it)."""
    rows = {r for v in per_image_bd.values() for r in v}
    out: dict[str, dict[str, float]] = {}
    for r in sorted(rows):
        cols = {b for v in per_image_bd.values() for b in v.get(r, {})}
        out[r] = {}
        for b in sorted(cols):
            vals = [v[r][b] for v in per_image_bd.values() if isinstance(v.get(r, {}).get(b), float)]
            if vals:
                out[r][b] = float(np.mean(vals))
                out[r][b + "_images"] = len(vals)
    return out


def _same(a, b) -> bool:
    """Equal settings; float lists (the averaging grid) to rounding, as runs on other machines print them."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(x, float) for x in a + b):
        return bool(np.allclose(a, b, rtol=1e-12, atol=0))
    return a == b


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out + (" (modified)" if dirty else "")
    except OSError:
        return "unknown"


def merge(paths: list[Path], note: str, allow: tuple[str, ...] = ()) -> dict:
    """One result from several runs of this script on different images with the same settings (e.g. one run per
    image, so that a long benchmark keeps what it has measured): their per-image measurements side by side.
    ``allow``: settings that may differ (e.g. ``steps`` where a preset's schedule changed between the runs); each
    image keeps its own run's settings in ``per_image``, and ``merged_from`` lists them."""
    runs = [json.loads(p.read_text()) for p in paths]
    keep = tuple(k for k in ("rates", "steps", "time_budget", "codecs", "models", "average_grid_bpp", "crop")
                 if k not in allow)
    first = runs[0]
    for p, r in zip(paths[1:], runs[1:]):
        diff = [k for k in keep if not _same(r["settings"].get(k), first["settings"].get(k))]
        if diff:
            raise SystemExit(f"bench_kodak --merge: {p} differs in {', '.join(diff)}")
    out = {k: v for k, v in first.items() if k not in ("per_image", "jpeg_check", "command", "note", "seconds")}
    out["per_image"] = {s: v for r in runs for s, v in r["per_image"].items()}
    out["dataset"] = dict(first["dataset"], images=sorted(out["per_image"]))
    out["jpeg_check"] = {"per_image": {s: v for r in runs for s, v in r.get("jpeg_check", {}).get("per_image", {}).items()}}
    out["merged_from"] = [{"path": str(p), "command": r.get("command"), "note": r.get("note"),
                           "git_commit": r.get("git_commit"), "settings": {k: r["settings"].get(k) for k in allow},
                           "seconds": r.get("seconds")} for p, r in zip(paths, runs)]
    out["command"] = "python benchmarks/bench_kodak.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    out["note"] = note
    return out


def add_baselines(result: dict, path: Path) -> dict:
    """Add the baseline curves of another run on the same images (e.g. ``--models none --codecs jpegxl``) to
    ``result``, so that a codec left out of a long model run is compared without re-fitting anything.

    The runs must share the images, the crop and the averaging grid; a codec both runs have is refused (which of
    the two measurements would be meant?)."""
    other = json.loads(path.read_text())
    for key in ("average_grid_bpp", "baseline_bpp_range"):
        if not _same(other["settings"].get(key), result["settings"].get(key)):
            raise SystemExit(f"bench_kodak --add-baselines: {path} differs in {key}")
    if other["dataset"].get("crop") != result["dataset"].get("crop"):
        raise SystemExit(f"bench_kodak --add-baselines: {path} differs in crop")
    missing = sorted(set(result["per_image"]) - set(other["per_image"]))
    if missing:
        raise SystemExit(f"bench_kodak --add-baselines: {path} lacks {', '.join(missing)}")
    added = list(other["settings"]["codecs"])  # baselines only: the models are under settings["models"]
    clash = sorted(set(added) & set(result["settings"]["codecs"]))
    if clash:
        raise SystemExit(f"bench_kodak --add-baselines: both runs measured {', '.join(clash)}")
    for stem, image in result["per_image"].items():
        theirs = other["per_image"][stem]
        for codec in added:
            image["curves"][codec] = theirs["curves"][codec]
            image["codecs"][codec] = theirs["codecs"][codec]
        image["bd_rate"] = {r: {b: v for b, v in row.items() if isinstance(v, float)}
                            for r, row in _per_image_bd_rates(image["curves"]).items()}
    result["settings"]["codecs"] = result["settings"]["codecs"] + added
    result.setdefault("baselines_from", []).append(
        {"path": str(path), "command": other.get("command"), "git_commit": other.get("git_commit"), "codecs": added})
    return result


def derive(result: dict) -> dict:
    """(Re)compute everything derived from the stored per-image measurements: averages, published curves,
    BD-rates of the averages, the JPEG-check summary. Pure function of ``result`` and ``published.py``."""
    per_image, ds = result["per_image"], result["dataset"]
    grid = np.asarray(result["settings"]["average_grid_bpp"], dtype=np.float64)
    avg = dataset_average(per_image, grid)
    ours_images = [s for s in ds["images"] if s in published.COOLCHIC_KODAK_PER_IMAGE]
    # Published curves are on whole Kodak images: against crops they would compare different pictures.
    extra = {} if ds.get("crop") else {k: dict(v) for k, v in published.CURVES.items()}
    if not ds.get("crop") and ours_images:
        cc = published.coolchic_average(ours_images)
        first, last = int(ours_images[0][-2:]), int(ours_images[-1][-2:])
        which = (f"{ours_images[0]}-{ours_images[-1][-2:]}" if len(ours_images) == last - first + 1
                 else ", ".join(ours_images))  # a range only when no image is missing from it
        extra["coolchic-same-images"] = {
            "label": f"Cool-chic v1 (published, {which})", **cc,
            "images": ",".join(ours_images), "source": published.COOLCHIC_SOURCE, "exact": True,
            "note": "mean bpp and mean PSNR per lambda over the same images as this run"}
    bd, overlap = average_bd_rates(avg, extra)
    per_image_bd = {stem: _per_image_bd_rates(r["curves"]) for stem, r in per_image.items()}
    checks = result.get("jpeg_check", {}).get("per_image", {})
    diffs = [c["psnr_diff_same_quality"] for v in checks.values() for c in v]
    mdiffs = [c["psnr_diff_matched_bpp"] for v in checks.values() for c in v if c["psnr_diff_matched_bpp"] is not None]
    result.update({
        "averaging": ("mean of per-image PSNR (and MS-SSIM) at matched rates: each image's curve interpolated "
                      "linearly in (log bpp, PSNR) at the grid points, no extrapolation; a grid point is kept "
                      "for a codec only where all images cover it"),
        "average": avg,
        "bd_rate_of_averages": bd,
        "bd_rate_psnr_overlap_db": overlap,
        "bd_rate_convention": "row vs column: % extra bits the row needs for the same PSNR (negative = smaller)",
        "bd_rate_per_image": per_image_bd,
        "bd_rate_mean_of_images": _mean_of_images(per_image_bd),
        "jpeg_check": {"summary": {"max_abs_psnr_diff_same_quality": max(map(abs, diffs)) if diffs else None,
                                   "max_abs_psnr_diff_matched_bpp": max(map(abs, mdiffs)) if mdiffs else None,
                                   "points": len(diffs)},
                       "per_image": checks},
        "published": extra,
    })
    return result


def write(result: dict, json_path: Path) -> None:
    """Write ``result`` as JSON and its figure as PNG next to it (both atomically) and print the BD-rates."""
    png_path = json_path.with_suffix(".png")
    fig = figure(result)
    with atomic_output(png_path) as tmp_png, atomic_output(json_path) as tmp_json:
        fig.savefig(tmp_png, format="png")
        tmp_json.write_text(to_json(result))
    print(f"wrote {json_path} and {png_path}")
    for r, row in result["bd_rate_of_averages"].items():
        cells = []
        for b, v in row.items():
            if isinstance(v, float):
                lo, hi = result["bd_rate_psnr_overlap_db"][r][b]
                cells.append(f"{b} {v:+.1f}%" + (f" (overlap only {hi - lo:.2f} dB)" if hi - lo < 1 else ""))
            else:
                cells.append(f"{b} n/a")
        print(f"BD-rate {r}: {', '.join(cells)}")
    s = result["jpeg_check"]["summary"]
    print(f"JPEG vs Pillow: max |dPSNR| same quality {s['max_abs_psnr_diff_same_quality']}, "
          f"matched bpp {s['max_abs_psnr_diff_matched_bpp']} over {s['points']} points")


def top_up(res: dict, sig, lo: float, hi: float, a_lo: float, a_hi: float) -> None:
    """Add one baseline point just outside each end of the averaging range where a curve stops short of it.

    ``sweep_to_range`` stops bisecting as soon as a rate falls inside its bin, so the outermost points can land
    anywhere in [lo, hi]; without this, grid points near 0.15 and 1.5 bpp would drop out of the average."""
    from inrcodec import baselines
    from inrcodec.compare import bd_rates

    for name, curve in res["curves"].items():
        if name.startswith(PREFIX) or not curve:
            continue
        codec = baselines.get_codec(name)
        extra = []
        for want, (b_lo, b_hi) in ((curve[0]["bpp"] > a_lo, (lo, a_lo)), (curve[-1]["bpp"] < a_hi, (a_hi, hi))):
            if want:
                try:
                    extra += baselines.sweep_to_range(codec, sig, b_lo, b_hi, n=1)
                except InputError:  # this codec cannot reach that far on this image: the average will say so
                    pass
        if extra:
            have = {p["quality"] for p in curve}
            curve.extend(p for p in extra if p["quality"] not in have)
            curve.sort(key=lambda p: p["bpp"])
    res["bd_rate"], res["bd_rate_notes"] = bd_rates(res["curves"])


def jpeg_check(sig, points: list[dict]) -> list[dict]:
    """Independent measurement of the JPEG curve: Pillow's libjpeg at the same quality (4:2:0, optimised Huffman),
    PSNR computed here by hand; and our curve interpolated at Pillow's bpp."""
    from PIL import Image

    rgb = sig.data
    out = []
    xs = np.log([p["bpp"] for p in points])
    ys = [p["psnr"] for p in points]
    for p in points:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(p["quality"]), subsampling=2, optimize=True)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float64)
        psnr = 10 * math.log10(255.0 ** 2 / float(np.mean((dec - rgb.astype(np.float64)) ** 2)))
        bpp = len(buf.getvalue()) * 8 / (rgb.shape[0] * rgb.shape[1])
        lb = math.log(bpp)
        matched = float(np.interp(lb, xs, ys)) if xs[0] <= lb <= xs[-1] else None
        out.append({"quality": p["quality"], "ours_bpp": p["bpp"], "ours_psnr": p["psnr"], "pillow_bpp": bpp,
                    "pillow_psnr": psnr, "psnr_diff_same_quality": p["psnr"] - psnr,
                    "psnr_diff_matched_bpp": None if matched is None else matched - psnr})
    return out


PUBLISHED_STYLE = {"coin": {"color": "0.55"}, "coin++": {"color": "0.2"}, "coolchic": {"color": "tab:olive"},
                   "coolchic-same-images": {"color": "tab:olive"}, "gaussianimage": {"color": "tab:cyan"}}


def figure(result: dict):
    """The RD figure of a benchmark result (dataset averages, published curves dashed)."""
    avg, extra, ds = result["average"], result["published"], result["dataset"]
    grid = result["settings"]["average_grid_bpp"]
    crop_txt = f", centre {ds['crop']}x{ds['crop']} crops" if ds.get("crop") else ""
    title = f"Kodak ({len(ds['images'])} images{crop_txt}): mean PSNR at matched bpp"
    plot_res = {"input": {"name": "Kodak"}, "curves": {
        n: [{"bpp": b, "psnr": p} for b, p in zip(a["bpp"], a["psnr"])] for n, a in avg.items()}}
    overlay = {}
    for k, v in extra.items():
        if not v.get("bpp") or (k == "coolchic" and "coolchic-same-images" in extra):
            continue
        label = v["label"] + ("" if v.get("exact") else " ~approx.")
        overlay[label] = {"bpp": v["bpp"], "psnr": v["psnr"], "style": PUBLISHED_STYLE.get(k, {})}
    top = max([max(grid)] + [max(a["bpp"]) for a in avg.values() if a["bpp"]])
    return rd_figure(plot_res, title=title, extra_curves=overlay, xlim=(0, top * 1.05))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of kodimNN.png")
    ap.add_argument("--images", default="", help="comma-separated stems (default: every kodim*.png there)")
    ap.add_argument("--crop", type=int, default=0, help="centred NxN crop of each image (0: full image)")
    ap.add_argument("--codecs", default=",".join(DEFAULT_CODECS))
    ap.add_argument("--models", default="fourier", help="inrcodec models, comma-separated, or 'none'")
    ap.add_argument("--rates", default="0.25,0.5,1.0", help="target bpp of our models")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds per fit")
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps per fit")
    ap.add_argument("--bpp-range", default="0.12,1.8", help="range the baselines are swept over")
    ap.add_argument("--avg-range", default="0.15,1.5", help="bpp range of the averaging grid")
    ap.add_argument("--grid", type=int, default=12, help="averaging grid points (log-spaced)")
    ap.add_argument("--points", type=int, default=10, help="baseline points per image")
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help="output prefix (.json and .png added)")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. why a subset was run)")
    ap.add_argument("--replot", type=Path, default=None,
                    help="recompute averages/BD-rates of an existing result JSON from its stored per-image "
                         "measurements and redraw its PNG (no new measurements)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="merge the per-image measurements of these result JSONs (same settings, other images) "
                         "into one result at -o, with its averages and BD-rates (no new measurements)")
    ap.add_argument("--add-baselines", type=Path, nargs="+", default=(),
                    help="with --merge or --replot: add the baseline curves of these runs on the same images "
                         "(e.g. --models none --codecs jpegxl) before the averages and BD-rates are derived")
    ap.add_argument("--merge-allow", default="", help="with --merge: settings that may differ between the runs, "
                    "comma-separated (e.g. steps: runs of one preset whose schedule changed)")
    args = ap.parse_args(argv)

    if args.merge is not None:
        result = merge(args.merge, args.note, tuple(filter(None, args.merge_allow.split(","))))
        for path in args.add_baselines:
            add_baselines(result, path)
        write(derive(result), args.out.with_suffix(".json"))
        return 0
    if args.replot is not None:
        result = json.loads(args.replot.read_text())
        for path in args.add_baselines:
            add_baselines(result, path)
        write(derive(result), args.replot)
        return 0
    if args.add_baselines:
        raise SystemExit("bench_kodak: --add-baselines goes with --merge or --replot")
    if not args.data.is_dir():
        print(f"bench_kodak: data folder {args.data} not found (needs ../shared/data/kodak)", file=sys.stderr)
        return 2
    stems = [s.strip() for s in args.images.split(",") if s.strip()] or sorted(p.stem for p in
                                                                                args.data.glob("kodim*.png"))
    models = [] if args.models.strip().lower() in ("", "none") else [m.strip() for m in args.models.split(",")]
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    rates = _floats(args.rates)
    lo, hi = _floats(args.bpp_range)
    a_lo, a_hi = _floats(args.avg_range)
    grid = np.geomspace(a_lo, a_hi, args.grid)

    t0, cpu0, load0, commit = time.perf_counter(), time.process_time(), os.getloadavg()[0], _git_commit()
    per_image, checks = {}, {}
    for stem in stems:
        sig = load(args.data / f"{stem}.png")
        name = f"{stem}.png"
        if args.crop:
            sig = crop_signal(sig, args.crop, args.crop)
            name += f" [centre {args.crop}x{args.crop}]"
        t = time.perf_counter()
        res = compare(sig, codecs, models, rates, args.time_budget, steps=args.steps, name=name,
                      bpp_range=(lo, hi), baseline_points=args.points)
        res.pop("versions", None)  # once for the whole run
        top_up(res, sig, lo, hi, a_lo, a_hi)
        per_image[stem] = res
        if "jpeg" in res["curves"]:
            checks[stem] = jpeg_check(sig, res["curves"]["jpeg"])
        summary = ", ".join(f"{n}: {len(c)} pts" for n, c in res["curves"].items())
        print(f"{stem}: {time.perf_counter() - t:.1f} s ({summary})", flush=True)

    command = "python benchmarks/bench_kodak.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    result = {
        "command": command.strip(),
        "note": args.note,
        "dataset": {"folder": str(args.data), "images": stems, "crop": args.crop or None},
        "settings": {"codecs": codecs, "models": models, "rates": rates, "time_budget": args.time_budget,
                     "steps": args.steps, "baseline_bpp_range": [lo, hi], "baseline_points": args.points,
                     "average_grid_bpp": grid.tolist()},
        "jpeg_check": {"per_image": checks},
        "per_image": per_image,
        "versions": software_versions(),
        "git_commit": commit,  # at the start of the run
        "load_avg_start_end": [load0, os.getloadavg()[0]],  # the machine is shared: CPU-s (per point) beside it
        "cpu_seconds": time.process_time() - cpu0,
        "seconds": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(derive(result), args.out.with_suffix(".json"))
    print(f"total {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
