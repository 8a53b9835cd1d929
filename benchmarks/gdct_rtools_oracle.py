"""Oracle bounds of three residual tools of ``gaussian+dct`` never measured before (issue 13, session 23):
chroma from luma (CfL), a per-block step offset (delta-QP) and 16x16 transforms for groups of 2x2 blocks.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_rtools_oracle.py \\
        --images kodim01,kodim03,kodim05,kodim07 -o benchmarks/results/gdct_rtools_oracle

On the cached Gaussian bases of ``gaussian_dct_lab.py`` (1000 steps, 0.1 / 0.2 / 0.35 bpp), per image, base and
luma step (6-24), every variant is priced the same way, so that only the tool differs:

- symbols: ``image_dct.quantise_raw`` with the encoder's context-priced RDOQ (``rdoq_ctx``, lambda 0.3, chroma
  1.25x luma, block drop), the anchor ``rdoqctx`` exactly as the encoder quantises;
- bytes: base bytes + ``coefcoder.estimate_bytes`` of the symbols (within a few bytes of the real stream) + 14
  (section header) + 4 (container), plus whatever the tool adds (its side information as the zero-order entropy of
  its choices, or nothing for the ``*_free`` oracles);
- PSNR: the decoded 8-bit image, the residual inverted in float64 (not the exact integer inverse: within a
  hundredth of a dB, the same for every variant), no deblocking (the filter is the same for all and is chosen
  after).

Variants (their BD-rate of total bytes at equal PSNR against ``rdoqctx``, per base and over the envelope):

- ``cfl_block_free``: each block's Co / Cg DCT coefficients predicted from the block's dequantised luma
  coefficients (AC and DC) times the least-squares alpha of that block (the true best, unquantised, no bits);
  the chroma left is quantised as usual. ``cfl_block_q``: alpha from {-1, -3/4, ..., 1} by least error, its
  index per coded-luma block and channel priced by its zero-order entropy. ``cfl_image``: one alpha per image and
  channel (free). Also reported: the share of the residual's estimated bits that is chroma.
- ``dqp_free`` / ``dqp``: per 8x8 block a step offset o (step x 2^(o/4)) from ``--dqp-offsets``, chosen by
  weighted squared error + mu x lambda x estimated bits (lambda = 0.3 step^2, as RDOQ's, mu from ``--dqp-mu``);
  ``dqp`` pays the offsets of coded blocks at their zero-order entropy.
- ``tx16_free`` / ``tx16``: per 16x16 group of four blocks, four 8x8 DCTs or one 16x16 DCT (orthonormal, the
  same step), its 256 coefficients as four 8x8 zig-zag blocks by quadrant (the low 8x8 quadrant in the top-left
  block: a smooth group codes one block and three empty ones), quantised with the same RDOQ, chosen by error +
  lambda x estimated bits; ``tx16`` pays one flag per group with a coded block at its zero-order entropy.

Per-block bits for the choices come from ``rdoq_ctx.block_bits`` (the class tables: magnitudes, signs, a rough
flag price). Writes ``<out>.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import DATA, _commit, bd, cached_base, pareto, psnr8  # noqa: E402

from inrcodec.models import coefcoder as cc  # noqa: E402
from inrcodec.models import image_dct, image_tx16, mcdct, rdoq_ctx  # noqa: E402
from inrcodec.models.mcresidual import from_ycocg  # noqa: E402
from inrcodec.signals import load  # noqa: E402

N = 8
HEADER = 14 + 4
WEIGHT = np.array([3.0, 2.0, 3.0])  # a YCoCg error's cost in RGB squared error (per unit, before chroma steps)


def quant(raw: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The encoder's symbols of ``raw`` (c, by, bx, 64, 8-bit levels) at steps ``units`` (c, 2) or per block
    (c, by, bx, 64) in 1/16 levels."""
    per = units if units.ndim == 4 else image_dct._per_position(units)[:, None, None, :]
    coef = raw / (per / image_dct.STEP_UNIT)
    return image_dct.quantise(coef, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx", chroma=image_dct.CHROMA_FACTOR)


def per_pos(units: np.ndarray) -> np.ndarray:
    return image_dct._per_position(units)[:, None, None, :] / image_dct.STEP_UNIT


def nbytes(q: np.ndarray) -> float:
    return cc.estimate_bytes(q) + HEADER


@functools.lru_cache(maxsize=1)
def _dct8() -> np.ndarray:
    return mcdct._forward_matrix()


def pixels8(deq: np.ndarray) -> np.ndarray:
    """(c, by, bx, 64) zig-zag coefficients (levels) -> (c, by*8, bx*8) float residual."""
    c, by, bx, _ = deq.shape
    blk = deq[..., mcdct._unzigzag()].reshape(c, by, bx, N, N)
    d = _dct8()
    pix = np.einsum("ui,cyxuv,vj->cyxij", d, blk, d)
    return pix.transpose(0, 1, 3, 2, 4).reshape(c, by * N, bx * N)


def decoded(base: np.ndarray, res_ycc: np.ndarray) -> np.ndarray:
    h, w, _ = base.shape
    rgb = from_ycocg(np.moveaxis(res_ycc[:, :h, :w], 0, -1))
    return np.clip(np.rint(base + rgb), 0, 255).astype(np.uint8)


def entropy_bits(symbols: np.ndarray) -> float:
    if not symbols.size:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


# -- tools -----------------------------------------------------------------------------------------------------
def anchor(raw, units):
    q = quant(raw, units)
    return q, q * per_pos(units), 0.0


def cfl(raw, units, q0, mode: str):
    """Chroma coefficients minus alpha x the block's dequantised luma; returns (q, deq, side bits)."""
    yhat = q0[0] * per_pos(units)[0]
    raw2 = raw.copy()
    pred = np.zeros_like(raw)
    side = 0.0
    energy = (yhat**2).sum(-1)
    coded = energy > 0
    levels = np.arange(-4, 5) / 4.0
    for k in (1, 2):
        if mode == "image":
            alpha = float((raw[k] * yhat).sum() / max(energy.sum(), 1e-9))
            a = np.full(energy.shape, alpha)
        else:
            a = np.where(coded, (raw[k] * yhat).sum(-1) / np.maximum(energy, 1e-9), 0.0)
            if mode == "block_q":  # the level of least prediction error (an error quadratic in alpha: nearest)
                idx = np.abs(a[..., None] - levels).argmin(-1)
                a = np.where(coded, levels[idx], 0.0)
                side += entropy_bits(idx[coded])
        pred[k] = a[..., None] * yhat
        raw2[k] = raw[k] - pred[k]
    q = quant(raw2, units)
    return q, q * per_pos(units) + pred, side


def dqp(raw, units, offsets, mu: float, step: float, q0=None):
    """Per-block offsets by RD; returns (q, deq, side bits of the offsets of coded blocks, offset shares)."""
    by, bx = raw.shape[1:3]
    costs, qs = [], []
    lam = mu * image_dct.RDOQ_LAMBDA * step**2
    w = WEIGHT[:raw.shape[0], None, None]
    for o in offsets:
        uo = np.maximum(np.rint(units * 2.0 ** (o / 4.0)), 1).astype(np.int64)
        q = q0 if o == 0 and q0 is not None else quant(raw, uo)
        per = per_pos(uo)
        d = (w * ((raw - q * per) ** 2).sum(-1)).sum(0)
        costs.append(d + lam * rdoq_ctx.block_bits(q).sum(0))
        qs.append((q, per))
    choice = np.argmin(np.stack(costs), axis=0)  # (by, bx)
    q = np.zeros_like(qs[0][0])
    deq = np.zeros(raw.shape)
    for i, (qi, per) in enumerate(qs):
        sel = choice == i
        q[:, sel] = qi[:, sel]
        deq[:, sel] = (qi * per)[:, sel]
    coded = np.any(q != 0, axis=(0, 3))
    side = entropy_bits(choice[coded])
    share = {str(o): float((choice[coded] == i).mean()) for i, o in enumerate(offsets)}
    return q, deq, side, share


def tx16(raw, r16, units, step, mu: float = 1.0, q8=None):
    """Per 16x16 group the cheaper transform; returns (q, pixels, side bits of the flags, share of 16x16)."""
    per = per_pos(units)
    q8 = quant(raw, units) if q8 is None else q8
    q16 = quant(r16, units)
    w = WEIGHT[:raw.shape[0], None, None]
    lam = mu * image_dct.RDOQ_LAMBDA * step**2

    def group_cost(q, r):
        d = (w * ((r - q * per) ** 2).sum(-1)).sum(0) + lam * rdoq_ctx.block_bits(q).sum(0)
        return d.reshape(d.shape[0] // 2, 2, d.shape[1] // 2, 2).sum(axis=(1, 3))

    pick = group_cost(q16, r16) < group_cost(q8, raw)  # (gy, gx)
    sel = np.repeat(np.repeat(pick, 2, 0), 2, 1)
    q = np.where(sel[None, :, :, None], q16, q8)
    c = raw.shape[0]
    pix8 = pixels8(q8 * per)
    d = image_tx16.forward_matrix()
    pix16 = np.einsum("ui,cyxuv,vj->cyxij", d, image_tx16.from_blocks(q16 * per), d)
    gy, gx = pick.shape
    pix16 = pix16.transpose(0, 1, 3, 2, 4).reshape(c, gy * 16, gx * 16)
    pixsel = np.repeat(np.repeat(sel, N, 0), N, 1)
    pix = np.where(pixsel[None], pix16, pix8)
    coded_groups = np.any(q != 0, axis=(0, 3)).reshape(gy, 2, gx, 2).any(axis=(1, 3))
    side = entropy_bits(pick[coded_groups])
    return q, pix, side, float(pick[coded_groups].mean()) if coded_groups.any() else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim01,kodim03,kodim05,kodim07")
    ap.add_argument("--base-rates", default="0.1,0.2,0.35")
    ap.add_argument("--res-steps", default="6,8,10,12,16,20,24")
    ap.add_argument("--tools", default="cfl,dqp,tx16", help="any of cfl, dqp, tx16")
    ap.add_argument("--dqp-offsets", default="-2,-1,0,1,2")
    ap.add_argument("--dqp-mu", type=float, default=1.0)
    ap.add_argument("--tx-mu", type=float, default=1.0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    tools = args.tools.split(",")
    offsets = [int(o) for o in args.dqp_offsets.split(",")]
    steps = [float(s) for s in args.res_steps.split(",")]
    cpu0 = time.process_time()
    result = {"command": "python benchmarks/gdct_rtools_oracle.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
              "git_commit": _commit(), "load_start": os.getloadavg(), "per_image": {}}
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        npx = image.shape[0] * image.shape[1]
        per_base, env_pts = {}, {}
        for rate in [float(r) for r in args.base_rates.split(",")]:
            try:
                base_bytes, base = cached_base(args.cache, stem, rate, 1000)
            except FileNotFoundError:
                print(f"{stem}: no cached base at {rate}", flush=True)
                continue
            raw = image_dct.raw_coefficients(image, base)
            r16 = image_dct.raw_coefficients16(image, base) if "tx16" in tools else None
            curves, extra = {}, []
            for s in steps:
                units = image_dct.step_units(s, 3)
                pts = {}
                q0, deq0, _ = anchor(raw, units)
                b0 = nbytes(q0)
                chroma_share = 1.0 - (nbytes(np.concatenate([q0[:1], 0 * q0[1:]])) - HEADER) / (b0 - HEADER)
                pts["rdoqctx"] = (b0, decoded(base, pixels8(deq0)))
                info = {"step": s, "chroma_bit_share": chroma_share}
                if "cfl" in tools:
                    for mode in ("block_free", "block_q", "image"):
                        q, deq, side = cfl(raw, units, q0, mode)
                        pts[f"cfl_{mode}"] = (nbytes(q) + side / 8, decoded(base, pixels8(deq)))
                    # chroma residual energy the oracle alpha removes (before quantisation)
                    yhat = q0[0] * per_pos(units)[0]
                    e = (yhat**2).sum(-1)
                    left = 0.0
                    for k in (1, 2):
                        a = np.where(e > 0, (raw[k] * yhat).sum(-1) / np.maximum(e, 1e-9), 0.0)
                        left += ((raw[k] - a[..., None] * yhat) ** 2).sum()
                    info["cfl_oracle_chroma_energy_left"] = float(left / (raw[1:] ** 2).sum())
                if "dqp" in tools:
                    q, deq, side, share = dqp(raw, units, offsets, args.dqp_mu, s, q0)
                    nb, rec = nbytes(q), decoded(base, pixels8(deq))
                    pts["dqp_free"], pts["dqp"] = (nb, rec), (nb + side / 8, rec)
                    info["dqp_offset_share"] = share
                if "tx16" in tools:
                    q, pix, side, frac = tx16(raw, r16, units, s, args.tx_mu, q0)
                    nb, rec = nbytes(q), decoded(base, pix)
                    pts["tx16_free"], pts["tx16"] = (nb, rec), (nb + side / 8, rec)
                    info["tx16_group_share"] = frac
                for v, (nb, rec) in pts.items():
                    total = base_bytes + nb
                    curves.setdefault(v, []).append({"step": s, "bytes": total, "bpp": 8 * total / npx,
                                                     "psnr": psnr8(image, rec)})
                extra.append(info)
                print(f"{stem} {rate} step {s}: " + " ".join(f"{v} {c[-1]['bytes']:.0f}B {c[-1]['psnr']:.2f}dB"
                                                            for v, c in curves.items()), flush=True)
            per_base[str(rate)] = {"base_bytes": base_bytes, "curves": curves, "info": extra,
                                   "bd_rate_vs_rdoqctx": {v: bd(curves["rdoqctx"], c) for v, c in curves.items()
                                                          if v != "rdoqctx"}}
            print(f"  {stem} {rate}: {json.dumps(per_base[str(rate)]['bd_rate_vs_rdoqctx'])}", flush=True)
            for v, c in curves.items():
                env_pts.setdefault(v, []).extend(c)
        env = {v: pareto(p) for v, p in env_pts.items()}
        result["per_image"][stem] = {"per_base": per_base, "envelope_bd_rate_vs_rdoqctx": {
            v: bd(env["rdoqctx"], e) for v, e in env.items() if v != "rdoqctx"}}
        print(f"  {stem} envelope: {json.dumps(result['per_image'][stem]['envelope_bd_rate_vs_rdoqctx'])}",
              flush=True)
    variants = [v for v in next(iter(result["per_image"].values()))["envelope_bd_rate_vs_rdoqctx"]]
    result["mean"] = {}
    for v in variants:
        pb = [b["bd_rate_vs_rdoqctx"][v] for r in result["per_image"].values() for b in r["per_base"].values()]
        en = [r["envelope_bd_rate_vs_rdoqctx"][v] for r in result["per_image"].values()]
        result["mean"][v] = {"per_base": float(np.mean([x for x in pb if isinstance(x, float)])),
                             "envelope": float(np.mean([x for x in en if isinstance(x, float)]))}
    result["cpu_s"] = round(time.process_time() - cpu0, 1)
    result["load_end"] = os.getloadavg()
    print(json.dumps(result["mean"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
