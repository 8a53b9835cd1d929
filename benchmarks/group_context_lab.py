"""Contexts that know the 16x16 groups (issue 13, session 26): estimated bytes of format 7's symbols (``coefcoder7``,
its own models' code lengths, within a few bytes of the coder) with the group flags coded after the magnitudes (as
format 7 does) against the flags coded before them, right after the coded-block flags, and grouped blocks given their
own classes (``coefcoder7.GROUP_MODE``). Symbols: ``image_dct.quantise_tx16`` on the lab's cached Gaussian bases
(the encoder's RDOQ; no guard). Flags before the magnitudes cannot use the group's non-zero count (format 4's
context): their context is the number of coded (block, channel) flags in the group instead.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/group_context_lab.py -o benchmarks/results/group_context_lab_s26
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import DATA, _commit, cached_base  # noqa: E402
from inrcodec.models import coefcoder as cc, coefcoder7, image_dct, image_tx16  # noqa: E402
from inrcodec.signals import load  # noqa: E402


def flags_first_bits(q: np.ndarray, flags: np.ndarray, edges) -> float:
    """Estimated bits of the group flags coded with only the coded-block flags known: ``image_tx16.code_flags``'s
    contexts with the group's count of coded (block, channel) flags in place of its non-zero count."""
    cbf = np.any(q != 0, axis=3).astype(np.int32)  # (c, by, bx)
    fake = np.zeros_like(q)
    fake[..., 0] = cbf
    keep = image_tx16.NNZ_EDGES
    image_tx16.NNZ_EDGES = edges
    try:
        cnt = cc._Counter()
        image_tx16.code_flags(cnt, fake, flags & image_tx16.flag_contexts(q)[0])
    finally:
        image_tx16.NNZ_EDGES = keep
    return cnt.bits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim01,kodim03,kodim05,kodim07")
    ap.add_argument("--base-rates", default="0.1,0.2,0.35")
    ap.add_argument("--res-steps", default="6,10,16,24")
    ap.add_argument("--modes", default="1,2,3")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    modes = [int(m) for m in args.modes.split(",")]
    res = {"command": "python benchmarks/group_context_lab.py " + " ".join(argv or sys.argv[1:]),
           "git_commit": _commit(), "load_start": os.getloadavg(), "sets": []}
    c0 = time.process_time()
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        for rate in [float(r) for r in args.base_rates.split(",")]:
            _, base = cached_base(Path("/tmp/gsresid_cache"), stem, rate, 1000)
            raw = image_dct.raw_coefficients(image, base)
            raw16 = image_dct.raw_coefficients16(image, base)
            for step in [float(s) for s in args.res_steps.split(",")]:
                q, units, flags = image_dct.quantise_tx16(raw, raw16, step, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
                flags = flags & image_tx16.flag_contexts(q)[0]
                mask = image_tx16.block_mask(flags, *q.shape[1:3])
                mags = coefcoder7.estimate_bytes(q, signs=False)
                fl_after = len(image_tx16.encode_flags(q, flags)) if flags.any() else 0
                row = {"image": stem, "base": rate, "step": step, "grouped_blocks": float(mask.mean()),
                       "signs_bytes": np.count_nonzero(q) / 8.0, "mags_bytes": mags, "flags_after_bytes": fl_after}
                for edges in ((2, 5), (3, 9)):
                    row[f"flags_first_bytes_{edges[0]}_{edges[1]}"] = flags_first_bits(q, flags, edges) / 8.0
                for m in modes:
                    keep = coefcoder7.GROUP_MODE
                    coefcoder7.GROUP_MODE = m
                    try:
                        row[f"mags_bytes_mode{m}"] = cc.estimate_bytes(
                            q, False, walk=lambda io, shape, qq, blocks=None: coefcoder7._walk(io, shape, qq, blocks,
                                                                                              mask))
                    finally:
                        coefcoder7.GROUP_MODE = keep
                total = mags + fl_after + row["signs_bytes"]
                ff = min(row["flags_first_bytes_2_5"], row["flags_first_bytes_3_9"])
                row["gain_pct"] = {m: 100.0 * (row[f"mags_bytes_mode{m}"] + ff - mags - fl_after) / total
                                   for m in modes}
                res["sets"].append(row)
                print(stem, rate, step, f"grouped {mask.mean():.2f}", {m: round(g, 3) for m, g in row["gain_pct"].items()},
                      flush=True)
    res["cpu_s"] = time.process_time() - c0
    res["load_end"] = os.getloadavg()
    res["mean_gain_pct"] = {m: float(np.mean([r["gain_pct"][m] for r in res["sets"]])) for m in modes}
    res["mean_gain_pct_per_image"] = {
        stem: {m: float(np.mean([r["gain_pct"][m] for r in res["sets"] if r["image"] == stem])) for m in modes}
        for stem in args.images.split(",")}
    print(json.dumps(res["mean_gain_pct"]), json.dumps(res["mean_gain_pct_per_image"]))
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
