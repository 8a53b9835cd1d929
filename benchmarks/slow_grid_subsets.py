"""What each fit of slow's share grid buys (issue 13, session 25), from ``bench_kodak.py`` runs of the grid: no new
fits. Every grid encode reports all its fits (``search``: share, bytes, PSNR, thread CPU-s), each coded to the same
byte target, so the file a smaller grid would have written is the best of its shares' entries. Per subset of the
grid's shares: BD-rate vs AVIF per image (AVIF's curve from the same run) and the CPU-s its fits took; per encode
the idle wall-clock estimate of the grid on two cores (the fits run two at a time: per wave the longer fit's CPU).

    python benchmarks/slow_grid_subsets.py benchmarks/results/gaussian_dct_s25grid_slow6400_kodim0{7,8,1}.json \
        -o benchmarks/results/gaussian_dct_s25grid_subsets
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from inrcodec import metrics

CURVE = "inrcodec-gaussian+dct"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="bench_kodak.py JSONs of grid encodes (one image each)")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args(argv)
    images, sources = {}, []
    for path in args.runs:
        d = json.loads(Path(path).read_text())
        sources.append({"path": path, "git_commit": d.get("git_commit"), "load_avg_start_end": d.get("load_avg_start_end"),
                        "cpu_seconds": d.get("cpu_seconds")})
        for stem, p in d["per_image"].items():
            images[stem] = p
    shares = sorted({e["config"]["base_share"] for p in images.values() for pt in p["curves"][CURVE]
                     for e in pt["search"]})
    subsets = [c for n in range(1, len(shares) + 1) for c in itertools.combinations(shares, n)]
    table, encodes = [], {}
    for subset in subsets:
        row = {"shares": list(subset), "bd_rate_vs_avif": {}, "cpu_s_per_encode": []}
        for stem, p in images.items():
            pixels = int(np.prod(p["input"]["shape"][:2]))
            pts = []
            for pt in p["curves"][CURVE]:
                fits = [e for e in pt["search"] if e["config"]["base_share"] in subset]
                best = max(fits, key=lambda e: e["psnr"])
                pts.append({"bpp": 8.0 * best["bytes"] / pixels, "psnr": best["psnr"]})
                row["cpu_s_per_encode"].append(sum(e["cpu_s"] for e in fits))
            row["bd_rate_vs_avif"][stem] = metrics.bd_rate(p["curves"]["avif"], pts)
        row["mean_bd_rate_vs_avif"] = float(np.mean(list(row["bd_rate_vs_avif"].values())))
        row["median_cpu_s_per_encode"] = float(np.median(row["cpu_s_per_encode"]))
        table.append(row)
    for stem, p in images.items():  # the full grid, per encode
        encodes[stem] = []
        for pt in p["curves"][CURVE]:
            cpu = [e["cpu_s"] for e in pt["search"]]
            waves = [max(cpu[i:i + 2]) for i in range(0, len(cpu), 2)]
            encodes[stem].append({
                "target_bpp": pt["target_bpp"], "psnr": pt["psnr"],
                "psnr_per_share": {str(e["config"]["base_share"]): e["psnr"] for e in pt["search"]},
                "best_share": max(pt["search"], key=lambda e: e["psnr"])["config"]["base_share"],
                "fit_thread_cpu_s": cpu, "process_cpu_s": pt["encode_cpu_s"], "wall_s_under_load": pt["encode_s"],
                "idle_wall_estimate_s": sum(waves) + max(0.0, pt["encode_cpu_s"] - sum(cpu)),
            })
    out = {"command": "python benchmarks/slow_grid_subsets.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "git_commit": _commit(), "sources": sources,
           "note": "no encodes run here: subsets of the grid's fits as recorded; idle wall = per wave of two fits the "
                   "longer fit's thread CPU, plus the process CPU outside the fits (container, bookkeeping)",
           "subsets": sorted(table, key=lambda r: r["mean_bd_rate_vs_avif"]), "encodes": encodes}
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=1))
    for r in out["subsets"]:
        print(f"{str(r['shares']):28s} mean vs AVIF {r['mean_bd_rate_vs_avif']:+6.2f} %  "
              + " ".join(f"{k} {v:+.1f}" for k, v in r["bd_rate_vs_avif"].items())
              + f"   median {r['median_cpu_s_per_encode']:.0f} CPU-s (fits)")
    print("wrote", Path(args.out).with_suffix(".json"))


if __name__ == "__main__":
    main()
