"""Per-block residual steps of mcvideo derived from the decoded motion (``inrcodec/models/blocktree.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec.container import Container, read_container, write_container
from inrcodec.errors import FormatError
from inrcodec.models import blocktree, deblock, mcdct2
from inrcodec.models import mcvideo as mc

ONE, RHO = blocktree.ONE, blocktree.RHO_UNIT


def test_static_chain_weights_are_the_geometric_sums_of_rho():
    # 4 frames, no motion: frame k's blocks are inherited by the n-1-k later frames, a fraction rho per frame
    vectors = np.zeros((3, 2, 3, 2), np.int32)
    w = blocktree.propagate(blocktree.p_chain(vectors, 16, 8, 4, 6), 4, 6, 8, RHO // 2)
    assert w.dtype == np.int64 and w.shape == (4, 4, 6)
    for k, expect in enumerate((1 + 0.5 + 0.25 + 0.125, 1 + 0.5 + 0.25, 1 + 0.5, 1.0)):
        assert np.all(w[k] == w[k, 0, 0])  # uniform: every block sends all to the block under it
        assert abs(w[k, 0, 0] / ONE - expect) < 1e-3  # floor divisions lose < 1/ONE each


def test_weight_goes_where_the_vectors_point_split_by_overlap_and_is_lost_outside():
    gy, gx = 2, 4
    # frame 1 references frame 0, every block half a cell (4 px = 8 half-pixels) to the right
    v = np.zeros((gy, gx, 2), np.int32)
    v[..., 0] = 8
    f = [blocktree.CodedFrame(()), blocktree.CodedFrame((0,), (v,))]
    w = blocktree.propagate(f, gy, gx, 8, RHO - 1)
    sent = (ONE * (RHO - 1)) // RHO
    # column 0 gets half of block 0's; columns 1..3 get half of their own and half of their left neighbour's;
    # the right half of block 3 falls outside the frame and is lost
    half = sent * 128 // 256  # a square half over each of two cells
    assert np.all(w[0][:, 0] == ONE + half)
    assert np.all(w[0][:, 1:] == ONE + 2 * half)
    assert np.all(w[1] == ONE)
    # a block pointing wholly outside the reference sends nothing
    v[..., 0] = 1000
    assert np.all(blocktree.propagate(f, gy, gx, 8, RHO - 1)[0] == ONE)


def test_bi_prediction_modes_split_the_weight_between_references():
    gy, gx = 1, 3
    zero = np.zeros((gy, gx, 2), np.int32)
    mode = np.array([[0, 1, -1]])  # block 0 from ref 0, block 1 from ref 1, block 2 the average of both
    frames = [blocktree.CodedFrame(()), blocktree.CodedFrame((0,), (zero,)),
              blocktree.CodedFrame((0, 1), (zero, zero), mode)]
    w = blocktree.propagate(frames, gy, gx, 8, RHO // 2)
    amount = ONE // 2
    # frame 1 receives from frame 2: block 1 all, block 2 half, block 0 nothing
    assert list(w[1, 0]) == [ONE, ONE + amount, ONE + amount // 2]
    # frame 0 receives from frame 2 (block 0 all, block 2 half) and from frame 1 (its weight x rho)
    assert w[0, 0, 0] == ONE + amount + ONE // 2
    assert w[0, 0, 1] == ONE + (ONE + amount) // 2
    assert w[0, 0, 2] == ONE + amount // 2 + (ONE + amount // 2) // 2
    with pytest.raises(ValueError):  # a reference after the frame in coding order
        blocktree.propagate([blocktree.CodedFrame((1,), (zero,)), blocktree.CodedFrame(())], gy, gx, 8, 10)


def test_step_offsets_follow_the_weight_and_match_the_formula():
    w = np.array([[ONE, 2 * ONE, 4 * ONE, 8 * ONE]], np.int64)
    off = blocktree.step_offsets(w, 33)
    assert off.dtype == np.int64 and np.all(np.diff(off[0]) <= 0)  # heavier blocks: finer steps
    assert np.all(blocktree.step_offsets(np.full((2, 3), 5 * ONE), 33) == 0)  # uniform: the frame's step
    rng = np.random.default_rng(1)
    w = rng.integers(ONE, 40 * ONE, (20, 20))
    for strength in (20, 33, 60):
        off = blocktree.step_offsets(w, strength)
        mean = w.sum() // w.size
        expect = np.clip(np.rint(-4 * strength / 100 * np.log2(w / mean)), -blocktree.LEVELS, blocktree.LEVELS)
        close = np.abs(-4 * strength / 100 * np.log2(w / mean) % 1 - 0.5) < 1e-3  # at a boundary: either
        assert np.all((off == expect) | close)
        assert np.all(blocktree.step_offsets(w, strength, ONE) <= 0)  # relative to an unreferenced block
    units = blocktree.block_units(160, np.array([-blocktree.LEVELS, 0, 4, blocktree.LEVELS]))
    assert list(units) == [57, 160, 320, 453]  # 160 x 2^(d / 4) in 1/16 levels, from the integer table


def test_constant_step_map_codes_exactly_like_one_step():
    rng = np.random.default_rng(0)
    h, w = 40, 56
    by, bx = -(-h // 8), -(-w // 8)
    pred = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    res = rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    step = 3.0
    z, _ = mcdct2.analyse(res, step)
    zm, _ = mcdct2.analyse(res, np.full((by, bx), 48, np.int64))
    assert np.array_equal(z, zm)
    a = mcdct2.add(pred, z, step, deblock.DEFAULT_STRENGTH)
    b = mcdct2.add(pred, z, np.full((by, bx), 48, np.int64), deblock.DEFAULT_STRENGTH)
    assert np.array_equal(a, b)
    # a finer step in half of the blocks codes more symbols there and decodes closer to the source
    fine = np.full((by, bx), 48, np.int64)
    fine[:, : bx // 2] = 12
    zf, _ = mcdct2.analyse(res, fine)
    left = (slice(None), slice(None), slice(0, bx // 2))
    assert np.count_nonzero(zf[left]) > np.count_nonzero(z[left])
    src = np.clip(pred.astype(np.float32) + res, 0, 255)
    dec = mcdct2.add(pred, zf, fine, 0).astype(np.float32)
    coarse = mcdct2.add(pred, z, step, 0).astype(np.float32)
    cols = slice(0, 8 * (bx // 2))
    assert np.mean((dec[:, cols] - src[:, cols]) ** 2) < np.mean((coarse[:, cols] - src[:, cols]) ** 2)


def test_deblocking_uses_the_mean_step_of_the_two_blocks_at_an_edge():
    frame = np.zeros((16, 24, 3), np.uint8)
    frame[:, 8:] = 6  # a step of 6 levels at x = 8, none at x = 16
    coded = np.ones((2, 3), bool)
    units = np.full((2, 3), 16, np.int64)  # step 1 level: alpha 2 < 6, the edge is kept
    assert np.array_equal(deblock.deblock(frame, coded, units, 12), deblock.deblock(frame, coded, 16, 12))
    assert np.array_equal(deblock.deblock(frame, coded, units, 12), frame)
    units[:, 1] = 16 * 8  # the right block coarse: mean step 4.5 levels, alpha 6.75 > 6: filtered
    out = deblock.deblock(frame, coded, units, 12)
    assert out[0, 7, 0] > 0 and out[0, 8, 0] < 6
    # the same as one step of that mean everywhere (the frame has no other edge to filter)
    assert np.array_equal(out, deblock.deblock(frame, coded, (16 + 128 + 1) >> 1, 12))


def _clip(n=8, h=48, w=64):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    bg = np.stack([40 + 2 * x, 60 + 3 * y, 90 + (x + y)], -1).astype(float) + rng.normal(0, 8, (h, w, 3))
    frames = []
    for t in range(n):
        f = bg.copy()
        f[10:26, 5 + 3 * t:21 + 3 * t] = [230, 200, 60]
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(frames)


def test_gop_with_block_steps_decodes_to_the_closed_loop_and_bad_configs_are_format_errors():
    from inrcodec.codec import decompress

    x = _clip()
    n, h, w = x.shape[:3]
    blob = mc.encode_gop(x, 3000, steps=20, block_strength=0.33, block_propagation=0.7, structure="")
    c, cfg = mc._parse(blob)
    assert cfg.block_steps == [33, round(0.7 * RHO)]
    vectors = mc.decode_motion(c.sections["motion"], (n - 1, -(-h // cfg.block), -(-w // cfg.block), 2), cfg.motion)
    maps = cfg.frame_steps_with_blocks(vectors, h, w)
    assert len(maps) == n - 1 and all(m.shape == (6, 8) for m in maps)
    assert any(len(np.unique(m)) > 1 for m in maps)  # the steps vary within frames
    assert np.all(maps[-1] == cfg.frame_steps[-1])  # nothing inherits from the last frame: its own step
    intra = decompress(c.sections["intra"]).data
    loop, _ = mc.closed_loop(intra, x, vectors, cfg.block, mc.coder_for(cfg), maps, cfg.deblock)
    assert np.array_equal(mc.decode_gop(blob), loop)
    for bad in ([33], [0, 10], [101, 10], [33, RHO], [33.0, 10], "33", [33, -1]):
        conf = dict(c.config, block_steps=bad)
        with pytest.raises(FormatError):
            mc.decode_gop(write_container(Container(c.signal, c.model, conf, c.sections)))
    conf = dict(c.config, residual="dct")  # per-block steps belong to the "dct2" form only
    conf["deblock"] = 0
    with pytest.raises(FormatError):
        mc.decode_gop(write_container(Container(c.signal, c.model, conf, c.sections)))
    # without block steps the stored config has no such key (the earlier forms, byte for byte)
    plain = mc.encode_gop(x, 3000, steps=20, block_strength=0, structure="")
    assert "block_steps" not in read_container(plain).config


def test_hierarchical_gop_with_block_steps_propagates_through_both_references_and_decodes_to_the_closed_loop():
    from inrcodec.codec import decompress
    from inrcodec.models import mcorder

    x = _clip(9)
    n, h, w = x.shape[:3]
    blob = mc.encode_gop(x, 3000, steps=20, structure="hier", mini_gop=4, block_strength=1.0, block_propagation=0.9)
    c, cfg = mc._parse(blob)
    assert cfg.structure == "hier" and cfg.block_steps == [100, round(0.9 * RHO)]
    motion = mcorder.decode_motion(c.sections["motion"], n, cfg.mini_gop, cfg.block, cfg.b_block, h, w)
    coder = mcorder.WithModes(mc.coder_for(cfg))
    coder.decode_symbols(c.sections["residual"], n - 1, h, w, motion)  # sets motion.modes (the decoded ones)
    maps = cfg.frame_steps_with_blocks(motion, h, w)
    assert len(maps) == n - 1 and all(m.shape == (6, 8) for m in maps)
    # the B frames of the deepest level (odd frames with M = 4) are referenced by nothing: their own step only
    for k in (1, 3, 5, 7):
        assert np.all(maps[k - 1] == cfg.frame_steps[k - 1])
    assert any(len(np.unique(maps[k - 1])) > 1 for k in (2, 4, 8))  # referenced frames: steps vary within frames
    # the weights the maps come from: every B frame sends half of its weight to each of its two references
    frames, place = mc._tree_frames(motion, cfg.block, 6, 8)
    plan = mcorder.coding_order(n, 4)
    assert [len(frames[place[f.frame - 1]].refs) for f in plan] == [len(f.refs) for f in plan]
    intra = decompress(c.sections["intra"]).data
    loop, syms = mc.closed_loop(intra, x, motion, cfg.block, coder, maps, cfg.deblock)
    assert np.array_equal(mc.decode_gop(blob), loop)
    assert coder.encode_symbols(syms) == c.sections["residual"]
