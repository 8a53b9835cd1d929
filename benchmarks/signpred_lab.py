"""Sign prediction of ``gaussian+dct``'s residual by boundary matching: hit rates and ideal bits, no format.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/signpred_lab.py -o benchmarks/results/signpred_lab

On the lab's symbols (``gaussian_dct_lab``'s ``rdoqctx`` quantisation of the residual over the cached Gaussian bases
in /tmp/gsresid_cache, kodim01/03/05/07 x 0.1/0.2/0.35 bpp x luma steps 6/10/16/24), per block and channel the K
non-zero coefficients of the largest border weight take all 2^K sign hypotheses; the hypothesis whose border lines
continue the neighbouring blocks' decoded lines best (sum of squared differences of a finite-difference operator
across the edge, over the sides the decoding order makes available) predicts their signs. Measured: hit rate by
rank, by order (which sides are known), by domain (residual alone / base + residual), by cost operator, and the
ideal adaptive code length of the "prediction wrong" bits (contexts: rank x margin class x channel group) against
the raw bits, as % of the residual's coded bytes (``coefcoder.encode``) and of the file (base + residual).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import DATA, cached_base, lab_parser, lab_record  # noqa: E402
from inrcodec.models import coefcoder, image_dct, signpred  # noqa: E402
from inrcodec.signals import load  # noqa: E402


def ideal_adaptive_bits(bits: np.ndarray, ctx: np.ndarray, nctx: int) -> float:
    """Code length of ``bits`` with one adaptive binary count per context (KT-like, +0.5 priors), in order."""
    total = 0.0
    for k in range(nctx):
        b = bits[ctx == k].astype(np.int64)
        if not len(b):
            continue
        ones = np.concatenate([[0], np.cumsum(b)[:-1]])
        n = np.arange(len(b))
        p1 = (ones + 0.5) / (n + 1.0)
        p = np.where(b > 0, p1, 1.0 - p1)
        total -= float(np.log2(p).sum())
    return total


ORDERS = ("raster", "cb2", "phase3", "phase4", "all4", "zero")


def side_masks(by: int, bx: int, order: str) -> np.ndarray:
    """(by, bx, 4) bool: which sides (top, bottom, left, right) a block's prediction may use in ``order``; a block
    with none is coded raw."""
    yy, xx = np.meshgrid(np.arange(by), np.arange(bx), indexing="ij")
    m = np.zeros((by, bx, 4), bool)
    if order == "raster":
        m[..., 0], m[..., 2] = True, True
    elif order in ("all4", "zero"):  # zero: every side, the neighbours' residual taken as zero (nothing decoded)
        m[:] = True
    elif order == "cb2":
        m[(yy + xx) % 2 == 1] = True
    elif order == "phase3":
        p1 = (yy % 2 == 0) & (xx % 2 == 1)
        m[p1, 2], m[p1, 3] = True, True
        p2 = yy % 2 == 1
        m[p2, 0], m[p2, 1] = True, True
    elif order == "phase4":  # (even, even) raw; (even, odd) left + right; (odd, even) top + bottom; (odd, odd) all
        p1 = (yy % 2 == 0) & (xx % 2 == 1)
        m[p1, 2], m[p1, 3] = True, True
        p2 = (yy % 2 == 1) & (xx % 2 == 0)
        m[p2, 0], m[p2, 1] = True, True
        m[(yy % 2 == 1) & (xx % 2 == 1)] = True
    m[0, :, 0] = False
    m[-1, :, 1] = False
    m[:, 0, 2] = False
    m[:, -1, 3] = False
    return m


def main(argv=None) -> int:
    ap = lab_parser(__doc__, "6,10,16,24")
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--ops", default="d2,d3,d1")
    ap.add_argument("--domains", default="res,base")
    ap.add_argument("--orders", default=",".join(ORDERS))
    ap.add_argument("--select", default="weight")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.process_time()
    res = dict(lab_record("signpred_lab.py", argv), k=args.k, sets=[])
    agg: dict = {}
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        for rate in [float(r) for r in args.base_rates.split(",")]:
            base_bytes, base = cached_base(args.cache, stem, rate, 1000)
            raw = image_dct.raw_coefficients(image, base)
            for step in [float(s) for s in args.res_steps.split(",")]:
                q, units = image_dct.quantise_raw(raw, step, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
                res_bytes = len(coefcoder.encode(q))
                nsign = int(np.count_nonzero(q))
                entry = {"image": stem, "base_rate": rate, "step": step, "residual_bytes": res_bytes,
                         "base_bytes": base_bytes, "signs": nsign, "variants": {}}
                by, bx = q.shape[1:3]
                for dom in args.domains.split(","):
                    b = base if dom == "base" else None
                    for op in args.ops.split(","):
                        for order in args.orders.split(","):
                            for sel in args.select.split(","):
                                mask = side_masks(by, bx, order)
                                c0 = time.process_time()
                                st = signpred.lab_stats(q, units, mask, args.k, op, b, select=sel,
                                                       zero_target=order == "zero")
                                cpu = time.process_time() - c0
                                ideal = ideal_adaptive_bits(st["wrong"], st["ctx"], st["nctx"])
                                n = len(st["wrong"])
                                saved = n - ideal
                                key = f"{dom}/{op}/{order}/{sel}"
                                v = {"predicted": n, "hit": float(1 - st["wrong"].mean()) if n else 0.0,
                                     "hit_by_rank": [float(1 - st["wrong"][st["rank"] == r].mean())
                                                     if np.any(st["rank"] == r) else None for r in range(args.k)],
                                     "n_by_rank": [int(np.sum(st["rank"] == r)) for r in range(args.k)],
                                     "ideal_bits": ideal, "saved_bytes": saved / 8,
                                     "saved_pct_residual": 100 * saved / 8 / res_bytes,
                                     "saved_pct_file": 100 * saved / 8 / (res_bytes + base_bytes),
                                     "cpu_s": round(cpu, 3)}
                                entry["variants"][key] = v
                                a = agg.setdefault(key, {"saved": 0.0, "res": 0, "file": 0, "n": 0, "wrong": 0,
                                                         "pct_res": [], "pct_file": []})
                                a["saved"] += saved / 8
                                a["res"] += res_bytes
                                a["file"] += res_bytes + base_bytes
                                a["n"] += n
                                a["wrong"] += int(st["wrong"].sum())
                                a["pct_res"].append(v["saved_pct_residual"])
                                a["pct_file"].append(v["saved_pct_file"])
                                print(f"{stem} {rate} {step} {key}: hit {v['hit']:.3f} by rank "
                                      f"{[round(x, 2) if x is not None else None for x in v['hit_by_rank']]} "
                                      f"saved {v['saved_pct_residual']:.2f} % res ({n} of {nsign} signs) "
                                      f"{cpu:.2f} s", flush=True)
                res["sets"].append(entry)
    res["summary"] = {k: {"hit": 1 - a["wrong"] / max(a["n"], 1),
                          "saved_pct_residual_total": 100 * a["saved"] / a["res"],
                          "saved_pct_residual_mean": float(np.mean(a["pct_res"])),
                          "saved_pct_file_mean": float(np.mean(a["pct_file"]))} for k, a in agg.items()}
    for k, s in res["summary"].items():
        print(k, json.dumps({x: round(y, 4) for x, y in s.items()}))
    res["cpu_s_total"] = time.process_time() - t0
    res["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
