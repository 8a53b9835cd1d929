"""Rate-constrained motion of ``mcvideo`` (``inrcodec/models/mcmotion.py``, encoder only): each block's vector is
chosen among a few candidates by prediction error + lambda x bits. Checked on a smooth random texture moved by a
known half-pel shift (so the best vector is known), then on the whole GOP (P chain and B-frames): the decoder is
unchanged and still gives the encoder's closed loop bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec.models import mcmotion, mcvideo
from inrcodec.samples import moving_shapes_video

H, W, B = 64, 96, 16


def _texture(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (H + 16, W + 16)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255)


def _frames(true: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A reference and the frame it predicts: cur(x) = ref(x + true / 2) (the codec's vector convention)."""
    import cv2

    big = _texture()
    ref = big[8:8 + H, 8:8 + W]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    cur = cv2.remap(big, xs + 8 + true[0] / 2, ys + 8 + true[1] / 2, cv2.INTER_LINEAR)
    return np.rint(ref).astype(np.uint8), np.rint(cur).astype(np.uint8)


def _sse(cur, ref, field):
    return mcmotion._shift_sse(cur.astype(np.float32), ref, field, B).sum()


def test_rd_motion_finds_the_true_shift_near_a_noisy_flow():
    true = (3, -2)  # half pels
    ref, cur = _frames(true)
    by, bx = H // B, W // B
    rng = np.random.default_rng(1)
    noisy = np.array(true) + rng.integers(-2, 3, (1, by, bx, 2))  # a flow off by up to 2 half pels per component
    chosen = mcmotion.refine_stream([cur], [ref], noisy, B, np.array([1.0]))
    # with a small lambda the prediction error decides: the true vector in (nearly) every block, far less error
    assert np.mean(np.all(chosen == np.array(true), axis=-1)) >= 0.9
    assert _sse(cur, ref, chosen[0]) < 0.5 * _sse(cur, ref, noisy[0])
    # the decoder's own (interpolated) warp predicts better from the chosen field too
    err = lambda f: np.mean((mcvideo.warp(ref[..., None].repeat(3, -1), f, B)[..., 0].astype(float) - cur) ** 2)
    assert err(chosen[0]) < err(noisy[0])


def test_rd_motion_trades_error_for_bits_as_lambda_grows():
    ref, cur = _frames((1, 0))
    by, bx = H // B, W // B
    rng = np.random.default_rng(2)
    noisy = np.array((1, 0)) + rng.integers(-1, 2, (1, by, bx, 2))
    sizes, errors = [], []
    for lam in (1.0, 1e3, 1e7):
        chosen = mcmotion.refine_stream([cur], [ref], noisy, B, np.array([lam]))
        sizes.append(len(mcvideo.encode_motion(chosen, "med")))
        errors.append(_sse(cur, ref, chosen[0]))
        assert np.abs(chosen).max() <= mcvideo.MAX_MV
    # dearer bits: fewer coded bytes, more prediction error; at a huge lambda every difference to the median
    # predictor is zero (each vector is its neighbours' median: nothing but the field's first vector is coded)
    assert sizes[0] >= sizes[1] >= sizes[2] and sizes[2] < sizes[0]
    assert errors[0] <= errors[1] <= errors[2]
    last = mcmotion.refine_stream([cur], [ref], noisy, B, np.array([1e7]))
    assert np.count_nonzero(last - mcvideo._med_prediction(last)) <= 2


def test_expected_step_falls_with_the_rate():
    steps = [mcmotion.expected_step(b) for b in (0.001, 0.01, 0.05, 0.2, 1.0)]
    assert all(a >= b for a, b in zip(steps, steps[1:])) and steps[0] > steps[-1] > 0


@pytest.mark.parametrize("structure", ["", "hier"])
def test_rd_motion_gop_decodes_to_the_closed_loop(structure):
    from inrcodec.codec import decompress
    from inrcodec.models import mcorder

    x = moving_shapes_video(8, 48, 64).data
    blob = mcvideo.encode_gop(x, 3000, steps=20, structure=structure)  # motion_rd: the default, on
    assert len(blob) <= 3000 * 1.02
    c, cfg = mcvideo._parse(blob)
    decoded = mcvideo.decode_gop(blob)
    intra = decompress(c.sections["intra"]).data
    if structure:
        vectors = mcorder.decode_motion(c.sections["motion"], 8, cfg.mini_gop, cfg.block, cfg.b_block, 48, 64)
        mcorder.WithModes(mcvideo.coder_for(cfg)).decode_symbols(c.sections["residual"], 7, 48, 64, vectors)
        dis = mcorder.hier_motion(mcorder.motion_fields(x, cfg.mini_gop, [cfg.block]), 8, cfg.mini_gop, cfg.block,
                                  cfg.b_block)
        dis_bytes = mcorder.encode_motion(dis)
    else:
        by, bx = -(-48 // cfg.block), -(-64 // cfg.block)
        vectors = mcvideo.decode_motion(c.sections["motion"], (7, by, bx, 2), cfg.motion)
        dis_bytes = mcvideo.encode_motion(mcvideo.motion_fields(x, [cfg.block])[cfg.block], "med")
    coder = mcvideo.coder_for(cfg)
    loop, _ = mcvideo.closed_loop(intra, x, vectors, cfg.block, coder, cfg.frame_steps_with_blocks(vectors, 48, 64),
                                  cfg.deblock)
    assert np.array_equal(loop, decoded)  # the decoder is unchanged and still gives the encoder's loop
    assert c.sections["motion"] != dis_bytes  # the vectors were chosen anew, not DIS's as they are


def _raster_reference(cur, ref, fields, block, lam):
    """The first form of ``refine_stream`` (session 20): blocks decided one at a time in raster order, the
    predictor's error outside the table computed block by block with its own ``cv2.remap``."""
    import cv2

    from inrcodec.models.mcvideo import MAX_MV, MV_SCALE, _med, _med_prediction, _pixel_grid

    def patch_sse(c, r, v, y, x):
        h, w = c.shape
        ys, xs = _pixel_grid(h, w)
        sl = (slice(y * block, min((y + 1) * block, h)), slice(x * block, min((x + 1) * block, w)))
        pred = cv2.remap(r, xs[sl] + np.float32(v[0] / MV_SCALE), ys[sl] + np.float32(v[1] / MV_SCALE),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return float(((pred.astype(np.float32) - c[sl]) ** 2).sum())

    nf, by, bx, _ = fields.shape
    dis = fields.astype(np.int64)
    curf = [c.astype(np.float32) for c in cur]
    rad = mcmotion.RADIUS
    offsets = np.array([(dx, dy) for dy in range(-rad, rad + 1) for dx in range(-rad, rad + 1)])
    cands = np.clip(dis[None] + offsets[:, None, None, None, :], -MAX_MV, MAX_MV)
    table = np.stack([np.stack([3 * mcmotion._shift_sse(curf[f], ref[f], cands[c, f], block) for f in range(nf)])
                      for c in range(len(offsets))])
    rows = np.arange(nf)
    price = mcmotion._prior_bits
    for _ in range(mcmotion.PASSES):
        v = np.zeros_like(dis)
        for y in range(by):
            for x in range(bx):
                if y and x:
                    pred = _med(v[:, y, x - 1], v[:, y - 1, x], v[:, y - 1, x - 1])
                elif x:
                    pred = v[:, y, x - 1]
                elif y:
                    pred = v[:, y - 1, x]
                else:
                    pred = np.zeros((nf, 2), np.int64)
                c = cands[:, :, y, x]
                cost = table[:, :, y, x] + lam[None] * price(c - pred[None]).sum(axis=-1)
                best = np.argmin(cost, axis=0)
                choice, best_cost = c[best, rows], cost[best, rows]
                off = pred - dis[:, y, x]
                inside = np.all(np.abs(off) <= rad, axis=-1)
                idx = (off[:, 1] + rad) * (2 * rad + 1) + off[:, 0] + rad
                pred_bits = lam * price(np.zeros((nf, 2), np.int64)).sum(axis=-1)
                for f in range(nf):
                    e = (table[idx[f], f, y, x] if inside[f] else 3 * patch_sse(curf[f], ref[f], pred[f], y, x))
                    if e + pred_bits[f] < best_cost[f]:
                        choice[f] = pred[f]
                v[:, y, x] = choice
        price = mcmotion._table_bits((v - _med_prediction(v)).ravel())
    return v.astype(np.int32)


@pytest.mark.parametrize("block", [8, 16])
def test_diagonal_order_chooses_what_the_raster_order_chose(block):
    """The anti-diagonal decision (session 21) is a reordering of the raster one, not an approximation: on frames
    of moving shapes (a size that leaves partial blocks) with noisy, far-off flows (so that many predictors fall
    outside the table and take the batched block SSE), several fields and lambdas, every vector is the same."""
    x = moving_shapes_video(4, 52, 76).data
    gray = [mcvideo._gray(f) for f in x]
    by, bx = -(-52 // block), -(-76 // block)
    rng = np.random.default_rng(block)
    fields = rng.integers(-9, 10, (3, by, bx, 2))
    for lam in (np.array([0.5, 20.0, 400.0]), np.array([5e3, 1.0, 60.0])):
        new = mcmotion.refine_stream(gray[1:], gray[:-1], fields, block, lam)
        old = _raster_reference(gray[1:], gray[:-1], fields, block, lam)
        assert np.array_equal(new, old)
        assert np.count_nonzero(new - fields) > 0  # the choice moved vectors (the test is not vacuous)


def test_shift_table_is_the_shift_sse_of_every_candidate():
    """The table's sampling maps moved by each offset (and rebuilt where a candidate was clipped at +-MAX_MV) give
    the errors of ``_shift_sse``, its reference, on frames with partial blocks."""
    x = moving_shapes_video(2, 52, 76).data
    cur, ref = mcvideo._gray(x[1]), mcvideo._gray(x[0])
    rng = np.random.default_rng(3)
    base = rng.integers(-12, 13, (4, 5, 2))
    base[0, 0] = (mcvideo.MAX_MV, -mcvideo.MAX_MV)  # its neighbours' offsets clip there
    offs = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    cands = np.clip(base[None] + np.array(offs)[:, None, None, :], -mcvideo.MAX_MV, mcvideo.MAX_MV)
    table = mcmotion._shift_table(cur, ref, cands, B)
    ref_table = np.stack([mcmotion._shift_sse(cur.astype(np.float32), ref, c, B) for c in cands])
    assert np.array_equal(table, ref_table.astype(np.float64))
