"""Error-bounded compression of scientific fields: inrcodec vs SZ3, ZFP and SPERR at the same absolute bound.

Fields: the raw and NetCDF fields of ../shared/data/science (NetCDF variables read with xarray directly) and
generated ones: a smooth and a rough 2-D field, and a 128^3 (2.1 M values) 3-D turbulence-like field (Gaussian
random field with a power-law spectrum). For each field and each relative bound R (default 1e-2, 1e-3, 1e-4) every
codec gets E = R * (max - min of the finite values) and we record ratio (whole stream: our .inrc file with its
header), max |error| / E, PSNR, encode and decode MB/s (of the original array's bytes). The summary is the
geometric mean over fields of (our ratio / SZ3's ratio) per bound, and whether 100 % of values were within bound.

``--inr MODEL`` also measures, on the fields named by ``--inr-fields``, the INR base + predictor on its residual
(``compress(..., model=MODEL, max_error=E, time_budget=S)``) against the predictor alone: the question "where does
the network earn its bytes?".

Timings are wall-clock on a shared 2-core machine (the load average at start and end is stored): read them as
rough.

    python benchmarks/bench_science.py -o benchmarks/results/science
    python benchmarks/bench_science.py --inr latentgrid --inr-budget 30 -o benchmarks/results/science_inr \\
        --inr-fields pressure,gen_smooth_2d,gen_rough_2d --codecs sz3 --skip-large
    python benchmarks/bench_science.py --replot benchmarks/results/science.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import __version__  # noqa: E402
from inrcodec.compare import _clean  # noqa: E402
from inrcodec.compare_field import OURS, compare_field  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "science"


def power_law_field(shape, slope, seed):
    """Gaussian random field with spectrum |k|^-slope (slope 11/3 + ndim - 1: Kolmogorov-like), unit std."""
    rng = np.random.default_rng(seed)
    k = np.meshgrid(*[np.fft.fftfreq(n) * n for n in shape], indexing="ij")
    kk = np.sqrt(sum(x**2 for x in k))
    kk[(0,) * len(shape)] = 1.0
    amp = kk ** (-slope / 2)
    amp[(0,) * len(shape)] = 0.0
    f = np.real(np.fft.ifftn(np.fft.fftn(rng.normal(size=shape)) * amp))
    return (f / f.std()).astype(np.float32)


def generated_fields(skip_large: bool) -> dict[str, np.ndarray]:
    y, x = np.meshgrid(np.linspace(0, 1, 512), np.linspace(0, 1, 512), indexing="ij")
    smooth = (np.sin(6 * x + 1) * np.cos(4 * y) + 0.5 * np.sin(11 * x * y)).astype(np.float32)
    out = {"gen_smooth_2d": smooth,
           "gen_rough_2d": power_law_field((512, 512), 11 / 3 + 1, seed=1)}  # 2-D turbulence-like, rough
    if not skip_large:
        out["gen_turb_3d_128"] = power_law_field((128, 128, 128), 11 / 3 + 2, seed=2)  # 2.1 M values
    return out


def real_fields() -> dict[str, np.ndarray]:
    if not DATA.is_dir():
        print(f"note: {DATA} not found, only generated fields", file=sys.stderr)
        return {}
    out = {}
    for path in sorted(DATA.iterdir()):
        name = path.name
        if path.suffix in (".d64", ".float", ".f32", ".raw"):
            dtype = "<f8" if "f64" in name else "<f4"
            dims = [int(s) for s in name.split("_")[-2].split("x")]
            out[path.stem.split("_")[1]] = np.fromfile(path, dtype=dtype).reshape(dims)
        elif path.suffix == ".nc":
            import xarray as xr

            with xr.open_dataset(path) as ds:
                for var in ds.data_vars:
                    a = np.squeeze(np.asarray(ds[var].values))
                    if a.ndim >= 1 and a.dtype.kind == "f" and a.size > 1:
                        out[f"{path.stem.replace('metpy_', '')}:{var}"] = np.ascontiguousarray(a)
    return out


def inr_study(fields, names, model, budget, rels):
    from inrcodec.bounded.field import finite_range
    from inrcodec.codec import compress, decompress
    from inrcodec.compare_field import _as_signal

    rows = []
    for name in names:
        a = fields[name]
        span = finite_range(a)
        for rel in rels:
            bound = rel * span
            sig = _as_signal(a)
            pred = compress(sig, "bounded", max_error=bound)
            t0 = time.perf_counter()
            inr = compress(sig, model, max_error=bound, time_budget=budget)
            secs = time.perf_counter() - t0
            out = decompress(inr.data).data[..., 0]
            err = float(np.nanmax(np.abs(out.astype(np.float64) - a)))
            row = {"field": name, "relative_bound": rel, "predictor_bytes": len(pred.data),
                   "inr_bytes": len(inr.data), "inr_over_predictor": len(inr.data) / len(pred.data),
                   "inr_fit_seconds": inr.report.get("fit_seconds"), "inr_seconds": secs,
                   "inr_fit_psnr": inr.report.get("fit_psnr_unquantised"), "inr_max_error_over_bound": err / bound,
                   "inr_config": inr.report.get("config")}
            rows.append(row)
            print(f"  INR {name} {rel:g}: predictor {len(pred.data)} B, {model} base {len(inr.data)} B "
                  f"({row['inr_over_predictor']:.2f}x), fit {row['inr_fit_seconds']:.0f} s", flush=True)
    return rows


def summarise(results, rels):
    summary = {}
    for rel in rels:
        ratios, within, n_values = [], True, 0
        for res in results.values():
            ours = next((p for p in res["curves"][OURS] if p["relative_bound"] == rel), None)
            sz3 = next((p for p in res["curves"].get("sz3", []) if p["relative_bound"] == rel), None)
            if ours is None:
                continue
            within &= bool(ours["within_bound"])
            if sz3 is not None:
                ratios.append(ours["ratio"] / sz3["ratio"])
        summary[f"{rel:g}"] = {
            "geomean_ratio_over_sz3": float(np.exp(np.mean(np.log(ratios)))) if ratios else None,
            "min_ratio_over_sz3": float(min(ratios)) if ratios else None,
            "max_ratio_over_sz3": float(max(ratios)) if ratios else None,
            "fields": len(ratios), "all_within_bound": within}
    return summary


def figure(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = list(result["fields"])
    rels = result["settings"]["relative_bounds"]
    codecs = [c for c in result["settings"]["codecs"]]
    fig, axes = plt.subplots(1, len(rels), figsize=(5.2 * len(rels), 0.32 * len(fields) + 2.2), sharey=True)
    axes = np.atleast_1d(axes)
    colors = {"sz3": "tab:blue", "zfp": "tab:green", "sperr": "tab:purple"}
    for ax, rel in zip(axes, rels):
        ypos = np.arange(len(fields))
        width = 0.8 / max(len(codecs), 1)
        for i, c in enumerate(codecs):
            vals = []
            for f in fields:
                r = next((x for x in result["fields"][f]["ratio_vs"].get(c, []) if x["relative_bound"] == rel), None)
                vals.append(r["ours_over_theirs"] if r else np.nan)
            ax.barh(ypos + i * width - 0.4 + width / 2, vals, height=width, color=colors.get(c), label=f"vs {c}")
        ax.axvline(1.0, color="k", linewidth=0.8)
        ax.axvline(1.5, color="tab:red", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.set_yticks(ypos)
        ax.set_yticklabels(fields, fontsize=7)
        g = result["summary"][f"{rel:g}"]["geomean_ratio_over_sz3"]
        ax.set_title(f"relative bound {rel:g}: geo-mean vs SZ3 {g:.2f}x" if g else f"relative bound {rel:g}")
        ax.set_xlabel("our ratio / their ratio (same absolute bound)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default="benchmarks/results/science", help="output prefix (.json, .png)")
    ap.add_argument("--bounds", default="1e-2,1e-3,1e-4", help="relative bounds, comma-separated")
    ap.add_argument("--codecs", default="sz3,zfp,sperr")
    ap.add_argument("--fields", default=None, help="only these fields (comma-separated names)")
    ap.add_argument("--skip-large", action="store_true", help="leave out the 2.1 M-value generated field")
    ap.add_argument("--inr", default=None, help="also measure this INR model as a base (e.g. latentgrid)")
    ap.add_argument("--inr-budget", type=float, default=30.0, help="seconds per INR encode")
    ap.add_argument("--inr-fields", default="pressure,gen_smooth_2d,gen_rough_2d")
    ap.add_argument("--replot", default=None, help="redraw the PNG of an existing JSON and exit")
    args = ap.parse_args(argv)
    if args.replot:
        res = json.loads(Path(args.replot).read_text())
        figure(res, Path(args.replot).with_suffix(".png"))
        return 0
    rels = [float(b) for b in args.bounds.split(",")]
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    fields = {**real_fields(), **generated_fields(args.skip_large)}
    if args.fields:
        keep = set(args.fields.split(","))
        fields = {k: v for k, v in fields.items() if k in keep}
    results = {}
    for name, arr in fields.items():
        print(f"{name} {arr.shape} {arr.dtype}", flush=True)
        res = compare_field(arr, codecs, rels, name=name)
        for p in res["curves"][OURS]:
            line = f"  {p['relative_bound']:g}: ours {p['ratio']:.1f} (err/bound {p['max_error_over_bound']:.3f}, " \
                   f"enc {p['encode_MBps']:.1f} MB/s, dec {p['decode_MBps']:.1f} MB/s)"
            for c in codecs:
                q = next((x for x in res["curves"].get(c, []) if x["relative_bound"] == p["relative_bound"]), None)
                if q:
                    line += f", {c} {q['ratio']:.1f}"
            print(line, flush=True)
        results[name] = res
    out = {
        "command": "python benchmarks/bench_science.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {"relative_bounds": rels, "codecs": codecs, "inr": args.inr, "inr_budget": args.inr_budget},
        "summary": summarise(results, rels),
        "fields": results,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "inrcodec": __version__,
                    "load_average_start": load_start, "load_average_end": os.getloadavg(),
                    "note": "2 CPU cores shared with other jobs: timings are rough"},
        "seconds": None,
    }
    if args.inr:
        names = [n for n in args.inr_fields.split(",") if n in fields]
        out["inr_study"] = inr_study(fields, names, args.inr, args.inr_budget, rels)
        out["machine"]["load_average_end"] = os.getloadavg()
    out["seconds"] = time.perf_counter() - t_start
    prefix = Path(args.output)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".json").write_text(json.dumps(_clean(out), indent=1, allow_nan=False))
    figure(out, prefix.with_suffix(".png"))
    for rel, s in out["summary"].items():
        print(f"relative bound {rel}: geo-mean ratio vs SZ3 {s['geomean_ratio_over_sz3']:.3f} over {s['fields']} "
              f"fields (min {s['min_ratio_over_sz3']:.2f}, max {s['max_ratio_over_sz3']:.2f}), all within bound: "
              f"{s['all_within_bound']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
