"""Uniform quantisation, fake quantisation for training, and the model-state codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inrcodec.errors import FormatError, InputError
from inrcodec.quant import (
    QuantizedTensor,
    decode_state,
    dequantize,
    encode_state,
    fake_quant,
    float16_fits,
    quantize_for_storage,
    quantize_step,
    quantize_uniform,
    state_values,
)
from inrcodec.quant import state as state_mod

F32_EPS = np.finfo(np.float32).eps


def _rng(seed=0):
    return np.random.default_rng(seed)


def _assert_within_half_step(x, qt):
    err = np.abs(dequantize(qt).astype(np.float64) - x.astype(np.float64))
    # step/2 from rounding, plus float32 rounding of the product q*step
    bound = qt.step_like_q().astype(np.float64) / 2 * (1 + 4 * F32_EPS) + 2 * F32_EPS * np.abs(x)
    assert np.all(err <= bound)


@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_quantize_uniform_error_and_range(bits, axis):
    x = (_rng(bits).normal(0, 1, (16, 24)) * np.logspace(-2, 1, 24)).astype(np.float32)
    qt = quantize_uniform(x, bits, axis)
    qmax = 2 ** (bits - 1) - 1
    assert qt.q.dtype == np.int32 and qt.q.shape == x.shape and qt.step.dtype == np.float32
    assert qt.step.shape == (() if axis is None else (x.shape[axis],))
    assert qt.axis == (None if axis is None else axis % 2)
    assert np.abs(qt.q).max() <= qmax
    # the largest magnitude lands on (or next to) the outermost level: the whole range is used
    assert np.abs(qt.q).max() >= qmax - 1
    _assert_within_half_step(x, qt)
    assert dequantize(qt).dtype == np.float32


def test_quantize_uniform_zero_safe():
    z = np.zeros((3, 5), np.float32)
    qt = quantize_uniform(z, 8)
    assert np.isfinite(qt.step) and qt.step > 0 and not qt.q.any()
    np.testing.assert_array_equal(dequantize(qt), z)
    x = np.stack([np.zeros(5), np.linspace(-1, 1, 5)]).astype(np.float32)  # one all-zero channel
    qt = quantize_uniform(x, 6, axis=0)
    assert np.all(np.isfinite(qt.step)) and not qt.q[0].any()
    _assert_within_half_step(x, qt)


def test_per_channel_beats_per_tensor_on_mixed_scales():
    scales = np.array([1e-3, 1e-2, 1e-1, 1.0], np.float32)
    x = _rng(1).normal(0, 1, (4, 256)).astype(np.float32) * scales[:, None]
    err_t = dequantize(quantize_uniform(x, 6)) - x
    err_c = dequantize(quantize_uniform(x, 6, axis=0)) - x
    # small channels: per-tensor rounds them all to zero, per-channel keeps ~5 bits of each
    for c in range(3):
        assert np.mean(err_c[c] ** 2) < 0.01 * np.mean(err_t[c] ** 2)
    assert np.mean(err_c**2) < np.mean(err_t**2)


def test_quantize_step_fixed_steps():
    x = _rng(2).normal(0, 3, (5, 7)).astype(np.float32)
    qt = quantize_step(x, 0.25)
    assert qt.step == np.float32(0.25) and qt.axis is None
    _assert_within_half_step(x, qt)
    steps = np.linspace(0.1, 1.0, 7).astype(np.float32)
    qt = quantize_step(x, steps, axis=1)
    np.testing.assert_array_equal(qt.step, steps)
    _assert_within_half_step(x, qt)
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(InputError):
            quantize_step(x, bad)
    with pytest.raises(InputError):
        quantize_step(x, steps[:3], axis=1)
    with pytest.raises(InputError):
        quantize_step(x, 1e-12)  # symbols would overflow int32


def test_bad_quantiser_inputs():
    with pytest.raises(InputError):
        quantize_uniform(np.array([1.0, np.nan]), 8)
    with pytest.raises(InputError):
        quantize_uniform(np.ones(3), 1)
    with pytest.raises(InputError):
        quantize_uniform(np.ones((2, 3)), 8, axis=2)


def test_fake_quant_ste_forward_and_gradients():
    x = torch.tensor([-1.26, -0.1, 0.0, 0.3, 0.74, 2.0], requires_grad=True)
    step = torch.tensor(0.25, requires_grad=True)
    y = fake_quant(x, step)
    torch.testing.assert_close(y, torch.round(x.detach() / 0.25) * 0.25)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))  # straight-through
    v = x.detach() / 0.25
    torch.testing.assert_close(step.grad, (torch.round(v) - v).sum())  # LSQ-style step gradient
    # clipping to +-qmax levels, and the result agrees with the numpy quantiser
    xs = torch.linspace(-3, 3, 101)
    y = fake_quant(xs, 0.5, qmax=3)
    qt = quantize_step(np.clip(xs.numpy(), -1.5, 1.5), 0.5)
    np.testing.assert_allclose(y.numpy(), dequantize(qt), atol=1e-6)


def test_fake_quant_noise():
    torch.manual_seed(0)
    x = torch.zeros(20000)
    y = fake_quant(x, 0.5, mode="noise")
    assert y.abs().max() <= 0.25
    assert abs(float(y.mean())) < 0.01 and float(y.var()) == pytest.approx(0.5**2 / 12, rel=0.05)
    with pytest.raises(InputError):
        fake_quant(x, 0.5, mode="bogus")


def test_float16_fits():
    assert float16_fits(np.array([0.5, -2.0, 1024.0, 0.0]))
    assert not float16_fits(np.array([0.1]))
    assert float16_fits(np.array([0.1]), rtol=1e-3)
    assert not float16_fits(np.array([1e5]), rtol=0.1)  # overflows to inf
    assert not float16_fits(np.array([1.0, np.nan]), rtol=1.0)
    assert float16_fits(np.zeros(0))


def _mlp_state(seed=0):
    rng = _rng(seed)
    return {
        "w0": rng.normal(0, 0.3, (32, 2)).astype(np.float32),
        "b0": rng.normal(0, 0.01, 32).astype(np.float32),
        "w1": (rng.normal(0, 1, (32, 32)) * np.logspace(-3, 0, 32)[:, None]).astype(np.float32),
        "b1": np.zeros(32, np.float32),
        "w2": rng.normal(0, 0.1, (3, 32)).astype(np.float32),
        "scalar": np.float32(0.7),
    }


@pytest.mark.parametrize("bits", [3, 6, 8, 12, 15, 16, 32])
@pytest.mark.parametrize("axis", [None, 0, {"w1": 0, "w2": 1}])
def test_state_round_trip_exact(bits, axis):
    t = _mlp_state(bits)
    shapes = {k: np.shape(v) for k, v in t.items()}
    blob = encode_state(t, bits, axis)
    got = decode_state(blob, shapes)
    want = state_values(t, bits, axis)
    assert list(got) == list(t)
    for k in t:
        assert got[k].dtype == np.float32 and got[k].shape == shapes[k]
        np.testing.assert_array_equal(got[k], want[k])
        if bits == 32:
            np.testing.assert_array_equal(got[k], t[k])
        elif bits == 16:
            np.testing.assert_array_equal(got[k], np.asarray(t[k]).astype(np.float16).astype(np.float32))
        else:
            ax = axis.get(k) if isinstance(axis, dict) else (axis if np.ndim(t[k]) >= 2 else None)
            _assert_within_half_step(np.asarray(t[k]), quantize_for_storage(t[k], bits, ax))


def test_state_stored_steps_are_what_decoding_uses():
    x = _rng(3).normal(0, 0.2, (8, 8)).astype(np.float32)
    qt = quantize_for_storage(x, 8)
    assert qt.step == np.float32(np.float16(qt.step))  # float16 step, rounded up: max level still fits
    assert np.abs(qt.q).max() <= 127
    tiny = x * 1e-4  # step below float16's normal range: stored as float32 instead
    qt = quantize_for_storage(tiny, 12)
    assert qt.step != np.float32(np.float16(qt.step))
    got = decode_state(encode_state({"t": tiny}, 12), {"t": tiny.shape})["t"]
    np.testing.assert_array_equal(got, dequantize(qt))


def test_state_mixed_bits_and_float16_fallback():
    t = {"a": np.array([0.5, -1.25, 3.0], np.float32), "big": np.array([1e6, 2.0], np.float32),
         "q": _rng(4).normal(0, 1, 50).astype(np.float32)}
    bits = {"a": 16, "big": 16, "q": 5}
    blob = encode_state(t, bits)
    got = decode_state(blob, {k: v.shape for k, v in t.items()})
    np.testing.assert_array_equal(got["a"], t["a"])  # exactly representable: lossless in float16
    np.testing.assert_array_equal(got["big"], t["big"])  # would overflow float16: kept as float32
    assert np.abs(got["q"] - t["q"]).max() <= np.abs(t["q"]).max() / 15 / 2 * 1.01
    with pytest.raises(InputError):
        encode_state(t, {"a": 16})  # no bits for "big"
    with pytest.raises(InputError):
        encode_state(t, 1)
    with pytest.raises(InputError):
        encode_state({"x": np.array([np.inf])}, 8)


def test_state_picks_shared_stream_when_smaller():
    rng = _rng(5)
    t = {f"t{i}": np.rint(rng.laplace(0, 2, 12)).astype(np.float32) for i in range(8)}  # many tiny tensors
    plans = [state_mod._plan(k, v, 6, None) for k, v in t.items()]
    separate = state_mod._write(plans, "auto", joint=False)
    joint = state_mod._write(plans, "auto", joint=True)
    blob = encode_state(t, 6)
    assert len(blob) == min(len(separate), len(joint))
    assert len(joint) < len(separate)  # eight headers and tables cost more than one
    got = decode_state(blob, {k: v.shape for k, v in t.items()})
    want = state_values(t, 6)
    for k in t:
        np.testing.assert_array_equal(got[k], want[k])


def test_state_empty_and_zero_size_tensors():
    assert encode_state({}, 8) == b""
    assert decode_state(b"", {}) == {}
    t = {"e": np.zeros((0, 4), np.float32), "z": np.zeros(6, np.float32)}
    got = decode_state(encode_state(t, 8, axis=0), {"e": (0, 4), "z": (6,)})
    assert got["e"].shape == (0, 4) and not got["z"].any()


def test_state_corrupt_blobs_raise_format_error():
    t = _mlp_state(7)
    shapes = {k: np.shape(v) for k, v in t.items()}
    for axis in (None, 0):
        blob = encode_state(t, 8, axis)
        for cut in range(len(blob)):
            with pytest.raises(FormatError):
                decode_state(blob[:cut], shapes)
        with pytest.raises(FormatError):
            decode_state(blob + b"\x00", shapes)
    with pytest.raises(FormatError):
        decode_state(encode_state(t, 8), {**shapes, "w0": (2**30,)})  # beyond the count cap
    with pytest.raises(FormatError):
        decode_state(b"\x11", {"x": (4,)})  # per-channel axis 1 on a 1-D tensor
    accepted = 0
    for seed in range(500):
        rng = _rng(seed)
        try:
            out = decode_state(rng.bytes(int(rng.integers(1, 64))), {"a": (4, 3), "b": (3,)})
            assert out["a"].shape == (4, 3) and out["b"].shape == (3,)
            accepted += 1
        except FormatError:
            pass
    assert accepted <= 5, accepted


def test_quantized_tensor_broadcast_helper():
    qt = QuantizedTensor(np.ones((2, 3, 4), np.int32), np.array([1.0, 2.0, 3.0], np.float32), axis=1)
    np.testing.assert_array_equal(dequantize(qt)[0, :, 0], [1.0, 2.0, 3.0])
