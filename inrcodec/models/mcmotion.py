"""Rate-constrained block motion for ``mcvideo`` (encoder only: the bitstream and the decoder are unchanged).

DIS optical flow averaged over a block is a fair vector for the block, but neither the best predictor (the mean
flow is not the shift of least error) nor the cheapest to code (its small spatial noise makes most median
differences non-zero). x264 chooses each vector by SAD + lambda x bits(vector - predictor); this module does the
same for every coded field (the P chain's, the anchors', the B frames' forward and backward fields): per block,
among the vectors within ``RADIUS`` half pels of the DIS vector and the median predictor itself (a difference of
zero: H.264's spatial direct vector), the one of least SSE(prediction) + lambda x bits(difference).

- *Prediction error* of a candidate: the reference shifted by that vector over the block (block-constant, as a
  block matcher sees it; the decoder interpolates the field between block centres), luma only, times 3 to stand
  for the RGB SSE the mode decision uses; open loop, on the source frames (the motion is chosen before the intra
  frame is fitted, so that its bytes are known first). Tabled for the whole window first (one whole-frame shift
  per offset).
- *Bits*: of each component of the difference to the causal median predictor, priced first by an exp-Golomb-like
  length, then by the stream's own histogram (it is coded by one static model: ``encode_ints``); blocks decided in
  raster order, so each sees its true predictor (a first form deciding all blocks at once against the previous
  sweep's predictors moved vectors as well, but its rate term did not settle: neighbours jumped together).
- *lambda* = ``mcorder.MODE_LAMBDA`` x step^2 x ``scale`` per bit (as the B-mode decision), the step being each
  frame's expected luma residual step (``expected_step``): the motion is chosen before the residual step search.

Measured (docs/video.md, session 20): the chosen fields predict 24 frames of the shared clip at 31.8 dB against
30.4 dB for the DIS vectors, with fewer motion bytes; whole codec -15 % BD-rate at equal intra work.
"""

from __future__ import annotations

import numpy as np

RADIUS = 2  # half pels around the DIS vector whose prediction error is tabled
# the encoder refines a block size's fields only where their DIS motion is within REACH x its motion cap: the choice
# saved 13-32 % of the motion bytes on the shared clip (24 frames at 640x360), so farther ones cannot fit anyway
REACH = 1.6
PASSES = 2  # decisions in raster order: the first with the prior bits, then with the previous pass's histogram
# The expected luma step (levels) of a GOP's residual from the bits per predicted pixel it gets: a power law through
# the base steps the encoder settled on for the shared clip at 640x360, 24 frames, 300-step intra fits, DIS motion
# (results/video_bytes_breakdown_s20.json): 180 / 77 / 40 levels at 0.0134 / 0.0359 / 0.0766 bits per predicted
# pixel (slope -0.86 on both intervals). Only lambda depends on it: a clip far from it gets a more or less
# rate-weighted choice, never a wrong decode.
STEP_AT, BPP_AT, STEP_SLOPE = 180.0, 0.0134, -0.86


def expected_step(residual_bpp: float) -> float:
    from .mcvideo import MAX_RESIDUAL_STEP

    return float(np.clip(STEP_AT * (max(residual_bpp, 1e-6) / BPP_AT) ** STEP_SLOPE, 1.0, MAX_RESIDUAL_STEP))


def _shift_sse(cur: np.ndarray, ref: np.ndarray, field: np.ndarray, block: int) -> np.ndarray:
    """(by, bx) SSE of ``cur`` against ``ref`` shifted per block by ``field`` (1/MV_SCALE pixels)."""
    import cv2

    from .mcvideo import MV_SCALE, _pixel_grid

    h, w = cur.shape
    by, bx = field.shape[:2]
    dense = np.repeat(np.repeat(field.astype(np.float32) / MV_SCALE, block, 0), block, 1)[:h, :w]
    ys, xs = _pixel_grid(h, w)
    pred = cv2.remap(ref, xs + dense[..., 0], ys + dense[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    err = (pred.astype(np.float32) - cur) ** 2
    pad = np.pad(err, ((0, by * block - h), (0, bx * block - w)))
    return pad.reshape(by, block, bx, block).sum(axis=(1, 3))


def _shift_table(cur: np.ndarray, ref: np.ndarray, cands: np.ndarray, block: int) -> np.ndarray:
    """(C, by, bx) SSE of ``cur`` (uint8) against ``ref`` shifted per block by each candidate field ``cands[c]``
    ((C, by, bx, 2), 1/MV_SCALE pixels): ``_shift_sse`` of every candidate (its reference), with the sampling
    maps built once and moved by each candidate's offset where it is one offset for all blocks (exact: multiples
    of 1/MV_SCALE), and the errors summed in integers (exact; float32 sums were not above 2^24)."""
    import cv2

    from .mcvideo import MV_SCALE, _pixel_grid

    h, w = cur.shape
    nc, by, bx = cands.shape[:3]
    ys, xs = _pixel_grid(h, w)

    def maps(field):
        dense = np.repeat(np.repeat(field.astype(np.float32) / MV_SCALE, block, 0), block, 1)[:h, :w]
        return xs + dense[..., 0], ys + dense[..., 1]

    base = cands[nc // 2]
    mx0, my0 = maps(base)
    out = np.empty((nc, by, bx), np.float64)
    for c in range(nc):
        off = cands[c, 0, 0] - base[0, 0]
        if np.all(cands[c] - base == off):  # one offset (no clipping at +-MAX_MV): move the maps
            mx, my = mx0 + np.float32(off[0] / MV_SCALE), my0 + np.float32(off[1] / MV_SCALE)
        else:
            mx, my = maps(cands[c])
        pred = cv2.remap(ref, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sq = cv2.absdiff(pred, cur).astype(np.int32) ** 2
        if h % block or w % block:
            sq = np.pad(sq, ((0, by * block - h), (0, bx * block - w)))
        out[c] = sq.reshape(by * block, bx, block).sum(axis=2).reshape(by, block, bx).sum(axis=1)
    return out


def _prior_bits(d: np.ndarray) -> np.ndarray:
    a = np.abs(d).astype(np.float64)
    return np.where(a == 0, 1.0, 2.0 + 2.0 * np.log2(np.maximum(a, 1)))


def _table_bits(deltas: np.ndarray):
    """Bits of each difference value under the stream's own histogram (add-half smoothing; values it never holds
    priced by the prior plus the cost of its rarest value)."""
    lo = int(deltas.min())
    counts = np.bincount(deltas - lo)
    seen = counts > 0
    p = (counts + 0.5) / (counts.sum() + 0.5 * seen.sum())
    table = np.where(seen, -np.log2(p), np.nan)
    worst = float(np.nanmax(table))

    def price(d: np.ndarray) -> np.ndarray:
        i = d - lo
        inside = (i >= 0) & (i < len(table))
        out = np.full(d.shape, np.nan)
        out[inside] = table[i[inside]]
        miss = np.isnan(out)
        out[miss] = worst + _prior_bits(d[miss])
        return out

    return price


def _patch_sses(cur: np.ndarray, ref: np.ndarray, vecs: np.ndarray, block: int, ys: np.ndarray,
                xs: np.ndarray) -> np.ndarray:
    """SSE of blocks (ys[i], xs[i]) of ``cur`` (float32, padded to whole blocks) against ``ref`` shifted by vecs[i]
    (1/MV_SCALE pixels): one ``cv2.remap`` over the blocks side by side, the same sampling as ``_shift_sse``
    (each output pixel depends only on its own coordinates). Pixels outside the frame do not count; the sums are
    float64 of float32 squares, i.e. exact."""
    import cv2

    from .mcvideo import MV_SCALE

    h, w = ref.shape
    k = len(ys)
    r = np.arange(block, dtype=np.float32)
    dy = (vecs[:, 1] / MV_SCALE).astype(np.float32)
    dx = (vecs[:, 0] / MV_SCALE).astype(np.float32)
    # (integer pixel position) + (shift), both float32 as in _shift_sse: exact multiples of 1/MV_SCALE
    my = (ys * block).astype(np.float32)[:, None, None] + r[None, :, None] + dy[:, None, None]
    mx = (xs * block).astype(np.float32)[:, None, None] + r[None, None, :] + dx[:, None, None]
    my, mx = np.broadcast_to(my, (k, block, block)), np.broadcast_to(mx, (k, block, block))
    pred = cv2.remap(ref, np.ascontiguousarray(mx).reshape(k * block, block),
                     np.ascontiguousarray(my).reshape(k * block, block), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).reshape(k, block, block)
    by, bx = -(-h // block), -(-w // block)
    blocks = cur.reshape(by, block, bx, block).transpose(0, 2, 1, 3)[ys, xs]
    err = (pred.astype(np.float32) - blocks) ** 2
    if h % block or w % block:  # the last row / column of blocks sticks out of the frame
        inside = ((ys * block)[:, None, None] + r[None, :, None] < h) & ((xs * block)[:, None, None] + r[None, None, :] < w)
        err = np.where(inside, err, np.float32(0))
    return err.sum(axis=(1, 2), dtype=np.float64)


def _diagonal_predictors(v: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(F, K, 2) causal median predictors of blocks (ys, xs) from the decided vectors ``v`` (as ``_med_prediction``:
    0 at the first block, the left one along the first row, the top one down the first column, else ``_med``)."""
    from .mcvideo import _med

    yl, xl = np.maximum(ys - 1, 0), np.maximum(xs - 1, 0)
    left, top, top_left = v[:, ys, xl], v[:, yl, xs], v[:, yl, xl]
    has_y, has_x = (ys > 0)[None, :, None], (xs > 0)[None, :, None]
    med = _med(left, top, top_left)
    return np.where(has_y & has_x, med, np.where(has_x, left, np.where(has_y, top, 0)))


def refine_stream(cur: list[np.ndarray], ref: list[np.ndarray], fields: np.ndarray, block: int,
                  lam: np.ndarray) -> np.ndarray:
    """One coded stream of fields ((F, by, bx, 2), coded together by one model): per field f the luma frames
    ``cur[f]`` (predicted) and ``ref[f]`` (its reference, uint8), ``lam[f]`` the lambda (RGB SSE per bit).
    Returns the chosen fields (same shape, int32).

    The prediction error of every vector within ``RADIUS`` half pels of the DIS vector is tabled first (one
    whole-frame shift per offset); then the blocks are decided in raster order, all fields at once, each against
    its true causal median predictor (the predictor itself is a candidate, its error computed on the block alone
    when it lies outside the table), the bits priced first by the prior, then (``PASSES``) by the histogram of the
    differences the previous pass chose.

    A block's decision depends only on its left, top and top-left neighbours' (through the predictor; the prices
    are fixed within a pass), so the blocks of one anti-diagonal (y + x = d) are decided together, in by + bx - 1
    vectorised steps instead of by x bx: the same choices as the raster order (session 21: 4-6x less CPU)."""
    from .mcvideo import MAX_MV, _med_prediction

    if len(fields) == 0:
        return fields.copy()
    nf, by, bx, _ = fields.shape
    h, w = cur[0].shape
    dis = fields.astype(np.int64)
    curf = [c.astype(np.float32) for c in cur]
    padded = [np.pad(c, ((0, by * block - h), (0, bx * block - w))) for c in curf]
    offsets = np.array([(dx, dy) for dy in range(-RADIUS, RADIUS + 1) for dx in range(-RADIUS, RADIUS + 1)])
    cands = np.clip(dis[None] + offsets[:, None, None, None, :], -MAX_MV, MAX_MV)  # (C, F, by, bx, 2)
    table = 3 * np.stack([_shift_table(cur[f], ref[f], cands[:, f], block) for f in range(nf)], axis=1)  # (C, F, ...)
    diagonals = []
    for d in range(by + bx - 1):
        ys = np.arange(max(0, d - bx + 1), min(by, d + 1))
        diagonals.append((ys, d - ys))
    price = _prior_bits
    for _ in range(PASSES):
        v = np.zeros_like(dis)
        pred_bits = (lam * price(np.zeros((nf, 2), np.int64)).sum(axis=-1))[:, None]  # (F, 1)
        for ys, xs in diagonals:
            pred = _diagonal_predictors(v, ys, xs)  # (F, K, 2)
            c = cands[:, :, ys, xs]  # (C, F, K, 2)
            cost = table[:, :, ys, xs] + lam[None, :, None] * price(c - pred[None]).sum(axis=-1)
            best = np.argmin(cost, axis=0)[None]  # (1, F, K)
            choice = np.take_along_axis(c, best[..., None], axis=0)[0]
            best_cost = np.take_along_axis(cost, best, axis=0)[0]
            # the predictor itself (a zero difference): from the table where it lies there, else block by block
            off = pred - dis[:, ys, xs]
            inside = np.all(np.abs(off) <= RADIUS, axis=-1)  # (F, K)
            idx = np.where(inside, (off[..., 1] + RADIUS) * (2 * RADIUS + 1) + off[..., 0] + RADIUS, 0)
            e = np.take_along_axis(table[:, :, ys, xs], idx[None], axis=0)[0].astype(np.float64)
            for f in np.flatnonzero(~inside.all(axis=1)):
                out = np.flatnonzero(~inside[f])
                e[f, out] = 3 * _patch_sses(padded[f], ref[f], pred[f, out], block, ys[out], xs[out])
            take = e + pred_bits < best_cost
            choice[take] = pred[take]
            v[:, ys, xs] = choice
        price = _table_bits((v - _med_prediction(v)).ravel())
    return v.astype(np.int32)


def refine_motion(window: np.ndarray, vectors, block: int, steps: np.ndarray, scale: float):
    """The GOP's motion (the P chain's (n-1, by, bx, 2) array or an ``mcorder.HierMotion``) with every field chosen
    by ``refine_stream``; ``steps``: the expected luma step of each predicted frame (display order, levels)."""
    from .mcorder import MODE_LAMBDA, HierMotion
    from .mcvideo import _gray

    gray = [_gray(f) for f in window]
    lam = MODE_LAMBDA * scale * np.asarray(steps, np.float64) ** 2  # per predicted frame, display order

    def stream(fields, pairs, blk):
        return refine_stream([gray[c] for c, _ in pairs], [gray[r] for _, r in pairs], fields, blk,
                             np.array([lam[c - 1] for c, _ in pairs]))

    if not isinstance(vectors, HierMotion):
        return stream(vectors, [(k + 1, k) for k in range(len(vectors))], block)
    plan = vectors.plan
    p_pairs = [(f.frame, f.refs[0]) for f in plan if not f.is_b]
    f_pairs = [(f.frame, f.refs[0]) for f in plan if f.is_b]
    b_pairs = [(f.frame, f.refs[1]) for f in plan if f.is_b]
    return HierMotion(vectors.n, vectors.mini_gop, vectors.block, vectors.b_block,
                      stream(vectors.anchors, p_pairs, vectors.block),
                      stream(vectors.forward, f_pairs, vectors.b_block),
                      stream(vectors.backward, b_pairs, vectors.b_block))
