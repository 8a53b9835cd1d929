"""Designs of the encoder-side search of ``gaussian+dct``'s base share (issue 13), at equal steps, on Kodak images.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_dct_share_search.py direct --images kodim01,kodim05 \\
        --rates 0.35,1.0 --steps 240 --shares 0.2,0.45 -o /tmp/probes.jsonl
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_dct_share_search.py cuts --images kodim01 \\
        --rates 0.6 --steps 1000 --fit-share 0.6 --shares 0.45,0.3,0.2,0.13 -o /tmp/cuts.jsonl

``direct``: one ``gaussian+dct`` fit per share (``compress(..., config={"base_share": s})``, seed 0): the file at
the target and its PSNR. At a probe's step count this is what the search's probes see; at 1000 steps, which share
a longer fit prefers. ``cuts``: one fit at ``--fit-share``, then smaller bases cut from it (its most energetic
Gaussians, the prefix the importance-ordered bitstream codes first, colours re-solved by 12 CG iterations on the
coded geometry and rounded on the fit's grid), each completed by the residual's rate search to the same target.
Appends one JSON line per fit (with the CPU seconds of this process, the load and the commit) to ``-o``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.codec import _finite_psnr, _search_quality, compress  # noqa: E402
from inrcodec.container import Container, write_container  # noqa: E402
from inrcodec.fit import FitSettings, fit  # noqa: E402
from inrcodec.models import gaussian_codec as gc  # noqa: E402
from inrcodec.models.gaussian import solve_colors  # noqa: E402
from inrcodec.models.gaussian_dct import GaussianDCT, GaussianDCTConfig  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def cut(net: GaussianDCT, share: float, payload_bits: float) -> GaussianDCT:
    """A base of about ``share`` x payload cut from a finalised fit (coded size ~ proportional to the count)."""
    blob, _ = net._decoded_base()
    m, c, col = (t.detach() for t in net.active_params())
    n = m.shape[0]
    k = int(np.clip(round(n * share * payload_bits / (8.0 * len(blob))), 1, n))
    sel = torch.from_numpy(np.sort(np.argsort(-gc.energy(c, col), kind="stable")[:k]))
    m, c, col = m[sel], c[sel], col[sel]
    h, w = net.hw
    colors = solve_colors(m, c, net._target, 12, x0=col)
    v = gc.chol_to_logcov(c.to(torch.float64)).numpy()
    q = gc.quantize(m.numpy(), v, colors.numpy(), net._steps, h, w)
    new = GaussianDCT(GaussianDCTConfig(k, net.config.layers, float(share)), net.desc)
    new._target, new._steps, new._steps_chosen = net._target, net._steps, True
    new._set_from_quantized(q, net._steps)
    new._final = q
    return new.eval()


def coded_psnr(sig: Signal, net: GaussianDCT, target_bytes: float) -> tuple[int, float]:
    desc = sig.describe()

    def build(quality, render=True):
        sections = net.encode(quality)
        data = write_container(Container(desc, GaussianDCT.name, net.config_dict(), sections, {}))
        if not render:
            return data, None
        dec = GaussianDCT.decode(net.config, desc, sections)
        with torch.no_grad():
            return data, Signal.from_normalized(dec.render().numpy(), desc)
    _, data, decoded = _search_quality(build, sig, target_bytes, None, None, GaussianDCT.default_quality)
    return len(data), _finite_psnr(sig, decoded)


def run_cuts(sig, rate, steps, fit_share, shares):
    desc = sig.describe()
    target_bytes = rate * sig.num_pixels / 8.0
    overhead = len(write_container(Container(desc, GaussianDCT.name, {}, {"a": b"", "b": b""})))
    payload = 8.0 * (target_bytes - overhead) - 64 * 8  # as codec.compress
    torch.manual_seed(0)
    net = GaussianDCT(GaussianDCT.config_for(desc, payload, base_share=fit_share), desc)
    net.set_targets(payload, None)
    target = torch.from_numpy(sig.normalized())
    fit(net, target, FitSettings(max_steps=steps, lr=GaussianDCT.lr_for(net.config), seed=0))
    net.eval()
    out = []
    for share, cand in [(fit_share, net)] + [(s, cut(net, s, payload)) for s in shares]:
        c0 = time.process_time()
        size, p = coded_psnr(sig, cand, target_bytes)
        out.append({"base_share": share, "bytes": size, "psnr": p, "code_cpu_s": time.process_time() - c0})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["direct", "cuts"])
    ap.add_argument("--images", default="kodim01")
    ap.add_argument("--rates", default="0.6")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--shares", default="0.2,0.45")
    ap.add_argument("--fit-share", type=float, default=0.6)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    command = "python benchmarks/gaussian_dct_share_search.py " + " ".join(argv or sys.argv[1:])
    shares = [float(s) for s in args.shares.split(",") if s]
    for stem in args.images.split(","):
        sig = load(DATA / f"{stem}.png")
        for rate in (float(r) for r in args.rates.split(",")):
            runs = [(s,) for s in shares] if args.mode == "direct" else [(args.fit_share,)]
            for (share,) in runs:
                c0 = time.process_time()
                row = {"image": stem, "rate": rate, "steps": args.steps, "mode": args.mode}
                if args.mode == "direct":
                    r = compress(sig, "gaussian+dct", bpp=rate, steps=args.steps, seed=0,
                                 config={"base_share": share})
                    row.update(base_share=share, bpp=r.report["bpp"], psnr=r.report["psnr"])
                else:
                    row.update(fit_share=share, candidates=run_cuts(sig, rate, args.steps, share, shares))
                row.update(cpu_s=time.process_time() - c0, load=os.getloadavg()[0], commit=commit, command=command)
                print(json.dumps(row), flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
