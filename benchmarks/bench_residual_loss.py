"""CPU cost of the residual-pricing base loss of ``gaussian+dct`` per fit step (forward + backward, one thread):
the compiled kernel (``kernels.residual_loss``, the MSE fused in as the fit uses it), the torch form it replaced
(``_fused_torch`` plus a separate MSE) and the MSE alone (the base's loss without it), on Kodak images against a
smoothed copy (a base's error) and a noisy one, and the step estimate (``residual_loss.step_for_bytes`` on
``image_dct.raw_coefficients``) that ``GaussianDCT.on_progress`` runs 4 times per fit.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_residual_loss.py --images kodim01,kodim07 \\
        -o benchmarks/results/residual_loss_kernel

Min and median over repeats of CPU-ms per call (``time.process_time``); the load is stored with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.kernels import _loader  # noqa: E402
from inrcodec.models import image_dct, residual_loss  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def _cpu_ms(fn, repeats: int, inner: int = 5) -> dict:
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(inner):
            fn()
        times.append((time.process_time() - t) / inner * 1e3)
    return {"min_ms": round(min(times), 3), "median_ms": round(statistics.median(times), 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim01,kodim07")
    ap.add_argument("--delta", type=float, default=10.0, help="luma step the loss prices at (8-bit levels)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from PIL import Image

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"command": "python benchmarks/bench_residual_loss.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
              "git_commit": commit, "threads": 1, "load_start": os.getloadavg(),
              "cpu_library": _loader.status()["cpu_library"], "per_image": {}}
    mix = 0.5  # gaussian_dct.RD_MIX: half the residual's cost, half the MSE
    for stem in args.images.split(","):
        img = np.asarray(Image.open(DATA / f"{stem}.png"))
        ref = torch.from_numpy(img.astype(np.float32) / 255)
        smooth = torch.nn.functional.avg_pool2d(ref.permute(2, 0, 1)[None], 5, stride=1, padding=2,
                                                count_include_pad=False)[0].permute(1, 2, 0).contiguous()
        noisy = ref + 0.02 * torch.from_numpy(np.random.default_rng(0).standard_normal(ref.shape).astype(np.float32))
        row = {}
        for name, base in (("smoothed", smooth), ("noise_5_levels", noisy)):
            pred = base.clone().requires_grad_(True)

            def step(compiled):
                def run():
                    if compiled:
                        loss = residual_loss.residual_rd_loss(pred, ref, args.delta, 255.0, weight=mix / 255**2,
                                                              mse_weight=1 - mix)
                    else:
                        loss = mix / 255**2 * residual_loss.residual_rd_loss(pred, ref, args.delta, 255.0,
                                                                             compiled=False)
                        loss = loss + (1 - mix) * torch.nn.functional.mse_loss(pred, ref)
                    loss.backward()
                    pred.grad = None
                return run

            def mse():
                torch.nn.functional.mse_loss(pred, ref).backward()
                pred.grad = None

            row[name] = {"compiled_with_mse": _cpu_ms(step(True), args.repeats),
                         "torch_with_mse": _cpu_ms(step(False), max(3, args.repeats // 3)),
                         "mse_alone": _cpu_ms(mse, args.repeats)}
        base_ints = np.clip(np.rint(smooth.numpy() * 255), 0, 255).astype(np.uint8)
        t = time.process_time()
        raw = image_dct.raw_coefficients(img, base_ints)
        t1 = time.process_time()
        residual_loss.step_for_bytes(raw, 0.6 * 0.6 * img.shape[0] * img.shape[1] / 8)
        row["step_estimate_cpu_s"] = {"raw_coefficients": round(t1 - t, 3),
                                      "step_for_bytes": round(time.process_time() - t1, 3)}
        result["per_image"][stem] = row
        print(stem, json.dumps(row), flush=True)
    result["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
