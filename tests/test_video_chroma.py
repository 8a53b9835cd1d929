"""The ``dct2`` residual's chroma step ratio (GOP config ``chroma`` in 1/16 of the luma step, session 21): GOPs that
carry it decode to the encoder's closed loop, both structures; files without it are the form before (2.0) byte for
byte; its per-block steps are integer; bad values are one-line format errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inrcodec.codec import decompress
from inrcodec.container import Container, read_container, write_container
from inrcodec.errors import FormatError
from inrcodec.models import mcdct2, mcorder, mcvideo
from inrcodec.samples import moving_shapes_video

H, W = 48, 64


def _frames(n: int = 8) -> np.ndarray:
    return moving_shapes_video(n, H, W).data


def _loop_of(blob: bytes, x: np.ndarray) -> tuple[np.ndarray, bytes]:
    """The encoder's closed loop re-run from a GOP's coded intra frame, motion and steps; and its residual bytes."""
    c, cfg = mcvideo._parse(blob)
    intra = decompress(c.sections["intra"]).data
    n = len(x)
    if cfg.structure:
        vectors = mcorder.decode_motion(c.sections["motion"], n, cfg.mini_gop, cfg.block, cfg.b_block, H, W)
        coder = mcorder.WithModes(mcvideo.coder_for(cfg))
    else:
        vectors = mcvideo.decode_motion(c.sections["motion"], (n - 1, -(-H // cfg.block), -(-W // cfg.block), 2),
                                        cfg.motion)
        coder = mcvideo.coder_for(cfg)
    loop, syms = mcvideo.closed_loop(intra, x, vectors, cfg.block, coder, cfg.frame_steps_with_blocks(vectors, H, W),
                                     cfg.deblock)
    return loop, coder.encode_symbols(syms)


@pytest.mark.parametrize("structure", ["", "hier"])
def test_chroma_gop_decodes_to_the_closed_loop(structure):
    x = _frames()
    blob = mcvideo.encode_gop(x, 2500, steps=20, structure=structure)
    c, cfg = mcvideo._parse(blob)
    assert cfg.chroma == mcvideo.CHROMA == 24 and c.config["chroma"] == 24 and cfg.block_steps
    assert isinstance(mcvideo.coder_for(cfg), mcdct2.Coder)
    loop, residual = _loop_of(blob, x)
    assert np.array_equal(mcvideo.decode_gop(blob), loop)
    assert residual == c.sections["residual"]


def test_without_chroma_the_form_before_and_its_coder():
    x = _frames(4)
    blob = mcvideo.encode_gop(x, 1800, steps=10, chroma=0)
    c, cfg = mcvideo._parse(blob)
    assert "chroma" not in c.config and cfg.chroma == 0 and mcvideo.coder_for(cfg) is mcdct2
    loop, residual = _loop_of(blob, x)
    assert np.array_equal(mcvideo.decode_gop(blob), loop) and residual == c.sections["residual"]


def test_chroma_steps_of_the_blocks_are_integer_ratios():
    luma = np.array([[16, 17], [100, 4096]])
    # 32 (2.0): the form before exactly; 24 (1.5): rounded half up, in integer arithmetic
    assert np.array_equal(mcdct2.block_units(luma, 2, 2), np.stack([luma.ravel(), 2 * luma.ravel(),
                                                                      2 * luma.ravel()], 1))
    assert mcdct2.block_units(luma, 2, 2, 24)[:, 1].tolist() == [24, 26, 150, 6144]
    assert mcdct2.block_units(3.0, 2, 2, 24).tolist() == [48, 72, 72]
    assert np.array_equal(mcdct2.block_units(3.0, 2, 2, 32), mcdct2.block_units(3.0, 2, 2))
    # a coarser chroma ratio codes chroma at a coarser step: same residual, fewer non-zero chroma symbols
    rng = np.random.default_rng(0)
    res = rng.normal(0, 6, (H, W, 3))
    z32, _ = mcdct2.analyse(res, 4.0, 32)
    z16, _ = mcdct2.analyse(res, 4.0, 16)
    assert np.count_nonzero(z16[1:]) > np.count_nonzero(z32[1:])


def _with_config(blob: bytes, **change) -> bytes:
    c = read_container(blob)
    return write_container(Container(c.signal, c.model, {**c.config, **change}, c.sections))


def test_bad_chroma_is_a_format_error():
    blob = mcvideo.encode_gop(_frames(4), 1800, steps=10)
    for bad in (7, 65, 24.0, -1, "24", True):
        with pytest.raises(FormatError, match="chroma"):
            mcvideo._parse(_with_config(blob, chroma=bad))
    with pytest.raises(FormatError):  # only the dct2 residual has it
        mcvideo._parse(_with_config(blob, chroma=24, residual="dct", structure="", mini_gop=0, b_block=0,
                                    block_steps=[]))
    assert json.dumps(mcvideo._parse(blob)[0].config["chroma"]) == "24"
