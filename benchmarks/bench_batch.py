"""Dask scaling of ``inrcodec batch``: throughput with 1 vs 2 workers on a batch of generated fields.

    .venv/bin/python benchmarks/bench_batch.py [--fields 8] [--size 96] [--steps 300] [--repeats 2]
        [--workers 1,2] [-o benchmarks/results/batch_scaling]
    .venv/bin/python benchmarks/bench_batch.py --replot benchmarks/results/batch_scaling.json

Each field is its own NetCDF file (one 2-D float32 variable: smooth large-scale structure plus small-scale
noise, a different seed per file), so the batch is ``fields`` independent tasks after the plan tasks. Every fit
runs a fixed number of steps (``--steps``, no time budget), so each run does the same work and the throughput
(fields per second of wall clock, cluster start included and also reported without it) is comparable between
worker counts. Every run goes through ``inrcodec.batch.run_batch``, the code path of the CLI. The machine's load
average is recorded before and after each run: on a shared machine the second worker competes with other jobs
for the second core, which the speed-up then shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_fields(folder: Path, n: int, size: int) -> list[Path]:
    import xarray as xr

    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        y, x = np.mgrid[0:size, 0:size] / size
        smooth = sum(rng.uniform(0.3, 1) * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform(0.5, 3) * y)
                                                  + rng.uniform(0, 6)) for _ in range(4))
        field = (smooth + 0.05 * rng.normal(size=(size, size))).astype(np.float32)
        path = folder / f"field{i:02d}.nc"
        xr.Dataset({"f": (("y", "x"), field)}).to_netcdf(path)
        paths.append(path)
    return paths


def one_run(paths: list[Path], workers: int, args) -> dict:
    from inrcodec.batch import run_batch
    from inrcodec.dataset_codec import FieldTarget

    out = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        target = FieldTarget(model=args.model, max_error=args.max_error, relative=True, steps=args.steps)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        report = run_batch(paths, out, None, target, workers=workers, quiet=True)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rows = report["inputs"]
    assert all(r["status"] == "done" for r in rows), [r.get("error") for r in rows]
    task_seconds = sum(v["seconds"] for r in rows for v in r["report"]["variables"] if v["role"] == "field")
    eob = max(v["error_over_bound"] for r in rows for v in r["report"]["variables"] if v["role"] == "field")
    ratios = [v["ratio"] for r in rows for v in r["report"]["variables"] if v["role"] == "field"]
    busy = wall - report["cluster_start_seconds"]
    return {"workers": workers, "wall_seconds": wall, "fields_per_second": len(paths) / wall,
            "cluster_start_seconds": report["cluster_start_seconds"],
            "fields_per_second_after_start": len(paths) / busy,
            "sum_task_seconds": task_seconds, "max_error_over_bound": eob,
            "geomean_ratio": float(np.exp(np.mean(np.log(ratios)))),
            "load_average_before": list(load_before), "load_average_after": list(load_after)}


def plot(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for w, runs in result["runs"].items():
        ax.scatter([int(w)] * len(runs), [r["fields_per_second"] for r in runs], color="grey", s=14, zorder=3)
    ws = sorted(int(w) for w in result["median_fields_per_second"])
    med = [result["median_fields_per_second"][str(w)] for w in ws]
    ax.plot(ws, med, "o-", label="median throughput")
    ax.plot(ws, [med[0] * w for w in ws], "--", color="k", lw=0.8, label="linear scaling")
    ax.set_xlabel("Dask workers (1 thread each)")
    ax.set_ylabel("fields per second")
    ax.set_xticks(ws)
    ax.set_title(f"inrcodec batch: {result['fields']} fields {result['size']}², speed-up "
                 f"{result['speedup']:.2f}x", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fields", type=int, default=8)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--model", default="siren")
    ap.add_argument("--max-error", type=float, default=1e-2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks" / "results" / "batch_scaling"))
    ap.add_argument("--replot", type=Path)
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.replot.with_suffix(".png"))
        return
    workers = [int(w) for w in args.workers.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-fields-"))
    try:
        paths = make_fields(folder, args.fields, args.size)
        runs: dict[str, list] = {str(w): [] for w in workers}
        for rep in range(args.repeats):  # interleaved, so that a change in the machine's load hits both alike
            for w in workers:
                r = one_run(paths, w, args)
                runs[str(w)].append(r)
                print(f"repeat {rep} workers {w}: {r['wall_seconds']:.1f} s, {r['fields_per_second']:.3f} fields/s, "
                      f"load {r['load_average_before'][0]:.1f}->{r['load_average_after'][0]:.1f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {w: statistics.median(r["fields_per_second"] for r in rs) for w, rs in runs.items()}
    med_busy = {w: statistics.median(r["fields_per_second_after_start"] for r in rs) for w, rs in runs.items()}
    import dask
    import distributed
    import torch

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "fields": args.fields, "size": args.size, "steps": args.steps, "model": args.model,
        "max_error_relative": args.max_error, "repeats": args.repeats,
        "runs": runs, "median_fields_per_second": med,
        "speedup": med[str(workers[-1])] / med[str(workers[0])],
        "median_fields_per_second_after_cluster_start": med_busy,
        "speedup_after_cluster_start": med_busy[str(workers[-1])] / med_busy[str(workers[0])],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "dask": dask.__version__, "distributed": distributed.__version__},
        "note": "wall clock on a 2-core machine shared with other engineers' jobs (see load averages); "
                "throughput includes LocalCluster start and the plan/assemble tasks",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot(result, out.with_suffix(".png"))
    print(json.dumps({"median_fields_per_second": med, "speedup": result["speedup"]}))


if __name__ == "__main__":
    main()
