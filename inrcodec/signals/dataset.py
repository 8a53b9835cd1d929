"""Scientific datasets in and out through xarray: NetCDF 3/4, HDF5 and zarr v2/v3 stores.

    ds = open_dataset("era5.nc")                 # lazy xr.Dataset: nothing is read until a slice is asked for
    names = data_variables(ds, ["t2m"], "era5.nc")
    save_dataset(ds, "copy.zarr")                # atomic: a temporary file or folder, then a rename

How each format is read (values are always the *physical* ones, as xarray's ``mask_and_scale`` gives them):

==================  ================================================================================================
.nc .nc4 .cdf       ``xr.open_dataset`` (netCDF4 or h5netcdf engine, chosen by xarray from the file's magic bytes)
.h5 .hdf5 .he5      a netCDF4 file under an HDF5 name: as above (h5netcdf). A plain HDF5 file: every dataset (walked
                    with h5py) becomes a variable named by its path without the leading "/" ("group/name"), dims
                    from its dimension labels (else ``<name>_dim<i>``), attrs kept, CF packing decoded
.zarr (a folder)    ``xr.open_dataset(engine="zarr")``, zarr format 2 or 3
==================  ================================================================================================

Times are *not* decoded (``decode_times=False``): a time coordinate stays the numbers of its file with its
``units``/``calendar`` attrs, so it goes back out bit for bit. The CF encoding of each variable (its on-disk
``dtype``, ``_FillValue``, ``missing_value``, ``scale_factor``, ``add_offset``) is kept in ``variable.encoding``
and applied again when a dataset is written, so an int16 packed variable goes back out as int16 packed.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import FormatError, InputError
from ._atomic import check_output_path
from ._common import describe_exc, fail

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
ZARR_SUFFIXES = (".zarr",)
DATASET_SUFFIXES = NETCDF_SUFFIXES + HDF5_SUFFIXES + ZARR_SUFFIXES

# The CF encoding keys that change what the stored numbers mean; everything else in .encoding (chunk sizes,
# compressors, zlib levels) is a property of one file format and is left to the writer of the output.
CF_ENCODING_KEYS = ("dtype", "_FillValue", "missing_value", "scale_factor", "add_offset")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NETCDF3_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


def dataset_format(path: str | os.PathLike) -> str | None:
    """"netcdf", "hdf5" or "zarr" by the name's suffix (a zarr store is a folder); None for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in NETCDF_SUFFIXES:
        return "netcdf"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    return None


def is_dataset_path(path: str | os.PathLike) -> bool:
    return dataset_format(path) is not None


def open_dataset(path: str | os.PathLike):
    """A lazy ``xr.Dataset`` for ``path``; InputError (one line, naming the file) when it cannot be read."""
    import xarray as xr

    fmt = dataset_format(path)
    if fmt is None:
        raise fail(path, "not a dataset (expected .nc, .h5 or a .zarr folder)")
    p = Path(path)
    if not p.exists():
        raise fail(path, "no such file")
    if fmt == "zarr":
        if not p.is_dir():
            raise fail(path, "a zarr store must be a folder")
        if not any((p / m).exists() for m in ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")):
            raise fail(path, "not a zarr store (no zarr.json or .zgroup)")
        try:
            with warnings.catch_warnings():  # "no consolidated metadata": zarr v3 stores and plain v2 stores have none
                warnings.simplefilter("ignore", RuntimeWarning)
                return xr.open_dataset(p, engine="zarr", decode_times=False, decode_timedelta=False, chunks=None)
        except Exception as exc:  # zarr raises many types for a broken store
            raise fail(path, f"cannot read zarr store ({describe_exc(exc)})") from None
    if p.is_dir():
        raise fail(path, "is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise fail(path, "permission denied")
    if p.stat().st_size == 0:
        raise fail(path, "file is empty")
    with open(p, "rb") as fh:
        head = fh.read(8)
    is_hdf5 = head.startswith(_HDF5_MAGIC)
    if not is_hdf5 and not head.startswith(_NETCDF3_MAGICS):
        raise fail(path, "not a NetCDF or HDF5 file (bad magic bytes)")
    if is_hdf5 and fmt == "hdf5" and not _looks_like_netcdf4(p):
        return _open_plain_hdf5(p)
    try:
        return xr.open_dataset(p, decode_times=False, decode_timedelta=False, chunks=None)
    except Exception as exc:  # netCDF4/h5netcdf raise OSError, RuntimeError, ValueError, KeyError ...
        raise fail(path, f"cannot read {'HDF5' if is_hdf5 else 'NetCDF'} file ({describe_exc(exc)})") from None


def _looks_like_netcdf4(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "_NCProperties" in f.attrs:
                return True
            found = []
            f.visititems(lambda name, obj: found.append(1) if isinstance(obj, h5py.Dataset)
                         and obj.attrs.get("CLASS", b"") == b"DIMENSION_SCALE" else None)
            return bool(found)
    except Exception as exc:
        raise fail(path, f"cannot read HDF5 file ({describe_exc(exc)})") from None


class _H5Lazy:
    """Array-like over one h5py dataset that opens the file per read: a dataset built on it can be pickled to a
    Dask worker and holds no open handle (so a kill -9 never leaves a locked file behind)."""

    def __init__(self, path: Path, name: str, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.name, self.shape, self.dtype = path, name, shape, dtype
        self.ndim = len(shape)

    def __getitem__(self, key):
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self.name][key])


def _open_plain_hdf5(path: Path):
    """Every numeric dataset of a plain HDF5 file as a variable (lazy through dask), CF packing decoded."""
    import dask.array as da
    import h5py
    import xarray as xr

    variables = {}
    try:
        with h5py.File(path, "r") as f:
            items: list[tuple[str, Any]] = []
            f.visititems(lambda name, obj: items.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
            for name, dset in items:
                if dset.dtype.kind not in "biuf" or dset.shape is None:
                    continue  # strings, compounds, references, empty datasets: not fields
                dims = []
                for i, dim in enumerate(dset.dims):
                    label = dim.label if isinstance(dim.label, str) else ""
                    dims.append(label or f"{name.replace('/', '_')}_dim{i}")
                attrs = {k: v for k, v in ((k, _h5_attr(dset.attrs, k)) for k in dset.attrs) if v is not None}
                lazy = _H5Lazy(path, name, tuple(dset.shape), dset.dtype)
                chunks = dset.chunks or "auto"
                arr = da.from_array(lazy, chunks=chunks, asarray=True, fancy=False) if dset.ndim else dset[()]
                variables[name] = xr.Variable(tuple(dims), arr, attrs)
            root_attrs = {k: v for k, v in ((k, _h5_attr(f.attrs, k)) for k in f.attrs) if v is not None}
    except InputError:
        raise
    except Exception as exc:
        raise fail(path, f"cannot read HDF5 file ({describe_exc(exc)})") from None
    try:
        ds = xr.Dataset(variables, attrs=root_attrs)
    except ValueError as exc:  # two datasets sharing a dimension label with different lengths
        raise fail(path, f"inconsistent HDF5 dimensions ({describe_exc(exc)})") from None
    return xr.decode_cf(ds, decode_times=False, decode_timedelta=False)


def _h5_attr(attrs, key):
    try:
        value = attrs[key]
    except Exception:  # attrs h5py cannot read (odd types): left out
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return None  # object references (dimension lists ...) are file structure, not metadata
    if key in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
        return None
    return value


def data_variables(ds, names: Iterable[str] | None, path: str | os.PathLike) -> list[str]:
    """The data variables to compress: ``names`` (a leading "/" is optional), or every data variable."""
    available = [str(v) for v in ds.data_vars]
    if not names:
        if not available:
            raise fail(path, "has no data variables")
        return available
    chosen = []
    for name in names:
        key = name.lstrip("/") if name.lstrip("/") in available else name
        if key not in available:
            listed = ", ".join(available) or "none"
            raise fail(path, f"no variable {name!r} (variables: {listed})")
        if key not in chosen:
            chosen.append(key)
    return chosen


# -- JSON for attrs and encodings -------------------------------------------------------------------------------
# Attr values are str, numbers, numpy scalars and 1-D arrays. The numpy dtype is kept ({"__np__": dtype, ...}):
# CF cares (a _FillValue must have its variable's dtype, valid_range too). NaN/Inf go as strings (the container
# header is strict JSON).

_ALLOWED_KINDS = "biufSU"


def to_json(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, bytes):
        return {"__bytes__": value.decode("latin-1")}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ALLOWED_KINDS:
            return str(value.tolist())
        return {"__np__": value.dtype.str, "shape": list(value.shape),
                "v": [_scalar_json(v) for v in value.ravel().tolist()]}
    if isinstance(value, np.generic):
        if value.dtype.kind not in _ALLOWED_KINDS:
            return str(value)
        return {"__np__": value.dtype.str, "v": _scalar_json(value.item())}
    if isinstance(value, (int, float)):
        return _scalar_json(value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return str(value)


def _scalar_json(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return {"__float__": repr(v)}
    if isinstance(v, bytes):
        return {"__bytes__": v.decode("latin-1")}
    return v


def _scalar_from(v: Any) -> Any:
    if isinstance(v, dict):
        if "__float__" in v and v["__float__"] in ("nan", "inf", "-inf"):
            return float(v["__float__"])
        if "__bytes__" in v and isinstance(v["__bytes__"], str):
            return v["__bytes__"].encode("latin-1")
        raise FormatError("malformed attribute value")
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    raise FormatError("malformed attribute value")


def checked_dtype(text: Any) -> np.dtype:
    """A dtype named in an (untrusted) header: numbers and fixed-width strings only, never objects."""
    try:
        dtype = np.dtype(text) if isinstance(text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _ALLOWED_KINDS + "mM" or dtype.hasobject or dtype.itemsize > 1024:
        raise FormatError(f"unsupported dtype {text!r} in header")
    return dtype


def from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if "__np__" in value:
            dtype = checked_dtype(value["__np__"])
            raw = value.get("v")
            if "shape" in value:
                shape = value["shape"]
                if not (isinstance(raw, list) and isinstance(shape, list) and all(isinstance(s, int) for s in shape)
                        and math.prod(shape) == len(raw)):
                    raise FormatError("malformed attribute array")
                try:
                    return np.array([_scalar_from(v) for v in raw], dtype=dtype).reshape(shape)
                except (ValueError, TypeError, OverflowError):
                    raise FormatError("malformed attribute array") from None
            try:
                return np.array(_scalar_from(raw), dtype=dtype)[()]
            except (ValueError, TypeError, OverflowError):
                raise FormatError("malformed attribute value") from None
        return _scalar_from(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise FormatError("malformed attribute value")


def attrs_to_json(attrs: dict) -> dict[str, Any]:
    return {str(k): to_json(v) for k, v in attrs.items()}


def attrs_from_json(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise FormatError("malformed attributes")
    return {str(k): from_json(v) for k, v in obj.items()}


def cf_encoding(variable) -> dict[str, Any]:
    """The CF part of a variable's encoding, JSON-able (dtype as a string)."""
    out: dict[str, Any] = {}
    for key in CF_ENCODING_KEYS:
        if key in variable.encoding and variable.encoding[key] is not None:
            value = variable.encoding[key]
            out[key] = np.dtype(value).str if key == "dtype" else to_json(value)
    return out


def encoding_from_json(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict) or not set(obj) <= set(CF_ENCODING_KEYS):
        raise FormatError("malformed variable encoding")
    out = {k: from_json(v) for k, v in obj.items() if k != "dtype"}
    if "dtype" in obj:
        out["dtype"] = checked_dtype(obj["dtype"])
    return out


def packing_lattice(encoding: dict[str, Any]) -> tuple[float, float] | None:
    """(step, offset) of the values an integer on-disk dtype can hold (CF packing), None for float storage.

    A decoded value is snapped back onto this lattice when written, which moves it by up to step/2: the
    dataset codec narrows the bound it asks of the coder so that the written value is still within the bound."""
    dtype = encoding.get("dtype")
    if dtype is None or np.dtype(dtype).kind not in "iu":
        return None
    scale = float(np.asarray(encoding.get("scale_factor", 1.0)).ravel()[0])
    offset = float(np.asarray(encoding.get("add_offset", 0.0)).ravel()[0])
    if not (math.isfinite(scale) and scale > 0 and math.isfinite(offset)):
        return None
    return scale, offset


# -- writing ------------------------------------------------------------------------------------------------------

def save_dataset(ds, path: str | os.PathLike) -> None:
    """Write ``ds`` (variables' ``.encoding`` holding their CF encoding) to .nc, .h5 or a .zarr folder, atomically.

    A zarr store is written into a hidden folder next to the target and renamed; an existing store is not
    overwritten (remove it first)."""
    fmt = dataset_format(path)
    if fmt is None:
        raise fail(path, "cannot write a dataset here (use .nc, .h5 or .zarr)")
    target = Path(path)
    if fmt == "zarr":
        if target.exists():
            raise fail(path, "already exists (remove it first: a zarr store is never overwritten)")
        if not target.parent.is_dir():
            raise InputError(f"{path}: directory {str(target.parent)!r} does not exist")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            shutil.rmtree(tmp)
            _for_netcdf_names(ds).to_zarr(tmp, mode="w-", consolidated=False)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    from ._atomic import atomic_output

    check_output_path(path)
    with atomic_output(target) as tmp:
        if fmt == "netcdf":
            _for_netcdf_names(ds).to_netcdf(tmp, engine="netcdf4")
        else:
            _write_hdf5(ds, tmp)


def _for_netcdf_names(ds):
    """NetCDF and zarr names may not hold "/" (HDF5 paths do): "group/name" -> "group__name"."""
    renames = {name: str(name).replace("/", "__") for name in ds.variables if "/" in str(name)}
    return ds.rename(renames) if renames else ds


def _write_hdf5(ds, tmp: Path) -> None:
    """Plain HDF5 through h5py: one dataset per variable (coordinates too) at its name's path, CF-encoded by
    xarray's own encoder (so packing and fill values follow the same rules as for NetCDF), dims as labels."""
    import h5py
    from xarray import conventions

    variables, attrs = conventions.cf_encoder(dict(ds.variables), dict(ds.attrs))
    with h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for name, var in variables.items():
            data = np.asarray(var.values)
            if data.dtype.kind == "U":
                data = data.astype(h5py.string_dtype())
            dset = f.create_dataset(str(name), data=data)
            for key, value in var.attrs.items():
                with contextlib.suppress(TypeError):
                    dset.attrs[key] = value
            for i, dim in enumerate(var.dims):
                dset.dims[i].label = str(dim)


# -- one variable as a Signal (inrcodec.load("x.nc", var="t2m"): compare, the UI, the Python API) -------------------

def load_variable(path: str | os.PathLike, var: str | None = None):
    """One data variable as a ``Signal`` (kind by its axes longer than 1; beyond three, the leading ones merged).
    NaN (fill values) stay NaN; the value range is the finite min/max. ``var`` may be omitted when the file has one
    data variable. ``metadata`` keeps the variable's name, dims and shape."""
    from ..signal import SUPPORTED_DTYPES, Signal
    from ._common import ARRAY_KINDS, check_values

    ds = open_dataset(path)
    try:
        names = data_variables(ds, [var] if var else None, path)
        fields = [n for n in names if ds[n].ndim >= 1 and ds[n].dtype.kind in "biuf"]
        if not fields:
            raise fail(path, "has no numeric variable with at least one axis")
        if var is None and len(fields) > 1:
            raise fail(path, f"has {len(fields)} variables ({', '.join(fields)}): choose one with --var")
        name = fields[0]
        variable = ds[name].variable
        check_values(path, variable.shape, f"variable {name!r}")
        try:
            values = np.asarray(variable.values)
        except Exception as exc:
            raise fail(path, f"cannot read variable {name!r} ({describe_exc(exc)})") from None
    finally:
        ds.close()
    if str(values.dtype) not in SUPPORTED_DTYPES:
        values = values.astype(np.float64 if values.dtype.kind == "f" else np.int32)
    axes = [n for n in values.shape if n > 1] or [1]
    if len(axes) > 3:
        axes = [int(np.prod(axes[:-2]))] + axes[-2:]
    meta = {"format": dataset_format(path), "variable": name, "dims": [str(d) for d in variable.dims],
            "npy_shape": [int(n) for n in values.shape]}
    try:
        return Signal(np.ascontiguousarray(values.reshape(axes + [1])), kind=ARRAY_KINDS[len(axes)], metadata=meta)
    except InputError as exc:  # e.g. no finite value at all
        raise fail(path, f"variable {name!r}: {exc}") from None


def is_dataset_file(head: bytes) -> bool:
    return head.startswith(_HDF5_MAGIC) or head.startswith(_NETCDF3_MAGICS)
