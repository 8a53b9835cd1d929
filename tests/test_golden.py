"""Old files keep decoding the same: the golden corpus (tests/golden, written by make_golden.py) must parse to the
same symbols and exactly dequantised parameters (SHA-256), and render within 0.5 LSB of the stored output.

A failure here means a change alters what existing format-version-1 files decode to. If that is intended, it
needs a new format version, not a regenerated corpus."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_golden import decoded_output, parse_digest  # noqa: E402

INDEX = json.loads((GOLDEN / "golden.json").read_text())


def test_every_seed_kind_has_a_golden_file():
    """A layout or model registered as a seed maker must have its golden file (run make_golden.py)."""
    from inrcodec.fuzzing import SEED_MAKERS

    assert set(SEED_MAKERS) <= set(INDEX)
    models = set()
    for name in INDEX:
        from inrcodec.container import read_container

        models.add(read_container((GOLDEN / f"{name}.inrc").read_bytes()).model)
    assert {"fourier", "siren", "hashgrid", "latentgrid", "gaussian"} <= models


@pytest.mark.parametrize("name", sorted(INDEX))
def test_golden_file_parses_and_renders_the_same(name):
    entry = INDEX[name]
    data = (GOLDEN / f"{name}.inrc").read_bytes()
    assert len(data) <= 4096, "golden files stay small"
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], "golden files are never rewritten"
    assert parse_digest(data) == entry["parse_sha256"], "the file parses to other symbols/parameters than before"

    ref = np.load(GOLDEN / f"{name}.npy", allow_pickle=False)
    out = decoded_output(data)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    if np.issubdtype(ref.dtype, np.integer):
        # integer outputs are rounded renders: within 0.5 LSB of the render means at most 1 step after rounding,
        # and only where the render sits on a rounding boundary; on the machine that wrote them: identical
        diff = np.abs(out.astype(np.int64) - ref.astype(np.int64))
        assert diff.max() <= 1
        assert np.mean(diff > 0) <= 0.01
    else:
        fin = np.isfinite(ref)  # NaN and +-Inf (datasets, the error-bounded coder) decode to exactly themselves
        assert np.array_equal(np.isfinite(out), fin)
        assert np.array_equal(out[~fin].astype(np.float64), ref[~fin].astype(np.float64), equal_nan=True)
        lsb = float(np.ptp(ref[fin])) * 2.0**-16 if fin.any() else 0.0  # a 16-bit quantum of the value range
        assert np.max(np.abs(out[fin].astype(np.float64) - ref[fin].astype(np.float64)), initial=0.0) <= 0.5 * lsb
