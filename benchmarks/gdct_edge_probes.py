"""Probes of what could shrink the residual of ``gaussian+dct`` on edges (issue 13, session 21): upper bounds, no codec.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_edge_probes.py --images kodim03,kodim07,kodim01,kodim05 \\
        -o benchmarks/results/gdct_s21_edge_probes

On the cached Gaussian bases of ``gaussian_dct_lab.py`` (``--base-rate``, 1000 steps):

- **intra prediction**: per 8x8 block of the (R+G+B)/3 residual (original - base), the energy left by the best of
  none / vertical / horizontal / DC / two 45-degree predictions from the *original* residual of the row above and the
  column left (an oracle: true neighbours, free mode choice; a decoder has only quantised ones and pays the mode);
- **base activity**: Spearman correlation of each block's residual energy (luma DCT, log) with the mean gradient of
  the base in the block, against the same with the residual energy of its four neighbours (what ``coefcoder``'s
  contexts already see); then the coded size of ``coefcoder``'s walk (estimated bits) with the base activity added
  to every magnitude context (weights 1/2/4/8 x activity / step, in the contexts' quarter units) against without;
- **signs** (1 bit per non-zero, about a fifth of the residual): their share of the estimated residual bits; how
  often a symbol's sign agrees with the sign of the same DCT coefficient of the base's high-pass (base minus its
  Gaussian blur, sigma 1), and the sign bits a context on that predictor's magnitude (4 quartile classes) could
  save; and sign data hiding per block and channel (HEVC's SDH, at block level: the first non-zero's sign is the
  parity of the block's sum of magnitudes where it holds >= 2 non-zeros): bits saved minus the cheapest parity
  repair's added error / lambda (half the blocks need one; +1 on a non-zero or -1 on one of magnitude >= 2).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import DATA, cached_base  # noqa: E402
from inrcodec.models import coefcoder as cc  # noqa: E402
from inrcodec.models import image_dct  # noqa: E402
from inrcodec.signals import load  # noqa: E402


def intra_oracle(r: np.ndarray) -> float:
    """Share of the residual energy (interior blocks) left by the best oracle prediction per block."""
    h, w = r.shape
    kept = total = 0.0
    for y0 in range(8, h - 8, 8):
        for x0 in range(8, w - 8, 8):
            b = r[y0:y0 + 8, x0:x0 + 8]
            top, left = r[y0 - 1, x0:x0 + 8], r[y0:y0 + 8, x0 - 1]
            tr = r[y0 - 1, x0:x0 + 16]
            tl = np.concatenate([left[::-1], [r[y0 - 1, x0 - 1]], top])  # index 8: the corner
            yy, xx = np.mgrid[0:8, 0:8]
            preds = [np.zeros((8, 8)), np.tile(top, (8, 1)), np.tile(left[:, None], (1, 8)),
                     np.full((8, 8), (top.sum() + left.sum()) / 16), tr[np.minimum(xx + yy + 1, 15)], tl[8 + xx - yy]]
            errs = [float(((b - p) ** 2).sum()) for p in preds]
            total += errs[0]
            kept += min(errs)
    return kept / total


class _Tally(cc._Counter):
    """Estimated bits split into magnitudes and flags (signs: one bit per non-zero, counted by the caller)."""

    def __init__(self):
        super().__init__()
        self.flags = 0.0

    def bern(self, p1, truth):
        before = self.bits
        super().bern(p1, truth)
        self.flags += self.bits - before
        return truth


def _h(p):
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def sign_probes(image, base, raw, steps=(8.0, 16.0)) -> dict:
    from scipy.ndimage import gaussian_filter

    b = base.astype(np.float64)
    hp = b - np.stack([gaussian_filter(b[..., k], 1.0) for k in range(b.shape[-1])], -1)
    pred = image_dct.coefficients(hp, np.full((b.shape[-1], 2), image_dct.STEP_UNIT, np.int64))
    lam, chroma = image_dct.RDOQ_LAMBDA, image_dct.CHROMA_FACTOR
    out = {}
    for step in steps:
        q, units = image_dct.quantise_raw(raw, step, rdoq=lam, prices=image_dct.RDOQ_PRICES)
        nz = q != 0
        t = _Tally()
        cc._walk(t, q.shape[:3], q)
        total_bits = t.bits + nz.sum()
        agree = (np.sign(pred) == np.sign(q))[nz]
        mag = np.abs(pred)[nz]
        cls = np.digitize(mag, np.quantile(mag, [0.25, 0.5, 0.75]))
        ctx_bits = sum(_h(agree[cls == k].mean()) * (cls == k).sum() for k in range(4) if (cls == k).any())
        coef = raw / (image_dct._per_position(units)[:, None, None, :] / image_dct.STEP_UNIT)
        w = np.array([3.0, 2 * chroma**2, 3 * chroma**2])[:q.shape[0], None, None, None]
        a, c = np.abs(q).astype(np.float64), np.abs(coef)
        d0 = (c - a) ** 2
        repair = w * np.minimum((c - a - 1) ** 2 - d0, np.where(a >= 2, (c - a + 1) ** 2 - d0, np.inf))
        repair = np.where(nz, repair, np.inf).min(-1)
        hide = nz.sum(-1) >= 2
        net = hide.sum() - 0.5 * repair[hide].sum() / lam  # half the blocks' parities are wrong, on average
        out[f"step {step:g}"] = {
            "residual_bits": float(total_bits), "sign_share": float(nz.sum() / total_bits),
            "flag_share": float(t.flags / total_bits),
            "highpass_sign_agreement": float(agree.mean()),
            "highpass_context_sign_bits_saved": float(1 - ctx_bits / nz.sum()),
            "sdh_blocks": int(hide.sum()), "sdh_net_bits": float(net), "sdh_net_share": float(net / total_bits)}
    return out


def _walk_with_extra():
    """``coefcoder._walk`` with EXTRA[group][block] added to every magnitude context (a probe, not the coder)."""
    src = inspect.getsource(cc._walk).replace("def _walk(io", "def _walk_extra(io")
    old = "            cls = _class_table()[x4.T.ravel()]"
    assert old in src
    src = src.replace(old, "            x4 = x4 + EXTRA[ch0][idx % nblk][None, :].astype(x4.dtype)\n"
                           "            cls = _class_table()[np.minimum(x4, len(_class_table()) - 1).T.ravel()]")
    ns = dict(vars(cc))
    exec(src, ns)  # noqa: S102 - our own source, patched
    return ns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07,kodim01,kodim05")
    ap.add_argument("--base-rate", type=float, default=0.2)
    ap.add_argument("--steps", default="6,12,24")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from scipy.stats import spearmanr

    c0 = time.process_time()
    ns = _walk_with_extra()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"command": "python benchmarks/gdct_edge_probes.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
           "git_commit": commit, "load_start": os.getloadavg(), "per_image": {}}
    weights = (1, 2, 4, 8)
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        _, base = cached_base(args.cache, stem, args.base_rate, 1000)
        r = (image.astype(np.float64) - base.astype(np.float64)).mean(-1)
        row = {"intra_oracle_energy_kept": intra_oracle(r)}
        raw = image_dct.raw_coefficients(image, base)
        y = base.astype(np.float64).mean(-1)
        g = np.abs(np.diff(y, axis=0, append=y[-1:])) + np.abs(np.diff(y, axis=1, append=y[:, -1:]))
        by, bx = raw.shape[1:3]
        gp = np.pad(g, ((0, by * 8 - g.shape[0]), (0, bx * 8 - g.shape[1])), mode="edge")
        act = gp.reshape(by, 8, bx, 8).mean((1, 3))
        e = np.log1p((raw[0] ** 2).sum(-1))
        row["spearman_residual_vs_base_activity"] = float(spearmanr(e.ravel(), act.ravel())[0])
        row["spearman_residual_vs_neighbours"] = float(spearmanr(e.ravel(), cc._neighbour_sum(e).ravel())[0])
        row["context_bytes_change"] = {}
        for step in (float(s) for s in args.steps.split(",")):
            q, _ = image_dct.quantise_raw(raw, step, rdoq=image_dct.RDOQ_LAMBDA, prices=image_dct.RDOQ_PRICES)
            sizes = []
            for wgt in (0,) + weights:
                extra = np.round(wgt * act.ravel() / step * 4).astype(np.int64)
                ns["EXTRA"] = {0: extra, 1: extra}
                cnt = cc._Counter()
                ns["_walk_extra"](cnt, q.shape[:3], q)
                sizes.append((cnt.bits + np.count_nonzero(q)) / 8)
            row["context_bytes_change"][f"step {step:g}"] = {
                "bytes": sizes[0], **{f"weight {w}": sizes[i + 1] / sizes[0] - 1 for i, w in enumerate(weights)}}
        row["signs"] = sign_probes(image, base, raw)
        out["per_image"][stem] = row
        print(stem, json.dumps(row), flush=True)
    out["cpu_s"] = time.process_time() - c0
    out["load_end"] = os.getloadavg()
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
