"""Residual symbol coders on the same symbols: ``image_dct`` format 1 (``mcdct2``'s per-stream tables) against
format 2 (``coefcoder``'s context models), exact bytes and decode CPU time (issue 13, session 20).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_coefcoder.py \\
        --sets kodim03:0.1,0.2,0.35:1000 kodim07:0.1,0.2,0.35:1000 kodim01:0.1,0.25:200 kodim05:0.1,0.25:200 \\
               kodim11:0.1,0.25:200 --steps 4,7,12,20 --cache /tmp/gsresid_cache \\
        --video /tmp/vid/v_640x480_24_0.1.inrc -o benchmarks/results/coefcoder_corpus

Corpus: each image's Gaussian base (``gaussian`` at the given bpp and fit steps, seed 0, decoded; the fits are
``oracle_gaussian_dct.base_fit``'s, cached outside the repository), and the residual (image - base) quantised by
``image_dct.quantise_raw`` at each luma step: the symbols ``gaussian+dct`` would code. Both coders code the same
symbols, so the comparison is exact and free of load. ``--video``: the P-frame residuals of an ``mcvideo`` file
(``dct2`` form) coded by both, per frame and per GOP (frames stacked), bytes only.

Decode CPU: min of 5 runs (``time.process_time``), under the load average written beside it (shared machine).
Writes ``<out>.json`` and ``<out>.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from inrcodec.models import coefcoder, image_dct  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def _cpu_ms(fn, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return 1e3 * best


def image_rows(spec: str, steps: list[float], cache: Path) -> list[dict]:
    from oracle_gaussian_dct import base_fit

    stem, rates, fit_steps = spec.split(":")
    rgb = load(DATA / f"{stem}.png").data
    rows = []
    for rate in (float(r) for r in rates.split(",")):
        base = base_fit(rgb, stem, rate, int(fit_steps), cache)
        raw = image_dct.raw_coefficients(rgb, base["decoded"])
        for step in steps:
            q, _ = image_dct.quantise_raw(raw, step)
            old, new = image_dct.encode_symbols(q), coefcoder.encode(q)
            assert np.array_equal(coefcoder.decode(new, *q.shape[:3]), q)
            rows.append({"image": stem, "base_bpp": rate, "base_bytes": base["bytes"], "fit_steps": int(fit_steps),
                         "step": step, "nonzero": int(np.count_nonzero(q)), "format1_bytes": len(old),
                         "format2_bytes": len(new), "format2_estimate": round(coefcoder.estimate_bytes(q), 1),
                         "change_pct": round(100 * (len(new) / len(old) - 1), 2),
                         "decode_cpu_ms_format1": round(_cpu_ms(lambda: image_dct.decode_symbols(old, *q.shape[:3])), 1),
                         "decode_cpu_ms_format2": round(_cpu_ms(lambda: coefcoder.decode(new, *q.shape[:3])), 1),
                         "load": round(os.getloadavg()[0], 2)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def video_rows(path: Path) -> list[dict]:
    from inrcodec.container import read_container
    from inrcodec.models import mcdct2
    from inrcodec.models.mcdct import grid

    c = read_container(path.read_bytes())
    inner = [read_container(c.sections[k]) for k in sorted(c.sections) if k.startswith("part:")] or [c]
    rows = []
    for i, ci in enumerate(inner):
        n, h, w, _ = ci.signal["shape"]
        by, bx = grid(h, w)
        dense = []
        for sp in mcdct2.decode_symbols(ci.sections["residual"], n - 1, h, w):
            flat = np.zeros((by * bx, 3, 64), np.int32)
            flat[sp.index] = sp.coef
            dense.append(flat.reshape(by, bx, 3, 64).transpose(2, 0, 1, 3))
        old = len(mcdct2.encode_symbols(dense))
        per_frame = sum(len(coefcoder.encode(d)) for d in dense)
        per_gop = len(coefcoder.encode(np.concatenate(dense, axis=1)))
        rows.append({"gop": i, "frames": n - 1, "size": [h, w], "nonzero": int(sum(np.count_nonzero(d) for d in dense)),
                     "mcdct2_bytes": old, "coefcoder_per_frame_bytes": per_frame,
                     "coefcoder_per_gop_bytes": per_gop,
                     "change_pct_per_gop": round(100 * (per_gop / old - 1), 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for stem in sorted({r["image"] for r in rows}):
        rr = [r for r in rows if r["image"] == stem]
        ax[0].scatter([r["format1_bytes"] / 1e3 for r in rr], [r["change_pct"] for r in rr], label=stem, s=14)
        ax[1].scatter([r["decode_cpu_ms_format1"] for r in rr], [r["decode_cpu_ms_format2"] for r in rr], s=14,
                      label=stem)
    ax[0].axhline(0, color="k", lw=0.5)
    ax[0].set_xscale("log")
    ax[0].set_xlabel("format 1 residual kB")
    ax[0].set_ylabel("format 2 bytes vs format 1 (%)")
    ax[0].legend(fontsize=7)
    lim = max(max(r["decode_cpu_ms_format2"] for r in rows), max(r["decode_cpu_ms_format1"] for r in rows))
    ax[1].plot([0, lim], [0, lim], "k", lw=0.5)
    ax[1].plot([0, lim], [0, 2 * lim], "k:", lw=0.5)
    ax[1].set_xlabel("decode CPU ms, format 1")
    ax[1].set_ylabel("decode CPU ms, format 2 (dotted: 2x)")
    fig.suptitle("image_dct residual symbols: context-modelled coder (format 2) vs per-stream tables (format 1)")
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+", required=True, help="IMAGE:BASE_BPP[,BPP...]:FIT_STEPS")
    ap.add_argument("--steps", default="4,7,12,20")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args()
    steps = [float(s) for s in a.steps.split(",")]
    c0, w0 = time.process_time(), time.perf_counter()
    rows = [r for spec in a.sets for r in image_rows(spec, steps, a.cache)]
    vrows = video_rows(a.video) if a.video else []

    def total(sel):
        o, n = sum(r["format1_bytes"] for r in sel), sum(r["format2_bytes"] for r in sel)
        return {"format1_bytes": o, "format2_bytes": n, "change_pct": round(100 * (n / o - 1), 2), "sets": len(sel)}

    summary = {"all": total(rows)}
    for stem in sorted({r["image"] for r in rows}):
        summary[stem] = total([r for r in rows if r["image"] == stem])
    for step in steps:
        summary[f"step {step:g}"] = total([r for r in rows if r["step"] == step])
    summary["decode_cpu_ms_ratio_median"] = round(float(np.median(
        [r["decode_cpu_ms_format2"] / r["decode_cpu_ms_format1"] for r in rows])), 2)
    if vrows:
        o = sum(r["mcdct2_bytes"] for r in vrows)
        summary["video"] = {"mcdct2_bytes": o,
                            "per_frame_change_pct": round(100 * (sum(r["coefcoder_per_frame_bytes"] for r in vrows) / o - 1), 2),
                            "per_gop_change_pct": round(100 * (sum(r["coefcoder_per_gop_bytes"] for r in vrows) / o - 1), 2)}
    doc = {"command": "python " + " ".join(shlex.quote(x) for x in sys.argv), "summary": summary, "rows": rows,
           "video": vrows, "video_file": str(a.video) if a.video else None,
           "cpu_s": round(time.process_time() - c0, 1), "wall_s": round(time.perf_counter() - w0, 1),
           "load_end": os.getloadavg()[0],
           "note": "exact bytes of the same symbols (load-free); decode CPU = min of 5 runs under the shared load"}
    with atomic_output(a.out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1))
    plot(rows, a.out.with_suffix(".png"))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
