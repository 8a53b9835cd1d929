"""Candidate magnitude models of the residual symbols, by ideal adaptive code lengths (issue 13, session 25).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/coefcoder_model_lab.py \\
        --images kodim01,kodim03,kodim05,kodim07 -o benchmarks/results/coefcoder_model_lab_s25

Symbols: the lab's (``bench_coefcoder7.py``: cached Gaussian bases at 0.1 / 0.2 / 0.35 bpp, RDOQ'd residuals at
luma steps 6 / 10 / 16 / 24; 48 sets). Each candidate codes format 2's magnitude passes (same order, same open
blocks: ``coefcoder._walk``) with its own model built causally as the decoder would (counts decayed per pass,
refreshed per chunk) and is scored by -log2 p of every magnitude; the result is the change in bits as a % of the
whole residual's bits under format 2 (magnitudes + flags + one bit per sign), per image and over all. No coding, no
load dependence. ``format7`` is the model ``coefcoder7`` builds (magnitudes only; its last-flag context adds
-0.16 % more, measured apart). Writes ``<out>.json``.
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

from gaussian_dct_lab import DATA, cached_base  # noqa: E402
from inrcodec.models import coefcoder as cc  # noqa: E402
from inrcodec.models import coefcoder7 as c7  # noqa: E402
from inrcodec.models import image_dct  # noqa: E402
from inrcodec.signals import load  # noqa: E402

K, C, CT = cc.K, cc.CLASSES, cc._class_table()


def passes_of(q: np.ndarray) -> list[dict]:
    """Format 2's magnitude passes in coding order, with what each candidate's context may use."""
    c, by, bx, _ = q.shape
    nblk = by * bx
    a = np.minimum(np.abs(q.reshape(c * nblk, 64).astype(np.int64)), cc.ESC)  # block-major
    nz = a != 0
    last = np.where(nz.any(1), 63 - np.argmax(nz[:, ::-1], axis=1), -1)
    starts = cc._diagonal_starts()
    last_diag = np.searchsorted(starts, last, side="right") - 1
    up, left = cc._template()
    pad = np.concatenate([a, np.zeros((c * nblk, 1), np.int64)], 1)
    own = pad[:, up] + pad[:, left]
    grid = lambda v: np.moveaxis(v.reshape(c, by, bx, -1), -1, 0)  # noqa: E731
    back = lambda v: np.moveaxis(v, 0, -1).reshape(c * nblk, -1)  # noqa: E731
    nb, same = back(cc._neighbour_sum(grid(own))), back(cc._neighbour_sum(grid(a)))
    cum = np.concatenate([np.zeros((c * nblk, 1), np.int64), np.cumsum(nz, 1)], 1)
    dg = np.stack([a[:, starts[d]:starts[d + 1]].sum(1) for d in range(15)], 1).reshape(c, by, bx, 15)
    p = np.pad(dg, ((0, 0), (1, 1), (1, 1), (0, 0)))
    act = sum(p[:, 1 + y:1 + y + by, 1 + x:1 + x + bx] for y in (-1, 0, 1) for x in (-1, 0, 1)).reshape(c * nblk, 15)
    act = np.concatenate([np.zeros((c * nblk, 1), np.int64), act[:, :-1]], 1)  # the 3x3 blocks' previous diagonal
    half = ((np.arange(by)[:, None] + np.arange(bx)[None, :]) % 2).ravel()
    out = []
    for ch0, ch1 in ((0, 1), (1, c)):
        if ch0 >= ch1:
            continue
        blocks = np.arange(ch0 * nblk, ch1 * nblk)
        for d in range(15):
            idx = blocks[last_diag[blocks] >= d]
            if not len(idx):
                break
            pos = np.tile(np.arange(starts[d], starts[d + 1]), len(idx))
            blk = np.repeat(idx, starts[d + 1] - starts[d])
            out.append({"g": int(ch0 > 0), "pos": pos, "own": own[blk, pos], "nb": nb[blk, pos],
                        "luma": a[blk % nblk, pos] if ch0 else 0 * pos, "same": same[blk, pos],
                        "cnt": cum[blk, starts[d]], "act": act[blk, d], "half": half[blk % nblk],
                        "truth": a[blk, pos]})
    return out


def cls_of(P, extra=0):
    return CT[np.minimum(4 * P["own"] + P["nb"] + 2 * P["luma"] + extra, len(CT) - 1)].astype(np.int64)


def where(P):
    return c7._where()[P["pos"]]


def geo(h):  # format 2's pmf of a class from its histogram
    return cc._geometric_rows(np.stack([h[:, 0], h[:, 1:].sum(1), h[:, 1:] @ np.arange(K - 1.0)], 1))


def p3(h):  # format 7's class pmf (coefcoder7.class_rows) from a histogram
    return c7.class_rows(np.stack([h[:, 0], h[:, 1], h[:, 2:].sum(1), h[:, 2:] @ np.arange(K - 2.0)], 1))


def run(passes, ctx, n, pmf=geo, chunks=(4, 512), decay=0.25, fine=None, nf=1, tau=16.0, split=None,
        dual=None, chunk_decay=1.0) -> float:
    """Bits of every magnitude: ctx(P) (or ctx(P, half) with ``split``) -> class in [0, n); ``fine`` a second
    index (nf values) with per-(class, fine) histograms over the class pmf x tau; ``dual`` a second decay whose
    model is averaged in; ``chunk_decay`` counts kept per refresh."""
    bits = 0.0
    for g in (0, 1):
        hs = [np.zeros((n, K)) for _ in range(2 if dual else 1)]
        hf = np.zeros((n * nf, K))
        for P in (P for P in passes if P["g"] == g):
            hs = [h * dc for h, dc in zip(hs, (decay, dual))]
            hf *= decay
            parts = [(P["half"] == 0, 0), (P["half"] == 1, 1)] if split else [(slice(None), 0)]
            for sel, half in parts:
                k = (ctx(P, half) if split else ctx(P))[sel]
                fk = k * nf + fine(P)[sel] if fine else k
                m = P["truth"][sel]
                parts_n = max(1, min(chunks[0], len(k) // chunks[1]))
                bounds = [len(k) * j // parts_n for j in range(parts_n + 1)]
                for a, b in zip(bounds[:-1], bounds[1:]):
                    rows = [pmf(h) for h in hs]
                    rows = [r / r.sum(1, keepdims=True) for r in rows]
                    pc = sum(rows) / len(rows)
                    p = pc if not fine else (hf + tau * np.repeat(pc, nf, 0)) / (hf.sum(1, keepdims=True) + tau)
                    bits -= np.log2(np.maximum(p[fk[a:b], m[a:b]], 2.0**-24)).sum()
                    inc = np.bincount(k[a:b] * K + m[a:b], minlength=n * K).reshape(n, K)
                    hs = [h * chunk_decay + inc for h in hs]
                    if fine:
                        hf += np.bincount(fk[a:b] * K + m[a:b], minlength=n * nf * K).reshape(n * nf, K)
    return bits


def bucket(v, t1, t2):
    return np.where(v < t1, 0, np.where(v < t2, 1, 2))


CANDIDATES = {
    "format2": dict(ctx=cls_of, n=C),
    "a: full histogram per class, format 2's pmf as prior (tau 4)": dict(ctx=cls_of, n=C, fine=lambda P: 0 * P["pos"],
                                                                         nf=1, tau=4.0),
    "a': three parameters per class (P(1 | non-zero) apart)": dict(ctx=cls_of, n=C, pmf=p3),
    "b: class x place on the diagonal (u = 0, v = 0, other)": dict(ctx=lambda P: cls_of(P) * 3 + where(P), n=3 * C),
    "b': histograms per (class, place) over the class's three-parameter pmf": dict(ctx=cls_of, n=C, pmf=p3,
                                                                                   fine=where, nf=3),
    "b: class x own template zero": dict(ctx=lambda P: cls_of(P) * 2 + (P["own"] == 0), n=2 * C),
    "b: class x non-zeros so far in the block (0 / 1+)": dict(ctx=lambda P: cls_of(P) * 2 + (P["cnt"] > 0), n=2 * C),
    "b: class x 3x3 blocks' activity on the previous diagonal (3)": dict(
        ctx=lambda P: cls_of(P) * 3 + bucket(P["act"], 1, 4), n=3 * C),
    "d: two speeds averaged (decay 0.1 and 0.7)": dict(ctx=cls_of, n=C, decay=0.1, dual=0.7),
    "refreshes: 16 per pass": dict(ctx=cls_of, n=C, chunks=(16, 256)),
    "refreshes: 64 per pass": dict(ctx=cls_of, n=C, chunks=(64, 64)),
    "refreshes: 64 per pass, counts kept at 0.1 per pass": dict(ctx=cls_of, n=C, chunks=(64, 64), decay=0.1),
    "e: checkerboard halves, no new context": dict(ctx=lambda P, h: cls_of(P), n=C, split=True),
    "e: checkerboard halves, second half + 4 x neighbours' same position": dict(
        ctx=lambda P, h: cls_of(P, 4 * P["same"] * h) + C * h, n=2 * C, split=True),
    "format7 (magnitudes)": dict(ctx=lambda P, h: cls_of(P, 4 * P["same"] * h) + C * h, n=2 * C, split=True, pmf=p3,
                                 fine=where, nf=3, chunks=(16, 256)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim01,kodim03,kodim05,kodim07")
    ap.add_argument("--base-rates", default="0.1,0.2,0.35")
    ap.add_argument("--steps", default="6,10,16,24")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args()
    c0, load0 = time.process_time(), os.getloadavg()
    bits = {}  # image -> candidate -> bits; "_total": format 2's residual bits
    for stem in a.images.split(","):
        rgb = load(DATA / f"{stem}.png").data
        acc = bits.setdefault(stem, {})
        for rate in (float(r) for r in a.base_rates.split(",")):
            _, base = cached_base(a.cache, stem, rate, 1000)
            raw = image_dct.raw_coefficients(rgb, base)
            for step in (float(s) for s in a.steps.split(",")):
                q, _ = image_dct.quantise_raw(raw, step, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx",
                                              lam=image_dct.RDO_LAMBDA)
                acc["_total"] = acc.get("_total", 0.0) + 8 * cc.estimate_bytes(q)
                P = passes_of(q)
                for name, kw in CANDIDATES.items():
                    acc[name] = acc.get(name, 0.0) + run(P, **kw)
        print(stem, {k: round(100 * (v - acc["format2"]) / acc["_total"], 2) for k, v in acc.items()
                     if not k.startswith("_")}, flush=True)
    total = sum(b["_total"] for b in bits.values())
    result = {name: {"all_pct": round(100 * sum(b[name] - b["format2"] for b in bits.values()) / total, 3),
                     **{stem: round(100 * (b[name] - b["format2"]) / b["_total"], 3) for stem, b in bits.items()}}
              for name in CANDIDATES}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {"command": "python " + " ".join(shlex.quote(x) for x in sys.argv), "git_commit": commit,
           "change_of_residual_bits_pct": result, "cpu_s": round(time.process_time() - c0, 1), "load_start": load0,
           "load_end": os.getloadavg(), "note": "ideal adaptive code lengths of the magnitudes; % of format 2's "
           "whole residual (estimate_bytes x 8); negative = fewer bits"}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
