"""Every bad input named in issue 14 fails cleanly through the command line: exit 2, exactly one line on stderr
that names the file, and no file written (the table in docs/bad-input.md is made from the same cases)."""

from __future__ import annotations

import pytest

from bad_input_cases import CASES


def run_case(tmp_path, monkeypatch, capsys, make, setup):
    from inrcodec.cli import main

    argv = make(tmp_path)
    if setup is not None:
        setup(monkeypatch)
    before = {p for p in tmp_path.rglob("*")}
    code = main(argv)
    err = capsys.readouterr().err
    after = {p for p in tmp_path.rglob("*")}
    return code, err, after - before


@pytest.mark.parametrize("case_id,what,make,setup", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly(case_id, what, make, setup, tmp_path, monkeypatch, capsys):
    code, err, new_files = run_case(tmp_path, monkeypatch, capsys, make, setup)
    assert code == 2, f"{what}: exit {code}, stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inrcodec: "), f"{what}: {err!r}"
    assert "Traceback" not in err and "internal error" not in err
    assert not new_files, f"{what}: left {sorted(map(str, new_files))}"


@pytest.mark.parametrize("values", ["all-nan", "inf"])
def test_non_finite_fields_are_data_not_bad_input(values, tmp_path):
    """NaN marks missing values and +-Inf are values of scientific fields (issue 12): both are coded exactly, by
    the INR path too, rather than refused."""
    import numpy as np

    from inrcodec.cli import main

    x = np.where(np.eye(8) > 0, -np.inf, np.linspace(0, 1, 64).reshape(8, 8)).astype(np.float32)
    x[0, 1] = np.inf
    if values == "all-nan":
        x = np.full((8, 8), np.nan, np.float32)
    np.save(tmp_path / "f.npy", x)
    assert main(["fit", str(tmp_path / "f.npy"), "-q", "--model", "fourier", "--steps", "20",
                 "-o", str(tmp_path / "f.inrc")]) == 0
    assert main(["decode", str(tmp_path / "f.inrc"), "-o", str(tmp_path / "g.npy")]) == 0
    y = np.load(tmp_path / "g.npy")
    assert y.shape == x.shape and y.dtype == x.dtype
    assert np.array_equal(np.isnan(y), np.isnan(x)) and np.array_equal(y[np.isinf(x)], x[np.isinf(x)])
