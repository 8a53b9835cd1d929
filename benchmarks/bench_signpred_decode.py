"""Decode CPU of the ``dct`` section with and without sign prediction (format 7 with
TOOL_SIGNS vs the same residual without it).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_signpred_decode.py -o benchmarks/results/signpred_decode

On the lab's cached Gaussian bases (``gaussian_dct_lab``): the encoder's section (``image_dct.encode_residual``: RDOQ,
16x16 groups with the guard, restoration filters) at each luma step, once with ``SIGN_PREDICTION`` "never" and once
"auto"; per section the bytes, and the process CPU of ``decode_residual`` (symbols, flags, filters, signs; the
median of ``--repeat`` runs) and of ``signpred.decode`` alone. Process CPU, not wall: the machine is shared.
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

from gaussian_dct_lab import DATA, cached_base, cpu_ms, lab_record  # noqa: E402
from inrcodec.models import image_dct, image_tx16, signpred  # noqa: E402
from inrcodec.signals import load  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim01,kodim03,kodim05,kodim07")
    ap.add_argument("--base-rate", type=float, default=0.2)
    ap.add_argument("--res-steps", default="6,10,16")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    res = dict(lab_record("bench_signpred_decode.py", argv), k=signpred.K, rounds=signpred.ROUNDS,
               group_rounds=signpred.GROUP_ROUNDS, rows=[])
    c0 = time.process_time()
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        _, base = cached_base(args.cache, stem, args.base_rate, 1000)
        raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
        for step in [float(s) for s in args.res_steps.split(",")]:
            row = {"image": stem, "step": step}
            for mode in ("never", "auto"):
                image_dct.SIGN_PREDICTION = mode
                blob, _ = image_dct.encode_residual(image, base, raw, raw16, step, restoration=True,
                                                    rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
                row[mode] = {"format": blob[0], "bytes": len(blob),
                             "decode_cpu_ms": cpu_ms(lambda: image_dct.decode_residual(blob, *image.shape),
                                                     args.repeat)}
                if blob[0] == image_dct.FORMAT_TOOLS and blob[1] & image_dct.TOOL_SIGNS:
                    q, units, _, flags, _ = image_dct.decode_residual(blob, *image.shape)
                    mask = None if flags is None else image_tx16.block_mask(flags, *q.shape[1:3])
                    stream = signpred.encode(q, units, mask)
                    row[mode]["signs_cpu_ms"] = cpu_ms(lambda: signpred.decode(stream, np.abs(q), units, mask),
                                                       args.repeat)
                    row[mode]["nonzero"] = int(np.count_nonzero(q))
                    row[mode]["sign_stream_bytes"] = len(stream)
            row["saved_pct"] = 100.0 * (1 - row["auto"]["bytes"] / row["never"]["bytes"])
            res["rows"].append(row)
            print(json.dumps(row), flush=True)
    image_dct.SIGN_PREDICTION = "auto"
    res["mean_saved_pct"] = float(np.mean([r["saved_pct"] for r in res["rows"]]))
    res["median_added_decode_cpu_ms"] = float(np.median([r["auto"]["decode_cpu_ms"] - r["never"]["decode_cpu_ms"]
                                                         for r in res["rows"]]))
    res["cpu_s"] = time.process_time() - c0
    res["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    print("mean saved %:", round(res["mean_saved_pct"], 2), "median added decode CPU ms:",
          round(res["median_added_decode_cpu_ms"], 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
