"""The error-bounded coder: bound semantics (SZ3's ABS/REL), non-finite values, determinism, hostile payloads.

Every bound check is the contract itself (|x - y| <= E over the finite values, computed in float64, no slack):
the encoder verifies its own decoded stream, so any slack here would hide a real bug.
"""

import struct

import numpy as np
import pytest

from inrcodec.bounded import decode_bounded, encode_bounded, encode_verified, max_violation
from inrcodec.bounded import interp
from inrcodec.bounded.field import absolute_bound, finite_range
from inrcodec.codec import compress, decompress
from inrcodec.errors import FormatError, InputError
from inrcodec.signal import Signal


def smooth_field(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    f = np.zeros(shape)
    for _ in range(4):
        k = rng.uniform(1, 6, len(shape))
        f += rng.normal() * np.sin(sum(ki * g for ki, g in zip(k, grids)) * np.pi + rng.uniform(0, 6))
    return (f * 40 + 7).astype(dtype)


def rough_field(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (smooth_field(shape, seed, np.float64) + rng.standard_t(3, shape) * 5).astype(dtype)


def roundtrip(x, bound, **kw):
    blob, stats = encode_bounded(x, bound, **kw)
    y = decode_bounded(blob, x.shape, x.dtype, kw.get("base"))
    assert y.dtype == x.dtype and y.shape == x.shape
    return blob, stats, y


def assert_within(x, y, bound):
    err, bad = max_violation(x, y, bound)
    assert bad == 0, f"{bad} values over the bound {bound} (max error {err})"
    return err


@pytest.mark.parametrize("shape", [(129,), (17, 23), (6, 9, 7), (1, 40), (40, 1, 3), (1,), (1, 1, 1)])
@pytest.mark.parametrize("kind", ["smooth", "rough"])
def test_bound_holds_on_generated_fields(shape, kind):
    x = (smooth_field if kind == "smooth" else rough_field)(shape, seed=len(shape))
    for rel in (1e-1, 1e-3, 1e-6):
        bound = rel * finite_range(x)
        if bound == 0:
            bound = 1e-3
        _, _, y = roundtrip(x, bound)
        assert_within(x, y, bound)


def test_bound_is_used_not_wasted_and_beats_raw():
    x = smooth_field((64, 64), seed=1)
    bound = 1e-3 * finite_range(x)
    blob, stats, y = roundtrip(x, bound)
    err = assert_within(x, y, bound)
    # closed-loop quantisation with step 2E spends most of the bound (ZFP-like 0.1x would waste ratio) ...
    assert err > 0.5 * bound
    # ... and a smooth field at 1e-3 of its range needs far fewer than 32 bits per value (about 10 bits of
    # information per value at this precision before prediction; interpolation removes most of it)
    assert 8 * len(blob) / x.size < 6


def test_float64_and_float16_and_subnormals():
    x64 = smooth_field((30, 20), dtype=np.float64) * 1e-300
    bound = 1e-2 * finite_range(x64)
    assert_within(x64, roundtrip(x64, bound)[2], bound)
    x16 = smooth_field((30, 20), dtype=np.float16)
    assert_within(x16, roundtrip(x16, 0.05)[2], 0.05)
    tiny = np.finfo(np.float32).smallest_subnormal
    sub = (np.arange(200, dtype=np.float32) % 7) * tiny  # subnormals only
    _, _, y = roundtrip(sub, 2 * tiny)
    assert_within(sub, y, 2 * tiny)
    # a bound far below the precision of the data: every value kept exactly (outliers), never broken
    _, stats, y = roundtrip(sub, tiny / 4)
    assert np.array_equal(y, sub)


def test_huge_values_near_float_limits_stay_bounded():
    x = np.array([1e308, -1e308, 1e308, 3.0, -1.7e308, 0.0, 5e307], dtype=np.float64)
    _, stats, y = roundtrip(x, 1.0)
    assert_within(x, y, 1.0)
    big = np.array([3e38, -3e38, 1.0, 3.4e38, 0, -3.4e38], dtype=np.float32)
    assert_within(big, roundtrip(big, 1e30)[2], 1e30)


def test_nan_and_inf_are_kept_exactly_with_their_bits():
    x = rough_field((20, 30), seed=3)
    x[2:6, 4:9] = np.nan
    x[10, 10], x[11, 12], x[0, 0] = np.inf, -np.inf, np.nan
    odd_nan = np.array([0x7FC0BEEF], dtype=np.uint32).view(np.float32)[0]
    x[15, 3] = odd_nan
    _, stats, y = roundtrip(x, 0.5)
    assert stats.nonfinite == 4 * 5 + 4
    nonfinite = ~np.isfinite(x)
    assert np.array_equal(x[nonfinite].view(np.uint32), y[nonfinite].view(np.uint32))
    assert_within(x, y, 0.5)


def test_all_nan_and_constant_fields_cost_a_few_bytes():
    nan = np.full((16, 16), np.nan, np.float32)
    blob, _, y = roundtrip(nan, 0.1)
    assert np.isnan(y).all() and len(blob) < 32
    const = np.full((7, 9, 5), -2.5, np.float64)
    blob, _, y = roundtrip(const, 0.0)  # a relative bound of a constant field is 0: lossless, still tiny
    assert np.array_equal(y, const) and len(blob) < 32
    mixed = const.copy()
    mixed[0, 0, 0] = np.nan
    blob, _, y = roundtrip(mixed, 0.0)
    assert np.array_equal(np.isnan(y), np.isnan(mixed)) and np.array_equal(y[1:], const[1:])


def test_lossless_when_the_bound_is_zero_for_floats():
    x = rough_field((25, 25), seed=4)
    _, _, y = roundtrip(x, 0.0)
    assert np.array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32])
def test_integers_exact_below_one_and_bounded_above(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    span = min(int(info.max) - int(info.min), 4000)
    x = (smooth_field((13, 11), seed=6, dtype=np.float64) / 80 * span * 0.45 + rng.integers(-3, 4, (13, 11)))
    x = np.clip(x + (int(info.min) + int(info.max)) / 2, info.min, info.max).astype(dtype)
    for bound in (0.0, 0.3, 0.49, 0.99):
        _, _, y = roundtrip(x, bound)
        assert np.array_equal(x, y), bound
    for bound in (1.0, 2.5, 17.0):
        _, _, y = roundtrip(x, bound)
        assert_within(x, y, bound)
        assert np.abs(y.astype(np.int64) - x.astype(np.int64)).max() <= np.floor(bound)


def test_relative_bound_uses_the_data_range_for_int16():
    """The bug of issue 12: an int16 CT volume in [0, 2000] at --relative 0.01 took 1 % of 65535 (655)."""
    rng = np.random.default_rng(7)
    ct = np.clip(smooth_field((6, 24, 24), seed=8, dtype=np.float64) * 10 + 1000 + rng.normal(0, 40, (6, 24, 24)),
                 0, 2000).astype(np.int16)
    ct[0, 0, 0], ct[-1, -1, -1] = 0, 2000
    assert absolute_bound(ct, 0.01, relative=True) == pytest.approx(20.0)
    res = compress(Signal(ct[..., None], kind="volume"), max_error=0.01, relative=True)
    out = decompress(res.data).data[..., 0]
    assert out.dtype == np.int16
    assert np.abs(out.astype(np.int64) - ct).max() <= 20
    assert res.report["target_max_error"] == pytest.approx(20.0) and res.report["target_met"]


def test_relative_bound_ignores_nonfinite_values():
    x = np.array([0.0, 1.0, np.nan, np.inf, -np.inf, 4.0], np.float32)
    assert finite_range(x) == 4.0
    assert absolute_bound(x, 0.1, relative=True) == pytest.approx(0.4)
    assert absolute_bound(x, 0.1, relative=False) == 0.1
    with pytest.raises(InputError):
        absolute_bound(x, -1.0, relative=False)


def test_decoding_is_deterministic_and_independent_of_the_encoder():
    x = rough_field((40, 33), seed=9)
    blob1, _ = encode_bounded(x, 0.05)
    blob2, _ = encode_bounded(x.copy(), 0.05)
    assert blob1 == blob2
    y1 = decode_bounded(blob1, x.shape, x.dtype)
    y2 = decode_bounded(bytes(bytearray(blob1)), x.shape, x.dtype)
    assert y1.tobytes() == y2.tobytes()


def test_predictor_is_exact_on_the_polynomials_it_interpolates():
    """Midpoint interpolation with r known points per side reproduces polynomials of degree 2r - 1 exactly (integer
    values, power-of-two divisors: exact in float64 too), wherever the full stencil fits."""
    n = 33
    t = np.arange(n, dtype=np.float64)
    cases = {"linear": (1, 3 * t + 2), "cubic": (2, t**3 - 7 * t**2 + t), "quintic": (3, t**5 - 3 * t**4 + 2 * t),
             "septic": (4, t**7 - t**6 + 5 * t**3),
             "smooth": (2, 5 * t - 1)}  # the (1, 3, 3, 1) / 8 smoother is exact on linear fields only
    for name, (r, p) in cases.items():
        checked = 0
        for h, modes in interp.passes((n,)):
            tv = interp.target_slices(h, modes)
            pred = interp.predict(p.copy(), h, modes, interp.PREDICTORS[name])
            ne = len(range(0, n, 2 * h))
            inner = slice(r - 1, ne - r)
            assert np.array_equal(pred[inner], p[tv][inner]), (name, h)
            checked += len(pred[inner])
        assert checked > 0
        # ... and a lower-order kernel does not (the test can fail)
        if name not in ("linear", "smooth"):
            pred = interp.predict(p.copy(), 1, (interp.ODD,), interp.PREDICTORS["linear"])
            assert not np.array_equal(pred[:-1], p[1::2][:-1])


def test_codec_modes_auto_bounded_and_inr_residual():
    x = smooth_field((24, 28), seed=10)
    x[3, 4] = np.nan
    sig = Signal(x[..., None], kind="array")
    auto = compress(sig, max_error=0.02, relative=True)
    assert auto.report["model"] == "bounded" and "time-budget" in auto.report["auto"]["why"]
    inr = compress(sig, "fourier", max_error=0.02, relative=True, steps=20)
    for res in (auto, inr):
        out = decompress(res.data).data[..., 0]
        assert_within(x, out, res.report["target_max_error"])
        assert np.isnan(out[3, 4]) and np.isfinite(np.delete(out.ravel(), 3 * 28 + 4)).all()
        assert res.report["values_over_bound"] == 0 and res.report["target_met"]
    with pytest.raises(InputError, match="decodes only whole"):
        decompress(auto.data, shape=(48, 56))


def test_nonfinite_values_survive_rate_targets_too():
    x = smooth_field((20, 24), seed=11)
    x[5:8, 5:8] = np.nan
    x[0, 1] = -np.inf
    out = decompress(compress(Signal(x[..., None], kind="array"), "fourier", psnr=15, steps=20).data).data[..., 0]
    assert np.array_equal(np.isnan(out), np.isnan(x)) and out[0, 1] == -np.inf


# -- hostile payloads ----------------------------------------------------------------------------------------------
def _mutations(blob: bytes, rng):
    yield blob[:-1]
    yield blob[: len(blob) // 2]
    yield b""
    yield blob + b"\0"
    for _ in range(60):
        b = bytearray(blob)
        i = int(rng.integers(0, len(b)))
        b[i] = int(rng.integers(0, 256))
        yield bytes(b)


@pytest.mark.parametrize("nonfinite", [False, True])
def test_hostile_payloads_raise_format_error_only(nonfinite):
    x = rough_field((17, 23), seed=12)
    if nonfinite:
        x[2:5, 3] = np.nan
        x[7, 7] = np.inf
    blob, _ = encode_bounded(x, 0.2)
    rng = np.random.default_rng(13)
    for bad in _mutations(blob, rng):
        try:
            y = decode_bounded(bad, x.shape, x.dtype)
        except FormatError:
            continue
        assert y.shape == x.shape and y.dtype == x.dtype  # a flip that still parses must still give the shape


def test_hostile_counts_are_refused_before_allocating():
    x = smooth_field((8, 8), seed=14)
    blob, _ = encode_bounded(x, 0.5)
    head = blob[:2] + struct.pack("<dd", 0.5, 1.0)
    # a class map that claims 2**40 runs for a 64-value array
    with pytest.raises(FormatError):
        decode_bounded(head + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]), x.shape, x.dtype)
    # a negative or NaN step
    with pytest.raises(FormatError):
        decode_bounded(blob[:2] + struct.pack("<dd", 0.5, float("nan")) + blob[18:], x.shape, x.dtype)
    with pytest.raises(FormatError):
        decode_bounded(blob, (9, 8), x.dtype)  # right payload, wrong shape: counts disagree


def test_encode_verified_checks_its_own_stream():
    x = rough_field((12, 12), seed=15)
    blob, stats, y = encode_verified(x, 0.3)
    assert np.array_equal(y, decode_bounded(blob, x.shape, x.dtype))
    assert stats.bytes == len(blob)


def test_cli_fit_and_decode_an_int16_volume_within_the_relative_bound(tmp_path, capsys):
    from inrcodec.cli import main

    rng = np.random.default_rng(16)
    ct = np.clip(rng.normal(1000, 300, (5, 20, 24)), 0, 2000).astype(np.int16)
    src, enc, back, rep = tmp_path / "ct.npy", tmp_path / "ct.inrc", tmp_path / "back.npy", tmp_path / "r.json"
    np.save(src, ct)
    assert main(["fit", str(src), "--max-error", "0.01", "--relative", "-o", str(enc), "--json", str(rep)]) == 0
    out = capsys.readouterr().out
    bound = 0.01 * (int(ct.max()) - int(ct.min()))
    assert "values over" in out and "predictor only" in out
    assert main(["decode", str(enc), "-o", str(back)]) == 0
    got = np.load(back).reshape(ct.shape)
    assert got.dtype == np.int16 and np.abs(got.astype(np.int64) - ct).max() <= bound
    import json

    report = json.loads(rep.read_text())
    assert report["target_max_error"] == pytest.approx(bound) and report["model"] == "bounded"


def test_auto_with_steps_measures_an_inr_base_and_keeps_the_smaller_file():
    x = smooth_field((20, 22), seed=17)
    res = compress(Signal(x[..., None], kind="array"), max_error=0.01, relative=True, steps=15)
    cands = res.report["auto"]["candidates"]
    assert [c["model"] for c in cands] == ["bounded", "latentgrid"]
    assert res.report["bytes"] == min(c["bytes"] for c in cands) == len(res.data)
    assert res.report["model"] == min(cands, key=lambda c: c["bytes"])["model"]
    out = decompress(res.data).data[..., 0]
    assert_within(x, out, res.report["target_max_error"])
