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
