"""Probe (issue 13, session 23, item c): does a tiny overfitted nonlinear filter buy more than the classified linear
filters (``inrcodec.models.restore``) at equal bytes? Not in the codec.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_restore_cnn_probe.py --images kodim07,kodim03 \\
        --base-rate 0.2 --res-steps 8,16,24 -o benchmarks/results/gdct_restore_cnn_probe

On the lab's cached bases (``gaussian_dct_lab.py``), the current encoder's decoded image (RDOQ ctx + best
deblocking strength) at each residual step, then: the codec's restoration filters (their bytes, PSNR), and a
residual CNN ``out = x + conv3x3(8->3)(relu(conv3x3(3->8)(x)))`` (443 weights) fitted by Adam on the image itself
(``--iters`` full-image steps), its weights then rounded to ``--bits``-bit steps per tensor (bytes: weights x
bits / 8 + 4 scales x 2, no entropy coding), applied in float with the output rounded to 8 bits. PSNR of each
and the bytes, per point; the comparison is at each point's gain in dB per byte.
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
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import gaussian_dct_lab as lab  # noqa: E402
from inrcodec.models import restore as rs  # noqa: E402
from inrcodec.signals import load  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.a = torch.nn.Conv2d(3, hidden, 3, padding=1, padding_mode="replicate")
        self.b = torch.nn.Conv2d(hidden, 3, 3, padding=1, padding_mode="replicate")
        torch.nn.init.zeros_(self.b.weight)
        torch.nn.init.zeros_(self.b.bias)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


def fit_cnn(image: np.ndarray, rec: np.ndarray, iters: int, bits: int, hidden: int) -> tuple[float, float, int]:
    """(PSNR float weights, PSNR quantised weights, bytes)."""
    torch.manual_seed(0)
    x = torch.from_numpy(rec.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    y = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    net = Tiny(hidden)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    for _ in range(iters):
        opt.zero_grad()
        loss = torch.mean((net(x) - y) ** 2)
        loss.backward()
        opt.step()
        sched.step()

    def psnr_of(n):
        with torch.no_grad():
            out = np.clip(np.rint(n(x)[0].permute(1, 2, 0).numpy() * 255.0), 0, 255)
        return lab.psnr8(image, out)

    p_float = psnr_of(net)
    n_weights = 0
    with torch.no_grad():
        for p in net.parameters():
            scale = float(p.abs().max()) / (2 ** (bits - 1) - 1) or 1.0
            p.copy_(torch.round(p / scale) * scale)
            n_weights += p.numel()
    return p_float, psnr_of(net), int(np.ceil(n_weights * bits / 8)) + 8


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim07,kodim03")
    ap.add_argument("--base-rate", type=float, default=0.2)
    ap.add_argument("--res-steps", default="8,16,24")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = {"command": "python benchmarks/gdct_restore_cnn_probe.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "git_commit": lab._commit(), "load_start": os.getloadavg(), "points": []}
    c_start = time.process_time()
    for stem in args.images.split(","):
        image = load(lab.DATA / f"{stem}.png").data
        base_bytes, base = lab.cached_base(args.cache, stem, args.base_rate, 1000)
        raw = lab.image_dct.raw_coefficients(image, base)
        for s in [float(v) for v in args.res_steps.split(",")]:
            nbytes, rec = lab.code("rdoqctx+db", image, base, raw, s, {})
            blob, cross = rs.choose(image, rec, s, cross=0) or (None, False)  # session 23's filters, as measured
            alf = rs.apply(rec, rs.decode(blob, 3, cross)) if blob else rec
            c0 = time.process_time()
            p_float, p_q, cnn_bytes = fit_cnn(image, rec, args.iters, args.bits, args.hidden)
            pt = {"image": stem, "step": s, "bytes": base_bytes + nbytes + lab.HEADER_BYTES,
                  "psnr": lab.psnr8(image, rec), "alf_bytes": len(blob) + 1 if blob else 0,
                  "alf_psnr": lab.psnr8(image, alf), "cnn_psnr_float": p_float, "cnn_psnr_quantised": p_q,
                  "cnn_bytes": cnn_bytes, "cnn_fit_cpu_s": round(time.process_time() - c0, 1)}
            res["points"].append(pt)
            print(json.dumps(pt), flush=True)
    res["cpu_s"] = round(time.process_time() - c_start, 1)
    res["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
