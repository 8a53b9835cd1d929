"""Decoder cost of the ``dct`` section's 16x16 groups (format 4, ``image_tx16``) on Kodak residuals.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_tx16_decode.py --images kodim03,kodim07 \\
        -o benchmarks/results/gdct_tx16_decode

Over the cached Gaussian bases of ``gaussian_dct_lab.py`` (0.2 bpp), the encoder's section at luma steps 8 and 16
(``image_dct.encode_residual`` without its guard, so that the groups are there), then CPU milliseconds (median
of ``--repeat``, one thread) of: ``decode_section`` (format 4) against the same symbols written as format 2,
``add`` with the groups against ``add`` of 8x8 symbols only, the compiled group kernel alone
(``dct_residual.tx16_add``) and its numpy reference (``image_dct._add_groups_reference``). CPU time, not wall:
the machine is shared.
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

from gaussian_dct_lab import DATA, cached_base, lab_record  # noqa: E402
from gaussian_dct_lab import cpu_ms as _cpu_ms  # noqa: E402

from inrcodec.kernels import dct_residual  # noqa: E402
from inrcodec.models import image_dct, image_tx16, mcdct  # noqa: E402
from inrcodec.signals import load  # noqa: E402


def cpu_ms(fn, repeat: int) -> float:
    return round(_cpu_ms(fn, repeat), 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07")
    ap.add_argument("--steps", default="8,16")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    result = dict(lab_record("bench_tx16_decode.py", argv), runs=[])
    cpu0 = time.process_time()
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        _, base = cached_base(args.cache, stem, 0.2, 1000)
        raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
        for step in (float(s) for s in args.steps.split(",")):
            blob, _ = image_dct.encode_residual(image, base, raw, raw16, step, guard=False,
                                                rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
            q, units, strength, flags = image_dct.decode_section(blob, *image.shape)
            plain = image_dct.encode_section(q, units, strength)  # the same symbols as format 2
            q8 = np.where(image_tx16.block_mask(flags, *q.shape[1:3])[None, :, :, None], 0, q).astype(q.dtype)
            per = image_dct._per_position(units)

            def kernel():
                dct_residual.tx16_add(base.copy(), base, q, per, mcdct._zigzag(), image_tx16.t16(),
                                      image_tx16.COEF_CLAMP, image_tx16.SHIFT1, image_tx16.SHIFT2, flags, 1)

            run = {"image": stem, "step": step, "groups_16x16": float(flags.mean()), "section_bytes": len(blob),
                   "cpu_ms": {
                       "decode_section_format4": cpu_ms(lambda: image_dct.decode_section(blob, *image.shape),
                                                        args.repeat),
                       "decode_section_format2_same_symbols": cpu_ms(
                           lambda: image_dct.decode_section(plain, *image.shape), args.repeat),
                       "add_with_groups": cpu_ms(lambda: image_dct.add(base, q, units, strength, flags), args.repeat),
                       "add_8x8_only": cpu_ms(lambda: image_dct.add(base, q8, units, strength), args.repeat),
                       "groups_kernel": cpu_ms(kernel, args.repeat),
                       "groups_numpy_reference": cpu_ms(
                           lambda: image_dct._add_groups_reference(base.copy(), base, q, units, flags), args.repeat)}}
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
    result["cpu_s"] = round(time.process_time() - cpu0, 1)
    result["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
