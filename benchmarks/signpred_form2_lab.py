"""Sign stream forms and their parameters on the encoder's residuals: exact model bits, no format change needed.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/signpred_form2_lab.py -o benchmarks/results/signpred_form2_lab

On the lab's cached Gaussian bases (``gaussian_dct_lab``, /tmp/gsresid_cache): per image, base rate and luma step the
encoder's ``dct`` section (``image_dct.encode_residual``: RDOQ, 16x16 groups with the guard, restoration filters),
its symbols and 16x16 mask; then ``signpred.estimate_bits`` (the models' bits of the sign stream, raw signs
included) of form 1 as written by session 25 (K 6, 3 rounds, groups 5) and of each variant
``FORM:K:ROUNDS:GROUP_ROUNDS`` (form 1: phase-major, the phase-0 blocks raw, a unit uses decoded neighbours only;
form 2: round-major, every block and side). Reported: bits saved against session 25's form, as % of the section's bytes.
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
from inrcodec.models import image_dct, image_tx16, signpred  # noqa: E402
from inrcodec.signals import load  # noqa: E402


def with_params(form: int, k: int, rounds: int, group_rounds: int):
    """Set ``form``'s K and rounds (and its rank classes: round 0's places, round 1, later rounds, as each form
    defines them); returns the previous values."""
    names = ("K", "ROUNDS", "GROUP_ROUNDS", "RANKS") if form == 1 else ("K2", "ROUNDS2", "GROUP_ROUNDS2", "RANKS2")
    keep = tuple(getattr(signpred, n) for n in names)
    maxr = max(rounds, group_rounds)
    if form == 1:
        ranks = ((0, 1, 2, 2) + (3,) * max(k - 4, 0))[:k] + (4,) * k + (5,) * k * (maxr - 2)
    else:
        ranks = ((0, 1) + (2,) * max(k - 2, 0))[:k] + (2 if k <= 2 else 3,) * k + (3,) * k * (maxr - 2)
    for n, v in zip(names, (k, rounds, group_rounds, ranks)):
        setattr(signpred, n, v)
    return names, keep


def main(argv=None) -> int:
    ap = lab_parser(__doc__, "10,16")
    ap.add_argument("--variants", default="1:4:8:12,2:6:3:5,2:4:8:12,2:2:12:16,2:2:16:16,2:2:20:20")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    res = dict(lab_record("signpred_form2_lab.py", argv), rows=[])
    c0 = time.process_time()
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        for rate in [float(r) for r in args.base_rates.split(",")]:
            _, base = cached_base(args.cache, stem, rate, 1000)
            raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
            for step in [float(s) for s in args.res_steps.split(",")]:
                blob, _ = image_dct.encode_residual(image, base, raw, raw16, step, restoration=True,
                                                    rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
                q, units, _, flags, _ = image_dct.decode_residual(blob, *image.shape)
                mask = None if flags is None else image_tx16.block_mask(flags, *q.shape[1:3])
                base_bits = signpred.estimate_bits(q, units, mask, 1)
                row = {"image": stem, "base_bpp": rate, "step": step, "section_bytes": len(blob),
                       "nonzero": int(np.count_nonzero(q)), "form1_bits": base_bits, "saved_pct": {}}
                for v in variants:
                    form, k, r, gr = (int(x) for x in v.split(":"))
                    names, keep = with_params(form, k, r, gr)
                    try:
                        bits = signpred.estimate_bits(q, units, mask, form)
                    finally:
                        for n, val in zip(names, keep):
                            setattr(signpred, n, val)
                    row["saved_pct"][v] = 100.0 * (base_bits - bits) / 8.0 / len(blob)
                res["rows"].append(row)
                print(json.dumps(row), flush=True)
    res["mean_saved_pct"] = {v: float(np.mean([r["saved_pct"][v] for r in res["rows"]])) for v in variants}
    res["cpu_s"] = time.process_time() - c0
    res["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    print("mean saved % of the section:", {k: round(v, 3) for k, v in res["mean_saved_pct"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
