"""Do the exact hash-grid level rules (``inrcodec.quant.exact.f32_log2`` / ``f32_exp2``) give what format version 1
computed with numpy's float32 ``log2``/``exp2`` (libm), on every input the encoder produces? And the latent grid's
scale table (``latent_scale_table``) what ``2.0 ** x`` gave?

Inputs checked exhaustively: every ``per_level_scale`` the encoder writes (``round(., 4)`` in [1, 4]: 30 001
values, as float32), and every ``level * log2(per_level_scale)`` product for levels 0..31 (919 150 distinct float32
values); then the whole level layout (scale and resolution) for those scales and bases 1..64, 128..4096 (powers of
two) and 200 random bases. Off the encoder's grid (an explicit override), random float32 scales measure how often
the correctly rounded rule differs from this machine's numpy.

``--write-table`` (re)writes ``inrcodec/quant/_exact_tables.py``: the inputs where numpy's result is not the
correctly rounded one, with numpy's result (the format-version-1 value).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/exact_hashgrid_check.py --out benchmarks/results/exact_hashgrid.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.quant import exact  # noqa: E402

TABLE = ROOT / "inrcodec" / "quant" / "_exact_tables.py"


def grid_scales() -> np.ndarray:
    return np.array([round(k / 10**4, 4) for k in range(10000, 40001)]).astype(np.float32)


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def cr(fn, xs: np.ndarray) -> np.ndarray:
    """Correctly rounded (fixed-point integer arithmetic, no table) results, as float32 bits."""
    return np.array([fn(int(b)) for b in bits(xs)], dtype=np.uint32)


def old_layout(pls: np.ndarray, base: np.ndarray, levels: int):
    """Format version 1 as first written (numpy float32 log2/exp2): scale and resolution per (pls, base, level)."""
    lp = np.log2(pls.astype(np.float32))
    lev = np.arange(levels, dtype=np.float32)
    e = np.exp2(lev[None, :] * lp[:, None])  # (P, L) float32
    scale = (e[:, None, :] * base.astype(np.float32)[None, :, None] - np.float32(1.0)).astype(np.float32)
    return scale, np.ceil(scale.astype(np.float64)).astype(np.int64) + 1


def new_layout(pls: np.ndarray, base: np.ndarray, levels: int):
    lp = np.array([exact.f32_log2(x) for x in pls], np.float32)
    ys = (np.arange(levels, dtype=np.float32)[None, :] * lp[:, None]).astype(np.float32)
    e = np.array([exact.f32_exp2(y) for y in ys.ravel()], np.float32).reshape(ys.shape)
    scale = (e[:, None, :] * base.astype(np.float32)[None, :, None] - np.float32(1.0)).astype(np.float32)
    return scale, np.ceil(scale.astype(np.float64)).astype(np.int64) + 1


def write_table(log_in, log_out, exp_in, exp_out) -> None:
    def block(a, b):
        words = [f"{int(x):08x} {int(y):08x}" for x, y in zip(a, b)]
        lines = ["    " + repr(" ".join(words[i:i + 6]) + " ") for i in range(0, len(words), 6)]
        return "(\n" + "\n".join(lines) + "\n)"

    TABLE.write_text(
        '"""Format-version-1 values of float32 log2/exp2 where numpy (libm) did not round correctly: pairs of float32\n'
        "bit patterns (input, result) in hex, found exhaustively on every input the hash-grid encoder produces by\n"
        '``benchmarks/exact_hashgrid_check.py --write-table`` (generated: do not edit)."""\n\n'
        f"LOG2_F32_V1 = {block(log_in, log_out)}\n\nEXP2_F32_V1 = {block(exp_in, exp_out)}\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--write-table", action="store_true")
    ap.add_argument("--off-grid", type=int, default=3000, help="random float32 scales off the encoder's grid")
    a = ap.parse_args()
    t0 = time.perf_counter()
    res: dict = {"command": "PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/exact_hashgrid_check.py "
                            "--out benchmarks/results/exact_hashgrid.json",
                 "numpy": np.__version__, "load_average_start": list(os.getloadavg())}

    # latent grid scale table
    old_table = np.array([2.0 ** (-5.0 + (i + 0.5) / 8) for i in range(96)])
    new_table = exact.latent_scale_table(-5.0, 8, 96)
    res["latent_scale_table"] = {"entries": 96, "mismatches": int(np.sum(old_table.view(np.uint64)
                                                                          != new_table.view(np.uint64)))}

    pls = grid_scales()
    old_l = np.log2(pls)
    cr_l = cr(exact._cr_log2_bits, pls)
    ex_l = np.flatnonzero(bits(old_l) != cr_l)
    ys = np.unique((np.arange(32, dtype=np.float32)[:, None] * old_l[None, :]).astype(np.float32).ravel())
    old_e = np.exp2(ys)
    cr_e = cr(exact._cr_exp2_bits, ys)
    ex_e = np.flatnonzero(bits(old_e) != cr_e)
    if a.write_table:
        write_table(bits(pls[ex_l]), bits(old_l[ex_l]), bits(ys[ex_e]), bits(old_e[ex_e]))
        print(f"wrote {TABLE}: {len(ex_l)} log2 and {len(ex_e)} exp2 entries (re-run without --write-table)")
        return
    new_l = np.array([exact.f32_log2(x) for x in pls], np.float32)
    new_e = np.array([exact.f32_exp2(y) for y in ys], np.float32)
    res["grid"] = {
        "per_level_scale_values": int(len(pls)),
        "log2_numpy_not_correctly_rounded": int(len(ex_l)),
        "log2_rule_mismatches": int(np.sum(bits(new_l) != bits(old_l))),
        "exp2_inputs": int(len(ys)),
        "exp2_numpy_not_correctly_rounded": int(len(ex_e)),
        "exp2_rule_mismatches": int(np.sum(bits(new_e) != bits(old_e))),
    }
    bases = np.unique(np.concatenate([np.arange(1, 65), 2 ** np.arange(7, 13),
                                      np.random.default_rng(1).integers(65, 4097, 200)]))
    so, ro = old_layout(pls, bases, 32)
    sn, rn = new_layout(pls, bases, 32)
    res["grid"]["layout_configs"] = int(so.size)
    res["grid"]["layout_bases"] = int(len(bases))
    res["grid"]["scale_mismatches"] = int(np.sum(bits(so) != bits(sn)))
    res["grid"]["resolution_mismatches"] = int(np.sum(ro != rn))

    rng = np.random.default_rng(14)
    off = rng.uniform(1.0, 4.0, a.off_grid).astype(np.float32)
    base16 = np.arange(1, 17)
    so, ro = old_layout(off, base16, 32)
    sn, rn = new_layout(off, base16, 32)
    res["off_grid"] = {"random_per_level_scale_values": int(len(off)),
                       "log2_differs": int(np.sum(bits(np.log2(off)) != bits(np.array([exact.f32_log2(x)
                                                                                      for x in off], np.float32)))),
                       "layout_configs": int(so.size), "scale_differs": int(np.sum(bits(so) != bits(sn))),
                       "resolution_differs": int(np.sum(ro != rn))}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["load_average_end"] = list(os.getloadavg())
    print(json.dumps(res, indent=1))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
