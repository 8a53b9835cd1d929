"""What an encoder constant costs in the byte search: real residual encodes and their CPU per file, paired (issue 13,
session 26: ``image_dct.RDOQ_LAMBDA`` 0.3 against 0.25).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/rsearch_encode_cost.py --images kodim07 --steps 300 \\
        -o benchmarks/results/rsearch_encode_cost_s26

Per image and rate, one ``gaussian+dct`` fit (``--steps``, seed 0; the base's loss does not read RDOQ_LAMBDA, so the
fit is the same under every value), then the codec's byte search (``codec._search_quality`` with the model's hint)
under each value of ``--lambdas``: the number of ``encode_residual`` calls, their CPU seconds (one thread), the file's
bytes and PSNR. Counting encodes is load-independent; the CPU seconds are not (the load is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import DATA, _commit  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim07")
    ap.add_argument("--rates", default="0.2,0.35,0.6,1.0")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lambdas", default="0.3,0.25")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from inrcodec import codec
    from inrcodec.models import gaussian_dct, image_dct
    from inrcodec.signals import load

    calls = {"n": 0, "cpu": 0.0}
    real = image_dct.encode_residual

    def counted(*a, **k):
        c0 = time.process_time()
        try:
            return real(*a, **k)
        finally:
            calls["n"] += 1
            calls["cpu"] += time.process_time() - c0

    image_dct.encode_residual = counted
    keep_search = codec._search_quality
    result = {"command": "python benchmarks/rsearch_encode_cost.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
              "git_commit": _commit(), "load_start": os.getloadavg(), "runs": []}
    lambdas = [float(x) for x in args.lambdas.split(",")]
    for stem in args.images.split(","):
        sig = load(DATA / f"{stem}.png")
        for bpp in (float(r) for r in args.rates.split(",")):
            def paired(build, signal, target_bytes, *rest):
                """The byte search once per lambda on the same fitted model (the last one's file is kept)."""
                out = None
                for lam in lambdas:
                    image_dct.RDOQ_LAMBDA = lam
                    calls.update(n=0, cpu=0.0)
                    _clear_cache(build)
                    out = keep_search(build, signal, target_bytes, *rest)
                    q, data, decoded = out
                    from inrcodec.metrics import psnr
                    result["runs"].append({"image": stem, "bpp": bpp, "lambda": lam, "encodes": calls["n"],
                                           "encode_cpu_s": round(calls["cpu"], 2), "bytes": len(data),
                                           "psnr": psnr(signal.data, decoded.data), "target_bytes": target_bytes})
                    print(json.dumps(result["runs"][-1]), flush=True)
                return out

            codec._search_quality = paired
            try:
                codec.compress(sig, gaussian_dct.NAME, bpp=bpp, steps=args.steps, seed=0)
            finally:
                codec._search_quality = keep_search
    result["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


def _clear_cache(build) -> None:
    """Forget the model's last coded section (GaussianDCT caches one by step) so each lambda codes its own."""
    net = _net_of(build)
    if net is not None:
        net._section_cache = {}


def _net_of(build):
    for cell in (build.__closure__ or ()):
        obj = cell.cell_contents
        if hasattr(obj, "_section_cache"):
            return obj
    return None


if __name__ == "__main__":
    sys.exit(main())
