"""Datasets as files of parts (layout ``"dataset"``): one part per tile of each data variable.

    result = compress_dataset("era5.nc", ["t2m"], FieldTarget(max_error=1e-3, relative=True))
    ds = decompress_dataset(result.data)          # xr.Dataset: same variables, dims, coords, attrs, encodings
    save_dataset(ds, "back.nc")

The work is split so that ``inrcodec batch`` can run it as Dask tasks (files x variables x tiles):

1. ``plan_dataset(path, names, target)``: what to store and how, as JSON (variables, dims, attrs, CF encodings,
   each variable's finite value range and absolute bound, and its tiles). Reads the data once, tile by tile.
2. ``encode_tile(path, plan, i)``: one tile -> one part (bytes). Opens the file itself and reads only its tile,
   so memory is bounded by the tile cap, and any worker can run it.
3. ``assemble(path, plan, parts)``: coordinates and small/non-numeric variables (stored losslessly) + the parts
   -> the ``.inrc`` bytes.

Tiling: a variable's field axes are its last (up to 3) axes longer than 1; every index of the other axes is a
tile of its own (a 4-D (time, level, lat, lon) variable is one (level, lat, lon) volume per time), and a field
above ``TILE_CAP_VALUES`` is cut into blocks along its first axis (then its second ...). Tiles are coded
independently with the same *absolute* bound, so seams cannot break it; the relative bound is taken against the
whole variable's finite range, never a tile's.

A part is a small container (model ``"dataset-tile"``) holding the coder's ``.inrc`` for the tile
(``inrcodec.codec.compress``) and, where the tile has NaN or +-Inf, their exact positions and kinds. Non-finite
values are replaced by their nearest finite neighbour before fitting (a smooth field for the model; the residual
there is discarded). *Why here*: ``compress`` does not keep NaN yet (the error-bounded coder will, issue 12); when
it does, the ``nonfinite`` section simply stays empty for new files. Constant and all-NaN tiles store no model.

CF packing (an int16 variable with ``scale_factor``): decoded values are snapped back onto the packing lattice,
and the coder is asked for ``(floor(E/s) + 0.45) * s`` so that the snapped, written value is within E.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .container import MAX_VALUES, Container, read_container, write_container
from .errors import FormatError, InputError
from .limits import check_pixels
from .parts import pack_parts, part_count, read_part, register_layout
from .signal import SUPPORTED_DTYPES
from .signals._common import ARRAY_KINDS, fail
from .signals.dataset import (
    attrs_from_json,
    attrs_to_json,
    cf_encoding,
    checked_dtype,
    data_variables,
    encoding_from_json,
    open_dataset,
    packing_lattice,
)

LAYOUT = "dataset"
TILE_MODEL = "dataset-tile"
LAYOUT_VERSION = 1
# Values per tile: a task holds the tile (x8 bytes as float64 in the coder) plus the model; 2**21 values is
# 16 MiB of float64, small next to a worker's memory, large enough that per-tile overhead (a model header,
# ~100 bytes) stays below 0.01 %.
TILE_CAP_VALUES = 1 << 21
# Variables with fewer values are stored losslessly (a model and its header would cost more than the numbers).
MIN_MODEL_VALUES = 64
LOSSLESS_SECTION = "var:"


@dataclass
class FieldTarget:
    """What the coder is asked for, per variable. ``max_error`` with ``relative`` is a fraction of each
    variable's finite value range (max - min), as SZ3's REL mode."""

    model: str | None = None
    max_error: float | None = None
    relative: bool = False
    psnr: float | None = None
    bpp: float | None = None
    time_budget: float | None = None  # seconds for the whole dataset, shared by the tiles by their size
    steps: int | None = None
    seed: int = 0

    def validate(self) -> None:
        if sum(v is not None for v in (self.max_error, self.psnr, self.bpp)) > 1:
            raise InputError("give at most one of --bpp, --psnr, --max-error")
        if self.relative and self.max_error is None:
            raise InputError("--relative needs --max-error")
        if self.max_error is not None and not (math.isfinite(self.max_error) and self.max_error > 0):
            raise InputError(f"--max-error must be positive, got {self.max_error}")


@dataclass
class DatasetResult:
    data: bytes
    report: dict[str, Any] = field(default_factory=dict)


# -- planning -----------------------------------------------------------------------------------------------------

def _coder_dtype(dtype: np.dtype, lo: float, hi: float) -> str | None:
    """The Signal dtype a variable is coded as, or None to store it losslessly."""
    if str(dtype) in SUPPORTED_DTYPES:
        return str(dtype)
    if dtype.kind == "b":
        return "uint8"
    if dtype.kind in "iu" and -2**31 <= lo and hi < 2**31:
        return "int32"
    return None


def _field_axes(shape: Sequence[int]) -> list[int]:
    long_axes = [i for i, n in enumerate(shape) if n > 1]
    return long_axes[-3:] if long_axes else [len(shape) - 1]


def _tiles(shape: Sequence[int], cap: int) -> list[tuple[list[int], list[int]]]:
    """(start, stop) boxes covering ``shape``: one per index of the non-field axes, field blocks under ``cap``."""
    axes = _field_axes(shape)
    per_axis: list[list[tuple[int, int]]] = []
    for i, n in enumerate(shape):
        per_axis.append([(k, k + 1) for k in range(n)] if i not in axes else [(0, n)])
    # Split field axes, first (slowest) first, until a block fits the cap.
    block = [shape[a] for a in axes]
    for j, a in enumerate(axes):
        rest = math.prod(block[j + 1:]) if j + 1 < len(block) else 1
        if math.prod(block) <= cap:
            break
        step = max(1, cap // max(rest, 1))
        block[j] = min(shape[a], step)
        per_axis[a] = [(s, min(s + block[j], shape[a])) for s in range(0, shape[a], block[j])]
    boxes: list[tuple[list[int], list[int]]] = [([], [])]
    for ranges in per_axis:
        boxes = [(s + [a], e + [b]) for s, e in boxes for a, b in ranges]
    return boxes


def _finite_range(values: np.ndarray) -> tuple[float, float] | None:
    if values.dtype.kind in "f":
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return None
        return float(finite.min()), float(finite.max())
    return float(values.min()), float(values.max())


def _read_box(variable, start: Sequence[int], stop: Sequence[int], path: str | Path | None = None,
              name: str = "") -> np.ndarray:
    """One box of a (lazy) variable. With ``path``: a failing read (a file truncated or corrupt past its header)
    is an InputError naming the file and variable, not an internal error."""
    key = tuple(slice(a, b) for a, b in zip(start, stop))
    if path is None:
        return np.asarray(variable[key].values)
    try:
        return np.asarray(variable[key].values)
    except MemoryError:
        raise
    except Exception as exc:  # netCDF4/h5py/zarr raise RuntimeError, OSError, ValueError ... on damaged data
        raise fail(path, f"cannot read variable {name!r} ({type(exc).__name__}: {' '.join(str(exc).split())})") \
            from None


def plan_dataset(path: str | Path, names: Sequence[str] | None, target: FieldTarget,
                 tile_cap: int = TILE_CAP_VALUES) -> dict[str, Any]:
    """JSON-able plan of a dataset's encoding (see the module docstring). InputError for a bad file or name."""
    target.validate()
    ds = open_dataset(path)
    try:
        chosen = data_variables(ds, names, path)
        variables: list[dict[str, Any]] = []
        tiles: list[dict[str, Any]] = []
        for name in chosen:
            var = ds[name].variable
            shape = [int(n) for n in var.shape]
            entry: dict[str, Any] = {"name": name, "dims": [str(d) for d in var.dims], "shape": shape,
                                     "dtype": np.dtype(var.dtype).str, "attrs": attrs_to_json(var.attrs),
                                     "encoding": cf_encoding(var), "role": "lossless"}
            if var.size == 0:
                raise fail(path, f"variable {name!r} is empty (shape {tuple(shape)})")
            if var.dtype.kind in "biuf" and var.ndim >= 1 and var.size >= MIN_MODEL_VALUES:
                boxes = _tiles(shape, tile_cap)
                lo, hi = math.inf, -math.inf
                for start, stop in boxes:
                    r = _finite_range(_read_box(var, start, stop, path, name))
                    if r is not None:
                        lo, hi = min(lo, r[0]), max(hi, r[1])
                finite = lo <= hi
                coder_dtype = _coder_dtype(np.dtype(var.dtype), lo, hi) if finite else str(np.dtype(var.dtype))
                if coder_dtype is not None and coder_dtype in SUPPORTED_DTYPES:
                    entry.update(role="field", coder_dtype=coder_dtype,
                                 range=[lo, hi] if finite else [0.0, 0.0],
                                 bound=_variable_bound(target, lo, hi) if finite else None,
                                 tiles=list(range(len(tiles), len(tiles) + len(boxes))))
                    entry["coder_bound"] = _coder_bound(entry["bound"], entry["encoding"])
                    tiles.extend({"var": len(variables), "start": s, "stop": e} for s, e in boxes)
            variables.append(entry)
        coords = [str(c) for c in ds.coords]
        for name in coords:
            var = ds[name].variable
            variables.append({"name": name, "dims": [str(d) for d in var.dims], "shape": [int(n) for n in var.shape],
                              "dtype": np.dtype(var.dtype).str, "attrs": attrs_to_json(var.attrs),
                              "encoding": cf_encoding(var), "role": "coord"})
        return {"layout_version": LAYOUT_VERSION, "source": str(path), "attrs": attrs_to_json(ds.attrs),
                "variables": variables, "tiles": tiles, "target": asdict(target)}
    finally:
        ds.close()


def _variable_bound(target: FieldTarget, lo: float, hi: float) -> float | None:
    if target.max_error is None:
        return None
    return target.max_error * (hi - lo) if target.relative else target.max_error


def _coder_bound(bound: float | None, encoding: dict[str, Any]) -> float | None:
    """The bound asked of the coder so that the value written (snapped onto a CF packing lattice) keeps ``bound``."""
    if bound is None:
        return None
    lattice = packing_lattice(encoding_from_json(encoding))
    if lattice is None:
        return bound
    step = lattice[0]
    return (math.floor(bound / step) + 0.45) * step


# -- one tile -----------------------------------------------------------------------------------------------------

def _fill_nonfinite(values: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Non-finite entries replaced by the nearest finite value (what a smooth fit is happiest with)."""
    from scipy import ndimage

    _, nearest = ndimage.distance_transform_edt(bad, return_distances=True, return_indices=True)
    return values[tuple(nearest)]


def _encode_nonfinite(values: np.ndarray, bad: np.ndarray) -> bytes:
    kinds = np.where(np.isnan(values[bad]), 0, np.where(values[bad] > 0, 1, 2)).astype(np.uint8)
    flags = zlib.compress(np.packbits(bad.ravel()).tobytes(), 9)
    return len(flags).to_bytes(4, "little") + flags + zlib.compress(kinds.tobytes(), 9)


def _decode_nonfinite(blob: bytes, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    n = math.prod(shape)
    try:
        k = int.from_bytes(blob[:4], "little")
        flags = _inflate(blob[4:4 + k], (n + 7) // 8)
        bad = np.unpackbits(np.frombuffer(flags, np.uint8), count=n).astype(bool).reshape(shape)
        kinds = np.frombuffer(_inflate(blob[4 + k:], int(bad.sum())), np.uint8)
    except (ValueError, zlib.error) as exc:
        raise FormatError(f"corrupt non-finite mask: {exc}") from None
    if kinds.size != int(bad.sum()) or (kinds.size and kinds.max() > 2):
        raise FormatError("corrupt non-finite mask")
    return bad, kinds


def _inflate(blob: bytes, expected: int) -> bytes:
    """zlib inflate that never produces more than ``expected`` bytes (a hostile stream cannot balloon)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(blob, expected + 1)
    except zlib.error as exc:
        raise FormatError(f"section does not inflate: {exc}") from None
    if len(out) != expected or d.unconsumed_tail:
        raise FormatError(f"section inflates to {len(out)}{'+' if d.unconsumed_tail else ''} bytes, expected {expected}")
    return out


def encode_tile(path: str | Path, plan: dict[str, Any], index: int) -> bytes:
    """Code tile ``index`` of ``plan`` (reads only that tile of the file) -> one part; the bound is verified on the
    decoded part before it is returned (RuntimeError if not: never a file that breaks its bound)."""
    tile = plan["tiles"][index]
    spec = plan["variables"][tile["var"]]
    target = FieldTarget(**plan["target"])
    ds = open_dataset(path)
    try:
        values = _read_box(ds[spec["name"]].variable, tile["start"], tile["stop"], path, spec["name"])
    finally:
        ds.close()
    try:
        return encode_values(values, spec, target, _tile_budget(plan, target, values.size))
    except FormatError:
        raise
    except InputError as exc:  # e.g. a bound below the precision of the variable's dtype
        raise InputError(f"{path}: variable {spec['name']!r}: {exc}") from None
    except RuntimeError as exc:
        raise RuntimeError(f"variable {spec['name']!r}, tile {index}: {exc}") from None


def _coder_shape(shape: Sequence[int]) -> list[int]:
    """The 1-3 coordinate axes a block is fitted on: its axes longer than 1, leading ones merged beyond three."""
    long_axes = [n for n in shape if n > 1] or [1]
    if len(long_axes) > 3:
        long_axes = [math.prod(long_axes[:-2])] + long_axes[-2:]
    return long_axes


def encode_values(values: np.ndarray, spec: dict[str, Any], target: FieldTarget,
                  time_budget: float | None = None) -> bytes:
    """One block of values -> a ``dataset-tile`` part. ``spec``: ``coder_dtype``, ``range`` (the variable's finite
    range), ``coder_bound``/``bound`` (absolute, or None), ``dtype`` and ``encoding`` (how it decodes). The bound
    is verified on the decoded part (RuntimeError if broken)."""
    from .codec import compress
    from .signal import Signal

    shape = values.shape
    coder_dtype = np.dtype(spec["coder_dtype"])
    bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(shape, bool)
    sections: dict[str, bytes] = {}
    config: dict[str, Any] = {"shape": list(shape) or [1]}
    report: dict[str, Any] = {}
    if bad.any():
        sections["nonfinite"] = _encode_nonfinite(values, bad)
    finite = values[~bad]
    lo, hi = spec["range"]
    field_shape = _coder_shape(shape)
    if finite.size == 0 or float(finite.min()) == float(finite.max()):
        config["constant"] = float(finite.ravel()[0]) if finite.size else 0.0
    else:
        filled = _fill_nonfinite(values, bad) if bad.any() else values
        data = filled.reshape(field_shape + [1]).astype(coder_dtype)
        signal = Signal(np.ascontiguousarray(data), kind=ARRAY_KINDS[len(field_shape)], value_range=(lo, hi))
        result = compress(signal, target.model, max_error=spec.get("coder_bound"), psnr=target.psnr,
                          bpp=target.bpp, time_budget=time_budget, steps=target.steps, seed=target.seed)
        report = {k: result.report.get(k) for k in ("model", "seconds", "fit_steps")}
        lossless = zlib.compress(np.ascontiguousarray(filled.astype(coder_dtype)).tobytes(), 6)
        if len(lossless) < len(result.data):
            # Safety net: a model (and its residual) larger than the values themselves (tiny tiles, noise) is
            # replaced by the exact values, so a part never costs much more than its raw bytes.
            sections["lossless"] = lossless
            report["model"] = "lossless"
        else:
            sections["field"] = result.data
    desc = {"kind": "array", "shape": [max(1, math.prod(shape)), 1], "dtype": str(coder_dtype),
            "range": [float(lo), float(hi)], "meta": {}}
    part = write_container(Container(desc, TILE_MODEL, config, sections, {"report": report} if report else {}))
    decoded = decode_tile(part, spec)
    bound = spec.get("bound")
    if bound is not None:
        err = _max_error(values.reshape(decoded.shape), decoded)
        if not err <= bound * (1 + 1e-9):
            raise RuntimeError(f"decodes with error {err:g} > bound {bound:g}")
    return part


def _tile_budget(plan: dict[str, Any], target: FieldTarget, size: int) -> float | None:
    if target.time_budget is None:
        return None
    total = sum(math.prod(b - a for a, b in zip(t["start"], t["stop"])) for t in plan["tiles"])
    return max(target.time_budget * size / max(total, 1), 1.0)


def _max_error(original: np.ndarray, decoded: np.ndarray) -> float:
    """Max |error| over the finite values; non-finite ones must come back identical (else +inf)."""
    if original.dtype.kind == "f":
        bad = ~np.isfinite(original)
        same = np.array_equal(np.isnan(original), np.isnan(decoded)) and np.array_equal(
            original[bad & ~np.isnan(original)], decoded[bad & ~np.isnan(original)])
        if not same:
            return math.inf
        ok = ~bad
        if not ok.any():
            return 0.0
        return float(np.max(np.abs(original[ok].astype(np.float64) - decoded[ok].astype(np.float64))))
    if original.size == 0:
        return 0.0
    return float(np.max(np.abs(original.astype(np.float64) - decoded.astype(np.float64))))


def decode_tile(part: bytes, spec: dict[str, Any]) -> np.ndarray:
    """One part -> the tile's values in the variable's dtype (NaN/Inf back in place, packing lattice applied)."""
    from .codec import decompress

    c = read_container(part) if isinstance(part, (bytes, bytearray)) else part
    if c.model != TILE_MODEL:
        raise FormatError(f"dataset part has model {c.model!r}, expected {TILE_MODEL!r}")
    shape = c.config.get("shape")
    if not (isinstance(shape, list) and all(isinstance(n, int) and n > 0 for n in shape)
            and math.prod(shape) <= MAX_VALUES):
        raise FormatError("dataset part has an invalid shape")
    shape = tuple(shape)
    out_dtype = checked_dtype(spec["dtype"])
    if "constant" in c.config:
        value = c.config["constant"]
        if not isinstance(value, (int, float)):
            raise FormatError("dataset part has an invalid constant")
        out = np.full(shape, value, dtype=np.float64)
    elif "lossless" in c.sections:
        coder_dtype = checked_dtype(c.signal.get("dtype"))
        raw = _inflate(c.sections["lossless"], math.prod(shape) * coder_dtype.itemsize)
        out = np.frombuffer(raw, coder_dtype).reshape(shape).astype(np.float64)
    else:
        if "field" not in c.sections:
            raise FormatError("dataset part has no field section")
        claimed = read_container(c.sections["field"]).signal["shape"]
        if math.prod(claimed) != math.prod(shape):  # refused before anything is rendered
            raise FormatError("dataset part's field does not match its shape")
        signal = decompress(c.sections["field"])
        if signal.data.size != math.prod(shape):
            raise FormatError("dataset part's field does not match its shape")
        out = signal.data.reshape(shape).astype(np.float64)
    if "nonfinite" in c.sections:
        bad, kinds = _decode_nonfinite(c.sections["nonfinite"], shape)
        out[bad] = np.array([np.nan, np.inf, -np.inf])[kinds]
    lattice = packing_lattice(encoding_from_json(spec.get("encoding", {})))
    if lattice is not None:
        step, offset = lattice
        with np.errstate(invalid="ignore"):
            out = np.rint((out - offset) / step) * step + offset
    if out_dtype.kind in "iub":
        finite = np.isfinite(out)
        out = np.where(finite, np.rint(out), 0)
        if out_dtype.kind != "b":
            info = np.iinfo(out_dtype)
            out = np.clip(out, info.min, info.max)
    return out.astype(out_dtype)


# -- whole file ---------------------------------------------------------------------------------------------------

def _array_section(values: np.ndarray) -> bytes:
    if values.dtype.kind == "O":
        values = values.astype(str)
    return zlib.compress(np.ascontiguousarray(values).tobytes(), 6)


def assemble(path: str | Path, plan: dict[str, Any], parts: Sequence[bytes]) -> bytes:
    """Coordinates and losslessly stored variables (read from ``path``) + the tiles' parts -> ``.inrc`` bytes."""
    if len(parts) != len(plan["tiles"]):
        raise ValueError("one part per tile is needed")
    ds = open_dataset(path)
    shared: dict[str, bytes] = {}
    config = {k: plan[k] for k in ("layout_version", "attrs", "tiles")}
    config["variables"] = []
    try:
        for spec in plan["variables"]:
            spec = {k: v for k, v in spec.items() if k != "coder_bound"}
            if spec["role"] != "field":
                values = np.asarray(ds[spec["name"]].variable.values)
                if values.dtype.kind in "OU":
                    values = values.astype(str)
                spec["dtype"] = values.dtype.str
                spec["section"] = f"{LOSSLESS_SECTION}{len(shared)}"
                shared[spec["section"]] = _array_section(values)
            config["variables"].append(spec)
    finally:
        ds.close()
    desc = {"kind": "array", "shape": [max(1, len(parts)), 1], "dtype": "float32", "range": [0.0, 0.0],
            "meta": {"format": "dataset"}}
    return pack_parts(desc, LAYOUT, config, parts, shared=shared)


def compress_dataset(path: str | Path, names: Sequence[str] | None = None, target: FieldTarget | None = None,
                     progress: Callable[[int, int, str], None] | None = None,
                     tile_cap: int = TILE_CAP_VALUES) -> DatasetResult:
    """Compress the data variables ``names`` (default: all) of a NetCDF/HDF5/zarr dataset into one ``.inrc``."""
    t0 = time.perf_counter()
    target = target or FieldTarget()
    plan = plan_dataset(path, names, target, tile_cap)
    parts, seconds = [], []
    for i in range(len(plan["tiles"])):
        t = time.perf_counter()
        if progress is not None:
            progress(i, len(plan["tiles"]), plan["variables"][plan["tiles"][i]["var"]]["name"])
        parts.append(encode_tile(path, plan, i))
        seconds.append(time.perf_counter() - t)
    data = assemble(path, plan, parts)
    report = dataset_report(path, plan, data, seconds, time.perf_counter() - t0)
    return DatasetResult(data, report)


def dataset_report(path: str | Path, plan: dict[str, Any], data: bytes, tile_seconds: Sequence[float],
                   seconds: float) -> dict[str, Any]:
    """Ratio, bits per value and max error / bound per variable, measured by decoding ``data``."""
    decoded = decompress_dataset(data)
    ds = open_dataset(path)
    rows = []
    try:
        original_bytes = 0
        values_total = 0
        for spec in plan["variables"]:
            if spec["role"] == "coord":
                continue
            name = spec["name"]
            n = math.prod(spec["shape"])
            stored = np.dtype(spec["encoding"].get("dtype", spec["dtype"]))
            original_bytes += n * stored.itemsize
            values_total += n
            row: dict[str, Any] = {"name": name, "shape": spec["shape"], "dtype": str(stored), "role": spec["role"]}
            if spec["role"] == "field":
                outer = read_container(data)
                part_bytes = sum(len(outer.sections[f"part:{i}"]) for i in spec["tiles"])
                err = 0.0
                sq, cnt = 0.0, 0
                var = ds[name].variable
                for i in spec["tiles"]:
                    tile = plan["tiles"][i]
                    a = _read_box(var, tile["start"], tile["stop"])
                    b = _read_box(decoded[name].variable, tile["start"], tile["stop"])
                    err = max(err, _max_error(a, b))
                    ok = np.isfinite(a) if a.dtype.kind == "f" else np.ones(a.shape, bool)
                    diff = a[ok].astype(np.float64) - b[ok].astype(np.float64)
                    sq += float(np.sum(diff * diff))
                    cnt += int(ok.sum())
                lo, hi = spec["range"]
                mse = sq / max(cnt, 1)
                row.update(bytes=part_bytes, ratio=n * stored.itemsize / max(part_bytes, 1),
                           bits_per_value=8.0 * part_bytes / n, bound=spec["bound"], max_abs_error=err,
                           error_over_bound=None if not spec["bound"] else err / spec["bound"],
                           psnr=float("inf") if mse == 0 else 10 * math.log10(max(hi - lo, 1e-300) ** 2 / mse),
                           range=spec["range"], tiles=len(spec["tiles"]),
                           seconds=float(sum(tile_seconds[i] for i in spec["tiles"])) if tile_seconds else None)
            rows.append(row)
    finally:
        ds.close()
    fields = [r for r in rows if r["role"] == "field"]
    psnrs = [r["psnr"] for r in fields if math.isfinite(r["psnr"])]
    models = sorted({m for m in _models_used(data)})
    bounds_met = all(r["max_abs_error"] <= r["bound"] for r in fields if r.get("bound") is not None)
    return {
        "input": str(path), "bytes": len(data), "values": values_total,
        "bpp": 8.0 * len(data) / max(values_total, 1), "bits_per_value": 8.0 * len(data) / max(values_total, 1),
        "ratio": original_bytes / len(data), "original_bytes": original_bytes,
        "psnr": float(np.mean(psnrs)) if psnrs else float("inf"), "seconds": seconds,
        "model": ",".join(models) or "none", "target": plan["target"], "target_met": bounds_met,
        "variables": rows,
    }


def _models_used(data: bytes) -> list[str]:
    outer = read_container(data)
    names = []
    for i in range(part_count(outer)):
        part = read_part(outer, i)
        if "field" in part.sections:
            names.append(read_container(part.sections["field"]).model)
        elif "lossless" in part.sections:
            names.append("lossless")
    return names


# -- decoding -----------------------------------------------------------------------------------------------------

def _check_spec(spec: Any) -> None:
    if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and isinstance(spec.get("dims"), list)
            and isinstance(spec.get("shape"), list) and len(spec["dims"]) == len(spec["shape"])
            and all(isinstance(d, str) for d in spec["dims"])
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in spec["shape"])
            and spec.get("role") in ("field", "lossless", "coord") and isinstance(spec.get("dtype"), str)
            and (spec["role"] == "field" or isinstance(spec.get("section"), str))):
        raise FormatError("malformed variable entry in dataset header")
    if math.prod(spec["shape"]) > MAX_VALUES:
        raise FormatError(f"variable {spec['name']!r} claims more than {MAX_VALUES} values")


def dataset_variables(c: Container) -> list[dict[str, Any]]:
    """The variable entries of a dataset file's header (validated)."""
    variables = c.config.get("variables")
    if not isinstance(variables, list):
        raise FormatError("dataset header has no variable list")
    for spec in variables:
        _check_spec(spec)
    return variables


def _tile_grid(boxes: list[tuple[list[int], list[int]]], shape: tuple[int, ...]):
    """Per-axis ranges and grid position -> box number, when the boxes tile ``shape`` as a regular grid (as
    ``_tiles`` writes them); None otherwise."""
    per_axis = [sorted({(b[0][a], b[1][a]) for b in boxes}) for a in range(len(shape))]
    for ranges, n in zip(per_axis, shape):
        pos = 0
        for start, stop in ranges:
            if start != pos:
                return None
            pos = stop
        if pos != n:
            return None
    if math.prod(len(r) for r in per_axis) != len(boxes):
        return None
    where = {tuple(per_axis[a].index((b[0][a], b[1][a])) for a in range(len(shape))): k for k, b in enumerate(boxes)}
    return per_axis, where


def _decode_part_checked(part: bytes, spec: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    values = decode_tile(part, spec)
    if values.shape != shape:
        raise FormatError(f"variable {spec['name']!r}: a tile has the wrong shape")
    return values


def _lazy_field(c: Container, spec: dict[str, Any], idx: list[int], tiles: list, dtype: np.dtype):
    """A dask array whose blocks are the variable's tiles, decoded only when a writer asks for them (memory bounded
    by the tiles in flight, not the variable). None when the tiles are not a regular grid."""
    import dask
    import dask.array as da

    shape = tuple(spec["shape"])
    boxes = [(tiles[i]["start"], tiles[i]["stop"]) for i in idx]
    grid = _tile_grid(boxes, shape)
    if grid is None:
        return None
    per_axis, where = grid

    def block(position: tuple[int, ...]):
        if len(position) == len(shape):
            k = where[position]
            tile_shape = tuple(b - a for a, b in zip(*boxes[k]))
            delayed = dask.delayed(_decode_part_checked, pure=True)(c.sections[f"part:{idx[k]}"], spec, tile_shape)
            return da.from_delayed(delayed, shape=tile_shape, dtype=dtype)
        return [block(position + (j,)) for j in range(len(per_axis[len(position)]))]

    return da.block(block(()))


def decompress_dataset(data: bytes | Container, names: Sequence[str] | None = None, lazy: bool = False):
    """An ``.inrc`` dataset file -> ``xr.Dataset`` (all data variables, or ``names``, with every coordinate).
    ``lazy``: coded variables are dask arrays decoded tile by tile as they are written (``save_dataset`` to .nc or
    .zarr then holds a few tiles in memory, not whole variables)."""
    import xarray as xr

    c = read_container(data) if isinstance(data, (bytes, bytearray)) else data
    if c.model != LAYOUT:
        raise FormatError(f"not a dataset file (model {c.model!r})")
    variables = dataset_variables(c)
    tiles = c.config.get("tiles")
    if not isinstance(tiles, list):
        raise FormatError("dataset header has no tile list")
    n_parts = part_count(c)
    fields = [s["name"] for s in variables if s["role"] != "coord"]
    if names:
        missing = [n for n in names if n.lstrip("/") not in fields and n not in fields]
        if missing:
            raise InputError(f"no variable {missing[0]!r} in this file (variables: {', '.join(fields)})")
        wanted = {n if n in fields else n.lstrip("/") for n in names}
    else:
        wanted = set(fields)
    data_vars, coords = {}, {}
    for spec in variables:
        if spec["role"] != "coord" and spec["name"] not in wanted:
            continue
        dtype = checked_dtype(spec["dtype"])
        shape = tuple(spec["shape"])
        if spec["role"] == "field":
            idx = spec.get("tiles")
            if not isinstance(idx, list) or not all(isinstance(i, int) and 0 <= i < min(n_parts, len(tiles))
                                                    for i in idx):
                raise FormatError(f"variable {spec['name']!r} has an invalid tile list")
            for i in idx:
                if not (isinstance(tiles[i], dict) and _valid_box(tiles[i], shape)):
                    raise FormatError(f"variable {spec['name']!r}: tile {i} is outside the variable")
            covered = sum(math.prod(b - a for a, b in zip(tiles[i]["start"], tiles[i]["stop"])) for i in idx)
            if covered != math.prod(shape) or len(set(idx)) != len(idx):
                raise FormatError(f"variable {spec['name']!r}: its tiles do not cover it")
            out = _lazy_field(c, spec, idx, tiles, dtype) if lazy else None
            if out is None:  # eager (or tiles not on a grid): decode every tile now
                check_pixels(shape, None, f"variable {spec['name']!r}")  # the whole variable is held at once
                out = np.empty(shape, dtype)
                for i in idx:
                    start, stop = tiles[i]["start"], tiles[i]["stop"]
                    key = tuple(slice(a, b) for a, b in zip(start, stop))
                    out[key] = _decode_part_checked(read_part(c, i), spec, tuple(b - a for a, b in zip(start, stop)))
        else:
            section = spec.get("section")
            if section not in c.sections:
                raise FormatError(f"variable {spec['name']!r} has no data section")
            raw = _inflate(c.sections[section], math.prod(shape) * dtype.itemsize)
            out = np.frombuffer(raw, dtype).reshape(shape).copy()
        var = xr.Variable(tuple(spec["dims"]), out, attrs_from_json(spec.get("attrs", {})))
        var.encoding = encoding_from_json(spec.get("encoding", {}))
        (coords if spec["role"] == "coord" else data_vars)[spec["name"]] = var
    try:
        return xr.Dataset(data_vars, coords=coords, attrs=attrs_from_json(c.config.get("attrs", {})))
    except ValueError as exc:
        raise FormatError(f"inconsistent dataset header: {exc}") from None


def _valid_box(box: dict, shape: tuple[int, ...]) -> bool:
    start, stop = box.get("start"), box.get("stop")
    return (isinstance(start, list) and isinstance(stop, list) and len(start) == len(stop) == len(shape)
            and all(isinstance(a, int) and isinstance(b, int) and 0 <= a < b <= n
                    for a, b, n in zip(start, stop, shape)))


def _decode_layout(c: Container, **options):
    return decompress_dataset(c, options.get("names"))


register_layout(LAYOUT, _decode_layout)
