"""``inrcodec batch INPUT... -o OUTDIR``: many files as dask.distributed tasks, with a manifest for ``--resume``.

Work units:

- a dataset (.nc/.h5/.zarr): a *plan* task (variables, ranges, tiles: ``dataset_codec.plan_dataset``), then one task
  per tile (``encode_tile``, which writes its part to ``OUTDIR/.inrcodec-batch/<input>/tile-<i>.part``), then an
  *assemble* task that packs the parts into ``OUTDIR/<name>.inrc`` and measures the report;
- any other signal (.npy, raw, images ...): one task (``compress`` of the whole file).

Every file is written atomically (temporary name + rename), and the client writes the manifest
(``OUTDIR/.inrcodec-batch/manifest.json``, also atomically) each time a task finishes. So a batch killed at any
moment (kill -9 included) leaves only whole part files, whole outputs and a manifest that is at most one task
behind; ``--resume`` keeps every part file and output that is there and redoes nothing finished. Tasks run with
``pure=False`` (a fit is not a pure function of its arguments to Dask's cache: the same call must run again after a
failure) on a LocalCluster of N single-threaded workers, or on an existing cluster (``--scheduler``): then OUTDIR must
be on a file system the workers share.

A bad input (unreadable, corrupt, missing variable ...) is reported and skipped; the others finish. Exit code 0 if
every input succeeded, 2 if any was bad, 1 if a task failed for another reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import InputError

STATE_DIR = ".inrcodec-batch"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


# -- tasks (run on workers; module-level so that they pickle by reference) -----------------------------------------

def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _bad(exc: BaseException) -> dict[str, Any]:
    return {"status": "bad", "error": str(exc)}


def task_plan(path: str, names: Sequence[str] | None, target: dict[str, Any]) -> dict[str, Any]:
    from .dataset_codec import FieldTarget, plan_dataset

    try:
        return {"status": "ok", "plan": plan_dataset(path, names, FieldTarget(**target))}
    except InputError as exc:
        return _bad(exc)


def task_tile(path: str, plan: dict[str, Any], index: int, part_path: str) -> dict[str, Any]:
    from .dataset_codec import encode_tile
    from .signals._atomic import write_bytes_atomic

    _one_thread()
    t0 = time.perf_counter()
    try:
        part = encode_tile(path, plan, index)
    except InputError as exc:
        return _bad(exc)
    write_bytes_atomic(part_path, part)
    return {"status": "ok", "index": index, "seconds": time.perf_counter() - t0, "bytes": len(part)}


def task_assemble(path: str, plan: dict[str, Any], part_paths: Sequence[str], output: str,
                  tile_seconds: Sequence[float]) -> dict[str, Any]:
    from .dataset_codec import assemble, dataset_report
    from .signals._atomic import write_bytes_atomic

    t0 = time.perf_counter()
    try:
        parts = [Path(p).read_bytes() for p in part_paths]
        data = assemble(path, plan, parts)
        write_bytes_atomic(output, data)
        report = dataset_report(path, plan, data, tile_seconds, float(sum(tile_seconds)))
    except InputError as exc:
        return _bad(exc)
    report["assemble_seconds"] = time.perf_counter() - t0
    return {"status": "ok", "report": report}


def task_signal(path: str, target: dict[str, Any], output: str) -> dict[str, Any]:
    from .codec import compress
    from .signals import load
    from .signals._atomic import write_bytes_atomic

    _one_thread()
    try:
        signal = load(path)
        result = compress(signal, target["model"], bpp=target["bpp"], psnr=target["psnr"],
                          max_error=target["max_error"], relative=target["relative"],
                          time_budget=target["time_budget"], seed=target["seed"], steps=target["steps"])
    except InputError as exc:
        return _bad(exc)
    write_bytes_atomic(output, result.data)
    report = dict(result.report)
    nbytes = signal.data.nbytes
    report.update(input=path, ratio=nbytes / len(result.data), bits_per_value=8.0 * len(result.data) / signal.data.size)
    if report.get("target_max_error"):
        report["error_over_bound"] = report["max_abs_error"] / report["target_max_error"]
    return {"status": "ok", "report": report}


# -- the client ---------------------------------------------------------------------------------------------------

def expand_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Files and zarr folders named, and those directly inside named folders (sorted)."""
    from .signals import supported_extensions
    from .signals.dataset import DATASET_SUFFIXES, is_dataset_path

    known = set(supported_extensions("load")) | set(DATASET_SUFFIXES)
    out: list[Path] = []
    for p in inputs:
        if p.is_dir() and not is_dataset_path(p):
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in known and not q.name.startswith("."))
            if not found:
                raise InputError(f"{p}: folder holds no file inrcodec reads")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise InputError("no input files")
    return out


def _output_names(paths: Sequence[Path]) -> dict[str, str]:
    """input -> output file name: <stem>.inrc, or <name>.inrc where two inputs share a stem."""
    stems: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return {str(p): (p.stem if stems[p.stem] == 1 else p.name) + ".inrc" for p in paths}


def _key(i: int, path: Path) -> str:
    return f"{i:04d}-" + re.sub(r"[^A-Za-z0-9._-]", "_", path.name)[:80]


class Manifest:
    """What has finished: per input its status/report, per dataset tile the run that encoded it."""

    def __init__(self, outdir: Path, options: dict[str, Any], resume: bool):
        from .signals._atomic import write_bytes_atomic

        self._write = write_bytes_atomic
        self.dir = outdir / STATE_DIR
        self.path = self.dir / MANIFEST
        if self.path.exists():
            if not resume:
                raise InputError(f"{outdir}: holds an unfinished or finished batch (manifest {self.path}); "
                                 f"use --resume, or another folder")
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(f"{self.path}: unreadable manifest ({exc})") from None
            if self.data.get("options") != options:
                raise InputError(f"{outdir}: --resume with other options than the batch there was started with")
            self.data["run"] = int(self.data.get("run", 0)) + 1
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.data = {"version": MANIFEST_VERSION, "options": options, "run": 1, "inputs": {}}
        self.save()

    @property
    def run(self) -> int:
        return self.data["run"]

    def entry(self, key: str, path: Path, output: Path) -> dict[str, Any]:
        return self.data["inputs"].setdefault(key, {"path": str(path), "output": str(output), "status": "pending",
                                                    "tiles": {}})

    def save(self) -> None:
        self._write(self.path, json.dumps(self.data, indent=1).encode())


def run_batch(inputs: Sequence[Path], outdir: Path, names: Sequence[str] | None, target, workers: int = 2,
              scheduler: str | None = None, resume: bool = False, quiet: bool = False,
              console=None) -> dict[str, Any]:
    """Run the batch; returns the JSON report (``inputs``: one row per input with status and report)."""
    from distributed import Client, LocalCluster, as_completed
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from .signals.dataset import is_dataset_path

    t0 = time.perf_counter()
    target.validate()
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    paths = expand_inputs(inputs)
    outdir.mkdir(parents=True, exist_ok=True)
    options = {"inputs": [str(p) for p in paths], "var": list(names or []), "target": asdict(target)}
    manifest = Manifest(outdir, options, resume)
    out_names = _output_names(paths)
    tdict = asdict(target)

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="20s")
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        client = Client(cluster)
    cluster_seconds = time.perf_counter() - t0
    plans: dict[str, dict[str, Any]] = {}
    info: dict[Any, tuple[str, str, Any]] = {}  # future -> (kind, key, extra)
    seq = as_completed()

    def submit(kind: str, key: str, fn, *args, extra=None):
        fut = client.submit(fn, *args, pure=False)
        info[fut] = (kind, key, extra)
        seq.add(fut)

    progress = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        disable=quiet)
    try:
        with progress:
            bar = progress.add_task("batch", total=0)

            def add_total(n: int) -> None:
                progress.update(bar, total=(progress.tasks[0].total or 0) + n)

            for i, path in enumerate(paths):
                key = _key(i, path)
                output = outdir / out_names[str(path)]
                entry = manifest.entry(key, path, output)
                if entry["status"] == "done" and output.exists():
                    continue  # finished in an earlier run
                entry["status"] = "pending"  # bad or failed before: tried again (the file may have been fixed)
                entry.pop("error", None)
                if is_dataset_path(path):
                    add_total(1)
                    submit("plan", key, task_plan, str(path), list(names) if names else None, tdict)
                else:
                    if names:
                        entry.update(status="bad", error=f"{path}: --var applies to datasets (.nc, .h5, .zarr)")
                        continue
                    add_total(1)
                    submit("signal", key, task_signal, str(path), tdict, str(output))
            manifest.save()

            for fut in seq:
                kind, key, extra = info.pop(fut)
                entry = manifest.data["inputs"][key]
                try:
                    res = fut.result()
                except Exception as exc:  # internal error in a task: the input is marked failed, others go on
                    res = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                progress.advance(bar)
                if entry["status"] in ("bad", "failed"):
                    continue  # another task of this input already failed
                if res["status"] != "ok":
                    entry.update(status=res["status"], error=res["error"])
                    manifest.save()
                    continue
                if kind == "signal":
                    entry.update(status="done", report=res["report"], run=manifest.run)
                elif kind == "plan":
                    plan = plans[key] = res["plan"]
                    part_dir = manifest.dir / key
                    part_dir.mkdir(exist_ok=True)
                    todo = []
                    for t in range(len(plan["tiles"])):
                        part = part_dir / f"tile-{t}.part"
                        if str(t) in entry["tiles"] and part.exists():
                            continue  # encoded by an earlier run
                        todo.append(t)
                    add_total(len(todo) + 1)
                    progress.advance(bar, len(plan["tiles"]) - len(todo))
                    for t in todo:
                        submit("tile", key, task_tile, entry["path"], plan, t, str(part_dir / f"tile-{t}.part"))
                    if not todo:
                        _submit_assemble(submit, key, entry, plan, part_dir)
                elif kind == "tile":
                    entry["tiles"][str(res["index"])] = {"seconds": res["seconds"], "bytes": res["bytes"],
                                                         "run": manifest.run}
                    plan = plans[key]
                    if len(entry["tiles"]) == len(plan["tiles"]):
                        _submit_assemble(submit, key, entry, plan, manifest.dir / key)
                elif kind == "assemble":
                    entry.update(status="done", report=res["report"], run=manifest.run)
                    for part in (manifest.dir / key).glob("tile-*.part"):
                        part.unlink()
                    with contextlib.suppress(OSError):
                        (manifest.dir / key).rmdir()
                manifest.save()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    rows = list(manifest.data["inputs"].values())
    return {"inputs": rows, "seconds": time.perf_counter() - t0, "cluster_start_seconds": cluster_seconds,
            "workers": None if scheduler else workers,
            "scheduler": scheduler, "run": manifest.run, "load_average": list(os.getloadavg())}


def _submit_assemble(submit, key: str, entry: dict[str, Any], plan: dict[str, Any], part_dir: Path) -> None:
    n = len(plan["tiles"])
    paths = [str(part_dir / f"tile-{t}.part") for t in range(n)]
    seconds = [entry["tiles"][str(t)]["seconds"] for t in range(n)]
    submit("assemble", key, task_assemble, entry["path"], plan, paths, entry["output"], seconds)


def summary_table(report: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"inrcodec batch: {len(report['inputs'])} inputs, {report['seconds']:.1f} s")
    for col in ("input", "variable", "status", "ratio", "bits/value", "max err / bound", "seconds"):
        table.add_column(col, justify="left" if col in ("input", "variable", "status") else "right")
    for row in report["inputs"]:
        name = Path(row["path"]).name
        if row["status"] != "done":
            table.add_row(name, "", f"[red]{row['status']}", "", "", "", "")
            continue
        rep = row["report"]
        variables = rep.get("variables") or [dict(rep, name="-", role="field", seconds=rep.get("seconds"))]
        for v in variables:
            if v.get("role") != "field":
                continue
            eob = v.get("error_over_bound")
            table.add_row(name, v["name"], "done", f"{v['ratio']:.2f}", f"{v['bits_per_value']:.3f}",
                          "-" if eob is None else f"{eob:.3f}",
                          "-" if v.get("seconds") is None else f"{v['seconds']:.1f}")
            name = ""
    return table


def register_cli(app) -> None:
    """Add ``inrcodec batch`` to the typer app."""
    import typer

    @app.command("batch")
    def batch_cmd(
        inputs: list[Path] = typer.Argument(..., help="files (.nc/.h5/.zarr, .npy, raw ...) or folders of them"),
        outdir: Path = typer.Option(..., "-o", "--output-dir", help="folder for <name>.inrc files and the manifest"),
        var: Optional[list[str]] = typer.Option(None, "--var", help="datasets: variable to compress (repeatable)"),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="representation (default: per signal kind)"),
        bpp: Optional[float] = typer.Option(None, "--bpp", help="target bits per value"),
        psnr: Optional[float] = typer.Option(None, "--psnr", help="target PSNR in dB"),
        max_error: Optional[float] = typer.Option(None, "--max-error", help="bound on every decoded value's error"),
        relative: bool = typer.Option(False, "--relative", help="--max-error relative to each variable's range"),
        time_budget: Optional[float] = typer.Option(None, "--time-budget", help="seconds per input"),
        steps: Optional[int] = typer.Option(None, "--steps", help="optimisation steps per fit"),
        seed: int = typer.Option(0, "--seed", help="random seed"),
        workers: int = typer.Option(2, "--workers", help="LocalCluster of N single-threaded workers"),
        scheduler: Optional[str] = typer.Option(None, "--scheduler", help="join a cluster: tcp://host:8786"),
        resume: bool = typer.Option(False, "--resume", help="continue a batch in OUTDIR, redo nothing finished"),
        json_report: Optional[Path] = typer.Option(None, "--json", help="also write the report as JSON"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    ) -> None:
        """Compress many files (files x variables x tiles) as Dask tasks; resumable."""
        from rich.console import Console

        from .dataset_codec import FieldTarget
        from .signals._atomic import check_output_path, write_bytes_atomic

        if json_report is not None:
            check_output_path(json_report)
        target = FieldTarget(model, max_error, relative, psnr, bpp, time_budget, steps, seed)
        console = Console(stderr=True)
        report = run_batch(inputs, outdir, var, target, workers, scheduler, resume,
                           quiet or not console.is_terminal and not os.environ.get("INRCODEC_PROGRESS"), console)
        if json_report is not None:
            write_bytes_atomic(json_report, json.dumps(report, indent=2).encode())
        Console().print(summary_table(report))
        for row in report["inputs"]:
            if row["status"] in ("bad", "failed"):
                typer.echo(f"inrcodec: {'error' if row['status'] == 'bad' else 'internal error'}: {row['error']}",
                           err=True)
        statuses = {row["status"] for row in report["inputs"]}
        # SystemExit, not typer.Exit: the CLI runs typer with standalone_mode=False, which returns Exit's code
        if "failed" in statuses or "pending" in statuses:
            raise SystemExit(1)
        if "bad" in statuses:
            raise SystemExit(2)
