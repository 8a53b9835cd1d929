"""The command line for datasets (NetCDF/HDF5/zarr): what ``fit``, ``decode`` and ``info`` do when the input is a
dataset or a dataset ``.inrc``. ``inrcodec.cli`` calls these so that its own commands stay one dispatch line each.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import typer

from .errors import InputError


def fit_dataset(input: Path, output: Path | None, names: Sequence[str] | None, target, json_report: Path | None,
                quiet: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .cli import write_result
    from .dataset_codec import compress_dataset
    from .signals._atomic import check_output_path

    out_path = output or input.with_suffix(".inrc")
    check_output_path(out_path)
    if json_report is not None:
        check_output_path(json_report)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tiles"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  disable=quiet or not console.is_terminal and not os.environ.get("INRCODEC_PROGRESS")) as bar:
        task = bar.add_task("fitting", total=None)

        def progress(i: int, n: int, name: str) -> None:
            bar.update(task, completed=i, total=n, description=f"fitting {name}")

        result = compress_dataset(input, names, target, progress=progress)
    report = write_result(out_path, result, json_report)
    typer.echo(f"{out_path}: {report['bytes']} bytes, {report['bits_per_value']:.4f} bits/value, "
               f"ratio {report['ratio']:.2f}, {report['seconds']:.1f} s, model {report['model']}")
    for row in report["variables"]:
        typer.echo("  " + variable_line(row))


def variable_line(row: dict[str, Any]) -> str:
    shape = "x".join(map(str, row["shape"])) or "scalar"
    if row["role"] != "field":
        return f"{row['name']}: {shape} {row['dtype']}, stored losslessly"
    bound = ""
    if row.get("bound") is not None:
        ratio = row.get("error_over_bound")
        bound = f", max error {row['max_abs_error']:.4g} / bound {row['bound']:.4g}" + (
            f" ({ratio:.3f})" if ratio is not None else "")
    psnr = "inf" if not math.isfinite(row["psnr"]) else f"{row['psnr']:.2f}"
    return (f"{row['name']}: {shape} {row['dtype']}, ratio {row['ratio']:.2f}, {row['bits_per_value']:.3f} bits/value, "
            f"PSNR {psnr} dB{bound}")


def decode_dataset(data: bytes, input: Path, output: Path | None, names: Sequence[str] | None) -> None:
    from .dataset_codec import decompress_dataset
    from .signals._atomic import atomic_output, check_output_path
    from .signals.dataset import dataset_format, save_dataset

    if output is None:
        output = input.with_name(input.stem + ".decoded.nc")
    suffix = output.suffix.lower()
    if suffix != ".npy" and dataset_format(output) is None:
        raise InputError(f"{output}: a dataset decodes to .nc, .h5, .zarr (or .npy for one variable)")
    if suffix == ".npy" or dataset_format(output) != "zarr":
        check_output_path(output)
    # .nc/.zarr are written from dask arrays, tile by tile: memory holds a few tiles, not whole variables
    ds = decompress_dataset(data, names, lazy=dataset_format(output) in ("netcdf", "zarr"))
    if suffix == ".npy":
        if len(ds.data_vars) != 1:
            raise InputError(f"{output}: .npy holds one variable, the file has {len(ds.data_vars)} "
                             f"({', '.join(map(str, ds.data_vars))}): pick one with --var")
        name = next(iter(ds.data_vars))
        with atomic_output(output) as tmp:
            np.save(tmp, np.asarray(ds[name].values), allow_pickle=False)
        typer.echo(f"{output}: {name} {'x'.join(map(str, ds[name].shape))} {ds[name].dtype}")
        return
    save_dataset(ds, output)
    typer.echo(f"{output}: {len(ds.data_vars)} variables ({', '.join(map(str, ds.data_vars))})")


def info_dataset(c, input: Path, size: int) -> None:
    from .dataset_codec import dataset_variables
    from .parts import part_count

    variables = dataset_variables(c)
    values = sum(math.prod(v["shape"]) for v in variables if v["role"] != "coord")
    typer.echo(f"file:      {input} ({size} bytes, {8 * size / max(values, 1):.4f} bits/value)")
    typer.echo(f"layout:    dataset, {part_count(c)} tiles")
    for v in variables:
        shape = "(" + ", ".join(f"{d}={n}" for d, n in zip(v["dims"], v["shape"])) + ")"
        if v["role"] == "field":
            bound = v.get("bound")
            what = (f"bound {bound:.6g}" if isinstance(bound, (int, float)) else "no bound") + \
                   f", range {v.get('range')}, {len(v.get('tiles', []))} tiles"
        else:
            what = "lossless" + (" (coordinate)" if v["role"] == "coord" else "")
        typer.echo(f"{'coord' if v['role'] == 'coord' else 'variable'}:  {v['name']} {shape} {v['dtype']}: {what}")
    if c.config.get("attrs"):
        typer.echo(f"attrs:     {json.dumps(c.config['attrs'])[:400]}")
