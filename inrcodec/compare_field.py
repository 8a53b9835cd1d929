"""``inrcodec compare FIELD``: the error-bounded coder against SZ3, ZFP and SPERR on one scientific array.

For each relative bound R in 1e-1 ... 1e-5 every codec gets the *same absolute bound* E = R * (max - min of the
finite values) (SZ3's REL mode), and we record the ratio (original bytes / compressed bytes, whole stream:
our ``.inrc`` file with its header, the baselines' streams with imagecodecs' framing), bits per value, PSNR (peak:
the value range), max |error| / E, and encode/decode seconds. BD-rates are computed on PSNR vs bits per value
(``metrics.bd_rate``: negative = we need fewer bits for the same PSNR), and the ratio of our ratio to each
baseline's at every bound (the figure users of SZ3 ask about: "how much smaller at my bound").

Baselines cannot take NaN/Inf (SZ3/ZFP/SPERR have no mask); on such fields they are measured on a copy with the
non-finite values replaced by the mean of the finite ones and scored on the finite positions only (said in the
JSON under ``notes``). Our codec codes the field as it is.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__, baselines, metrics
from .errors import InputError
from .signal import Signal

FIELD_CODECS = ("sz3", "zfp", "sperr")
RELATIVE_BOUNDS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
OURS = "inrcodec"
DATASET_SUFFIXES = (".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".he5", ".zarr")

ProgressFn = Callable[[float, str], None]


def load_field(path: Path, var: str | None = None) -> tuple[np.ndarray, str]:
    """The array to compare and its name: a variable of a NetCDF/HDF5/zarr dataset (``var``; the only or the
    first data variable by default), or any array file ``inrcodec.signals.load`` reads (npy, raw)."""
    path = Path(path)
    if path.suffix.lower() in DATASET_SUFFIXES:
        from .signals.dataset import data_variables, open_dataset

        ds = open_dataset(path)  # the dataset loader's reader: NetCDF, plain HDF5 and zarr alike
        try:
            names = [n for n in data_variables(ds, [var] if var else None, path) if ds[n].ndim >= 1]
            if not names:
                raise InputError(f"{path}: no data variable with at least one axis")
            var = names[0]
            arr = np.asarray(ds[var].values)
        finally:
            ds.close()
        name = f"{path.name}:{var}"
    else:
        if var is not None:
            raise InputError("--var applies to datasets (.nc, .h5, .zarr)")
        from .signals import load

        sig = load(path)
        arr = sig.data[..., 0] if sig.channels == 1 else sig.data
        name = path.name
    arr = np.squeeze(arr)
    if arr.ndim == 0 or arr.size == 0:
        raise InputError(f"{name}: needs at least one axis with values")
    if arr.ndim > 3:
        raise InputError(f"{name}: {arr.ndim} axes; compare takes 1-3 (slice it first)")
    if str(arr.dtype) not in ("float32", "float64", "int16", "uint16", "int32", "uint8", "int8", "float16"):
        raise InputError(f"{name}: unsupported dtype {arr.dtype}")
    return np.ascontiguousarray(arr), name


def _as_signal(arr: np.ndarray) -> Signal:
    kind = {1: "audio", 2: "array", 3: "volume"}[arr.ndim]
    return Signal(arr[..., None], kind=kind)


def _score(ref: np.ndarray, rec: np.ndarray, bound: float, peak: float) -> dict[str, Any]:
    keep = np.isfinite(ref) if ref.dtype.kind == "f" else np.ones(ref.shape, bool)
    r, t = ref[keep].astype(np.float64), np.asarray(rec).reshape(ref.shape)[keep].astype(np.float64)
    err = np.abs(r - t)
    mx = float(err.max()) if err.size else 0.0
    mse = float(np.mean(err**2)) if err.size else 0.0
    psnr = math.inf if mse == 0 else (10 * math.log10(peak * peak / mse) if peak > 0 else -math.inf)
    return {"max_abs_error": mx, "max_error_over_bound": mx / bound if bound > 0 else None, "psnr": psnr,
            "within_bound": bool(mx <= bound)}


def _measure_ours(arr: np.ndarray, bound: float) -> tuple[dict[str, Any], np.ndarray]:
    from .codec import compress, decompress

    sig = _as_signal(arr)
    t0 = time.perf_counter()
    res = compress(sig, "bounded", max_error=bound)
    t1 = time.perf_counter()
    out = decompress(res.data).data[..., 0]
    t2 = time.perf_counter()
    return {"bytes": len(res.data), "encode_s": t1 - t0, "decode_s": t2 - t1,
            "predictor": res.report.get("predictor"), "outliers": res.report.get("outliers")}, out


def _measure_baseline(codec: baselines.Codec, arr: np.ndarray, bound: float) -> tuple[dict[str, Any], np.ndarray]:
    t0 = time.perf_counter()
    stream = codec.encode(arr, bound)
    t1 = time.perf_counter()
    out = codec.decode(stream)
    t2 = time.perf_counter()
    return {"bytes": len(stream), "encode_s": t1 - t0, "decode_s": t2 - t1}, out


def compare_field(arr: np.ndarray, codecs: Sequence[str] = FIELD_CODECS,
                  relative_bounds: Sequence[float] = RELATIVE_BOUNDS, *, name: str = "field",
                  progress: ProgressFn | None = None) -> dict[str, Any]:
    """Ratio vs relative bound and PSNR vs bits per value of our coder and the baselines on one array.

    Returns ``{"input", "curves": {codec: [{"relative_bound", "bound", "bytes", "ratio", "bits_per_value",
    "psnr", "max_abs_error", "max_error_over_bound", "within_bound", "encode_s", "decode_s", "encode_MBps",
    "decode_MBps"}]}, "ratio_vs": {baseline: [ours / theirs per bound]}, "bd_rate": {baseline: % | None},
    "skipped": {codec: why}, "notes": [...], "versions", "seconds"}``."""
    t_start = time.perf_counter()
    arr = np.ascontiguousarray(arr)
    rels = sorted({float(r) for r in relative_bounds}, reverse=True)
    if not rels or not all(0 < r < 1 for r in rels):
        raise InputError(f"relative bounds must lie in (0, 1), got {list(relative_bounds)}")
    from .bounded.field import finite_range

    span = finite_range(arr)
    if span == 0:
        raise InputError(f"{name}: constant (or all non-finite) field: no relative bound to compare at")
    resolved = [baselines.get_codec(c) for c in codecs]
    notes: list[str] = []
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    base_input = arr
    if not finite.all():
        base_input = np.where(finite, arr, arr[finite].mean() if finite.any() else 0).astype(arr.dtype)
        notes.append(f"{int((~finite).sum())} non-finite values: baselines coded a copy with them set to the mean "
                     "of the finite values; every codec is scored on the finite positions only")
    skipped = {}
    runnable: list[tuple[str, Any]] = [(OURS, None)]
    for c in resolved:
        why = c.why_unsupported(base_input)
        if why:
            skipped[c.name] = why
        else:
            runnable.append((c.name, c))
    total, done = len(runnable) * len(rels), 0
    curves: dict[str, list[dict]] = {n: [] for n, _ in runnable}
    mb = arr.nbytes / 1e6
    for rel in rels:
        bound = rel * span
        for cname, codec in runnable:
            if progress is not None:
                progress(done / total, f"{cname} at relative bound {rel:g}")
            try:
                if codec is None:
                    point, rec = _measure_ours(arr, bound)
                else:
                    point, rec = _measure_baseline(codec, base_input, bound)
            except InputError as exc:
                skipped.setdefault(cname, f"at {rel:g}: {exc}")
                done += 1
                continue
            point.update(_score(arr, rec, bound, span))
            point.update(relative_bound=rel, bound=bound, ratio=arr.nbytes / point["bytes"],
                         bits_per_value=8.0 * point["bytes"] / arr.size,
                         encode_MBps=mb / point["encode_s"] if point["encode_s"] > 0 else None,
                         decode_MBps=mb / point["decode_s"] if point["decode_s"] > 0 else None)
            curves[cname].append(point)
            done += 1
    ratio_vs, bd = {}, {}
    ours = {p["relative_bound"]: p for p in curves[OURS]}
    for cname, pts in curves.items():
        if cname == OURS:
            continue
        ratio_vs[cname] = [{"relative_bound": p["relative_bound"],
                            "ours_over_theirs": ours[p["relative_bound"]]["ratio"] / p["ratio"]}
                           for p in pts if p["relative_bound"] in ours]
        bd[cname] = _bd(pts, curves[OURS])
    if progress is not None:
        progress(1.0, "done")
    return {
        "input": {"name": name, "shape": list(arr.shape), "dtype": str(arr.dtype), "values": int(arr.size),
                  "finite_range": span, "nonfinite": int((~finite).sum())},
        "curves": curves,
        "ratio_vs": ratio_vs,
        "bd_rate": bd,
        "skipped": skipped,
        "notes": notes,
        "settings": {"codecs": [c.name for c in resolved], "relative_bounds": rels},
        "versions": {"inrcodec": __version__, **_baseline_versions(resolved)},
        "seconds": time.perf_counter() - t_start,
    }


def _bd(theirs: list[dict], ours: list[dict]) -> float | None:
    """BD-rate of ours vs theirs on PSNR vs bits per value (None when fewer than 3 finite points overlap)."""
    def curve(pts):
        pts = [p for p in pts if math.isfinite(p["psnr"]) and p["bits_per_value"] > 0]
        return [(p["bits_per_value"], p["psnr"]) for p in sorted(pts, key=lambda p: p["bits_per_value"])]
    a, b = curve(theirs), curve(ours)
    if len(a) < 3 or len(b) < 3:
        return None
    try:
        return metrics.bd_rate(a, b)
    except InputError:
        return None


def _baseline_versions(codecs) -> dict[str, str]:
    out = {}
    for c in codecs:
        try:
            out[c.name] = c.library_version()
        except Exception:  # a missing optional library only loses its version string
            out[c.name] = "unknown"
    return out


def field_figure(result: dict[str, Any]):
    """Two panels: ratio vs relative bound (log-log) and PSNR vs bits per value."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6), dpi=110)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colors = {OURS: "tab:red", "sz3": "tab:blue", "zfp": "tab:green", "sperr": "tab:purple"}
    for cname, pts in result["curves"].items():
        if not pts:
            continue
        style = {"color": colors.get(cname), "marker": "o" if cname == OURS else ".",
                 "linewidth": 2.2 if cname == OURS else 1.2, "label": cname}
        ax1.plot([p["relative_bound"] for p in pts], [p["ratio"] for p in pts], **style)
        fin = [p for p in pts if math.isfinite(p["psnr"])]
        ax2.plot([p["bits_per_value"] for p in fin], [p["psnr"] for p in fin], **style)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.invert_xaxis()
    ax1.set_xlabel("relative error bound (of the finite value range)")
    ax1.set_ylabel("compression ratio")
    ax2.set_xlabel("bits per value (whole stream)")
    ax2.set_ylabel("PSNR (dB, peak = value range)")
    inp = result["input"]
    fig.suptitle(f"{inp['name']} {'x'.join(map(str, inp['shape']))} {inp['dtype']}")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def format_field_table(result: dict[str, Any]) -> str:
    names = list(result["curves"])
    rels = result["settings"]["relative_bounds"]
    head = "rel. bound " + "".join(f"{n:>12}" for n in names) + "   (ratio; max err/bound of ours)"
    lines = [head]
    for rel in rels:
        row = f"{rel:<11g}"
        for n in names:
            p = next((p for p in result["curves"][n] if p["relative_bound"] == rel), None)
            row += f"{p['ratio']:>12.2f}" if p else f"{'-':>12}"
        ours = next((p for p in result["curves"][OURS] if p["relative_bound"] == rel), None)
        if ours:
            row += f"   {ours['max_error_over_bound']:.3f}"
        lines.append(row)
    for n, v in result["bd_rate"].items():
        lines.append(f"BD-rate (PSNR vs bits/value) of inrcodec vs {n}: " + ("n/a" if v is None else f"{v:+.1f} %"))
    for n, why in result["skipped"].items():
        lines.append(f"skipped {n}: {why}")
    return "\n".join(lines)


def run_cli(input: Path, var: str | None, codecs: str | None, bounds: str | None, output: Path | None,
            quiet: bool) -> None:
    """``inrcodec compare FIELD`` (called by ``compare.register_cli`` for arrays and datasets)."""
    import json

    import typer

    from .compare import _clean
    from .signals._atomic import atomic_output

    names = [c.strip() for c in (codecs or ",".join(FIELD_CODECS)).split(",") if c.strip()]
    for n in names:
        c = baselines.get_codec(n)
        if not isinstance(c, baselines.ArrayCodec):
            raise InputError(f"--codecs {n}: not an array codec; for fields use {', '.join(FIELD_CODECS)}")
    try:
        rels = [float(b) for b in bounds.split(",")] if bounds else list(RELATIVE_BOUNDS)
    except ValueError:
        raise InputError(f"--bounds {bounds!r}: expected comma-separated numbers") from None
    out_dir = output if output is not None else input.parent / f"{input.stem}-compare"
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    stem = input.stem + (f"-{var}" if var else "")
    arr, name = load_field(input, var)

    def progress(frac: float, message: str) -> None:
        if not quiet:
            typer.echo(f"[{100 * frac:3.0f}%] {message}", err=True)

    result = compare_field(arr, names, rels, name=name, progress=progress)
    result["command"] = " ".join(["inrcodec compare", str(input)] + (["--var", var] if var else [])
                                 + (["--codecs", codecs] if codecs else []) + (["--bounds", bounds] if bounds else []))
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
    fig = field_figure(result)
    with atomic_output(png_path) as tmp_png, atomic_output(json_path) as tmp_json:
        fig.savefig(tmp_png, format="png")
        tmp_json.write_text(json.dumps(_clean(result), indent=2, allow_nan=False))
    typer.echo(format_field_table(result))
    typer.echo(f"wrote {json_path} and {png_path}")
