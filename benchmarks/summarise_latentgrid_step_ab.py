"""Merge alternated before/after runs of ``bench_latentgrid_step.py`` into one A/B JSON: per variant, bpp and
thread count the per-round CPU ms per thread, wall ms, GFLOP/s and load, and their medians.

    python benchmarks/summarise_latentgrid_step_ab.py before=/tmp/ab/before_*.json after=/tmp/ab/after_*.json \
        -o benchmarks/results/latentgrid_step_s22_ab.json [--note "..."]

On a loaded machine compare CPU ms per thread of runs taken back to back (the rounds alternate the variants);
wall times there measure the queue.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="NAME=GLOB of bench_latentgrid_step.py JSON files")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    out = {"command": "python " + " ".join(sys.argv), "note": args.note, "variants": {}}
    for spec in args.inputs:
        name, pattern = spec.split("=", 1)
        rounds = []
        for path in sorted(glob.glob(pattern)):
            r = json.loads(Path(path).read_text())
            rounds.append({"file": Path(path).name, "command": r["command"], "load_before": r["load_before"],
                           "load_after": r.get("load_after"), "matmul_peak_gflops": r["matmul_peak_gflops"],
                           "runs": [{"bpp": x["bpp"], "threads": x["threads"],
                                     "ms_cpu_per_thread": x["ms_per_step_cpu_per_thread"],
                                     "ms_wall": x["ms_per_step_wall"],
                                     "gflops_cpu": {ph: x["phases"][ph]["gflops_cpu"] for ph in x["phases"]},
                                     "utilisation": {ph: x["phases"][ph]["utilisation_of_matmul_peak_cpu"]
                                                     for ph in x["phases"]}} for x in r["runs"]]})
        med = {}
        for rd in rounds:
            for x in rd["runs"]:
                med.setdefault(f"{x['bpp']} bpp, {x['threads']} thr", []).append(x["ms_cpu_per_thread"])
        out["variants"][name] = {"rounds": rounds,
                                 "median_ms_cpu_per_thread": {k: round(statistics.median(v), 1) for k, v in med.items()},
                                 "ms_cpu_per_thread_by_round": med}
    Path(args.out).write_text(json.dumps(out, indent=1))
    for name, v in out["variants"].items():
        print(name, v["median_ms_cpu_per_thread"])


if __name__ == "__main__":
    main()
