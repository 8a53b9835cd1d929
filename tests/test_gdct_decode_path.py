"""Decode-path speed-ups of ``gaussian+dct`` that must not change a bit: the decoder's integer shortcut (``codec._exact_integers``): a ``gaussian+dct`` image is handed over as the integers
it decodes to instead of normalised floats that ``Signal.from_normalized`` turns back into integers. Exact only
where that round trip is the identity, which is checked here for every 8- and 16-bit value, and the shortcut must
give the same signal as the float path on the golden files (gray 16-bit and RGB 8-bit); and the two-thread
decoder (residual symbols in a second thread while the Gaussians are drawn) must give the one-thread image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inrcodec import codec, decompress
from inrcodec.models.gaussian_dct import GaussianDCT, GaussianDCTConfig
from inrcodec.signal import Signal

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_normalised_round_trip_is_the_identity_on_every_value(dtype):
    top = np.iinfo(dtype).max
    ints = np.arange(top + 1, dtype=dtype).reshape(-1, 1, 1)
    desc = {"kind": "image", "shape": list(ints.shape), "dtype": np.dtype(dtype).name, "range": [0.0, float(top)],
            "meta": {}}
    model = GaussianDCT(GaussianDCTConfig(n_gaussians=1, layers=1), {**desc, "shape": [top + 1, 1, 1]})
    back = Signal.from_normalized(model._normalized(ints).numpy(), desc).data
    np.testing.assert_array_equal(back, ints)


@pytest.mark.parametrize("name", ["gaussian-dct-image-ctx", "gaussian-dct-gray16-ctx", "gaussian-dct-image"])
def test_shortcut_gives_the_float_paths_signal(name, monkeypatch):
    data = (GOLDEN / f"{name}.inrc").read_bytes()
    calls = []
    real = codec._exact_integers

    def spy(net, desc):
        calls.append(1)
        return real(net, desc)

    monkeypatch.setattr(codec, "_exact_integers", spy)
    fast = decompress(data)
    assert calls and real(codec.load_representation(data)[1], codec.read_container(data).signal) is not None
    monkeypatch.setattr(codec, "_exact_integers", lambda net, desc: None)
    slow = decompress(data)
    assert fast.data.dtype == slow.data.dtype and fast.value_range == slow.value_range
    assert fast.metadata == slow.metadata and fast.kind == slow.kind
    np.testing.assert_array_equal(fast.data, slow.data)


@pytest.mark.parametrize("name", ["gaussian-dct-image-ctx", "gaussian-dct-gray16-ctx"])
def test_two_thread_decode_is_the_one_thread_image(name):
    data = (GOLDEN / f"{name}.inrc").read_bytes()
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decompress(data).data
        torch.set_num_threads(2)
        net = codec.load_representation(data)[1]
        assert net._decoded_base_ints is not None  # the overlapped path ran
        two = decompress(data).data
    finally:
        torch.set_num_threads(old)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, np.load(GOLDEN / f"{name}.npy"))


def _outcome(data):
    from inrcodec.errors import FormatError

    try:
        return decompress(data).data.tobytes()
    except FormatError as e:
        return f"FormatError: {e}"


def test_damaged_sections_fail_or_decode_the_same_on_one_and_two_threads():
    """The two-thread decoder (residual symbols in a worker) on hostile sections: the same image or the same
    one-line FormatError as the one-thread decoder, and nothing else."""
    import random

    from inrcodec.fuzzing import _damage, reseal, unseal

    data = (GOLDEN / "gaussian-dct-image-ctx.inrc").read_bytes()
    version, header, sections = unseal(data)
    rng = random.Random(21)
    old = torch.get_num_threads()
    errors = 0
    try:
        for trial in range(60):
            s = list(sections)
            i = [n for n, _ in s].index("dct" if trial % 3 else "gaussians")
            s[i] = (s[i][0], _damage(rng, s[i][1]))
            bad = reseal(header, s, version)
            torch.set_num_threads(1)
            one = _outcome(bad)
            torch.set_num_threads(2)
            assert _outcome(bad) == one
            errors += isinstance(one, str)
    finally:
        torch.set_num_threads(old)
    assert errors > 10  # most damage is caught (the test exercises the error path)
