"""Format 2 (``coefcoder``) against format 7 (``coefcoder7``) on the same residual symbols: exact bytes, the size
estimate's error, decode CPU ms (issue 13, session 25).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_coefcoder7.py --images kodim01,kodim03,kodim05,kodim07 \\
        --base-rates 0.1,0.2,0.35 --steps 6,10,16,24 -o benchmarks/results/coefcoder7_s25

Symbols: the lab's (``gaussian_dct_lab.py``): each image's cached Gaussian base (1000 steps, /tmp/gsresid_cache),
the residual's 8x8 coefficients quantised as the encoder does (``quantise_raw`` with the context-priced RDOQ and the
block drop) at each luma step. Both coders code the same symbols, so bytes are exact and load-free. Decode CPU:
min of 3 runs (``time.process_time``) of the compiled walks (``cc_decode_format2`` / ``cc_decode_format7``) and of
format 7's Python walk (its reference and fallback), with the load beside it. Writes ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gaussian_dct_lab import DATA, cached_base, cpu_ms  # noqa: E402
from inrcodec.models import coefcoder, coefcoder7, image_dct  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402


def _cpu_ms(fn, runs: int = 3) -> float:
    return round(cpu_ms(fn, runs, best=True), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim01,kodim03,kodim05,kodim07")
    ap.add_argument("--base-rates", default="0.1,0.2,0.35")
    ap.add_argument("--steps", default="6,10,16,24")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args()
    c0, load0 = time.process_time(), os.getloadavg()
    rows = []
    for stem in a.images.split(","):
        rgb = load(DATA / f"{stem}.png").data
        for rate in (float(r) for r in a.base_rates.split(",")):
            _, base = cached_base(a.cache, stem, rate, 1000)
            raw = image_dct.raw_coefficients(rgb, base)
            for step in (float(s) for s in a.steps.split(",")):
                q, _ = image_dct.quantise_raw(raw, step, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx",
                                              lam=image_dct.RDO_LAMBDA)
                shape = q.shape[:3]
                b2, b7 = coefcoder.encode(q), coefcoder7.encode(q)
                assert np.array_equal(coefcoder7.decode(b7, *shape), q)
                rows.append({
                    "image": stem, "base_bpp": rate, "step": step, "nonzero": int(np.count_nonzero(q)),
                    "format2_bytes": len(b2), "format7_bytes": len(b7),
                    "change_pct": round(100 * (len(b7) / len(b2) - 1), 3),
                    "format7_estimate_error_bytes": round(coefcoder7.estimate_bytes(q) - len(b7), 1),
                    "decode_cpu_ms_format2": _cpu_ms(lambda: coefcoder.decode(b2, *shape)),
                    "decode_cpu_ms_format7": _cpu_ms(lambda: coefcoder7.decode(b7, *shape)),
                    "decode_cpu_ms_format7_python": _cpu_ms(
                        lambda: coefcoder.decode(b7, *shape, walk=coefcoder7._walk), runs=1),
                    "load": round(os.getloadavg()[0], 2)})
                print(json.dumps(rows[-1]), flush=True)

    def total(sel):
        o, n = sum(r["format2_bytes"] for r in sel), sum(r["format7_bytes"] for r in sel)
        return {"format2_bytes": o, "format7_bytes": n, "change_pct": round(100 * (n / o - 1), 3), "sets": len(sel)}

    summary = {"all": total(rows)}
    for key, vals in (("image", a.images.split(",")), ("base_bpp", sorted({r["base_bpp"] for r in rows})),
                      ("step", sorted({r["step"] for r in rows}))):
        for v in vals:
            summary[f"{key} {v}"] = total([r for r in rows if r[key] == v])
    for k in ("decode_cpu_ms_format2", "decode_cpu_ms_format7", "decode_cpu_ms_format7_python"):
        summary[k + "_median"] = float(np.median([r[k] for r in rows]))
        summary[k + "_max"] = float(np.max([r[k] for r in rows]))
    summary["estimate_error_bytes_max_abs"] = float(np.max([abs(r["format7_estimate_error_bytes"]) for r in rows]))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {"command": "python " + " ".join(shlex.quote(x) for x in sys.argv), "git_commit": commit,
           "summary": summary, "rows": rows, "cpu_s": round(time.process_time() - c0, 1), "load_start": load0,
           "load_end": os.getloadavg(),
           "note": "exact bytes of the same symbols (load-free); decode CPU = min of 3 runs (Python walk: 1)"}
    with atomic_output(a.out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
