"""``inrcodec batch``: Dask tasks over files x variables x tiles, bad inputs skipped, kill -9 then --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("distributed")

from inrcodec.cli import main  # noqa: E402
from inrcodec.dataset_codec import decompress_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def field_file(path: Path, seed: int, shape=(3, 12, 14)) -> Path:
    rng = np.random.default_rng(seed)
    data = np.cumsum(rng.normal(size=shape), axis=-1).astype(np.float32)
    dims = ("t", "z", "y", "x")[-len(shape):] if len(shape) == 4 else ("t", "y", "x")[-len(shape):]
    xr.Dataset({"f": (dims, data)}).to_netcdf(path)
    return path


def test_batch_skips_a_corrupt_file_and_finishes_the_rest(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    field_file(inputs / "a.nc", 0)
    field_file(inputs / "b.nc", 1)
    (inputs / "broken.nc").write_bytes(b"CDF\x01" + b"\x00" * 40)  # right magic, garbage inside
    np.save(inputs / "c.npy", np.random.default_rng(2).normal(size=(16, 16)).astype(np.float32))
    out = tmp_path / "out"
    code = main(["batch", str(inputs), "-o", str(out), "--max-error", "0.05", "--model", "siren", "--steps", "3",
                 "--workers", "2", "-q", "--json", str(tmp_path / "report.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.nc" in err and err.count("inrcodec: error:") == 1
    report = json.loads((tmp_path / "report.json").read_text())
    status = {Path(r["path"]).name: r["status"] for r in report["inputs"]}
    assert status == {"a.nc": "done", "b.nc": "done", "broken.nc": "bad", "c.npy": "done"}
    for name in ("a", "b"):
        back = decompress_dataset((out / f"{name}.inrc").read_bytes())
        orig = xr.open_dataset(inputs / f"{name}.nc")
        assert np.abs(back["f"].values - orig["f"].values).max() <= 0.05
        row = next(r for r in report["inputs"] if r["path"].endswith(f"{name}.nc"))
        var = row["report"]["variables"][0]
        assert var["max_abs_error"] <= var["bound"] == 0.05 and var["ratio"] > 0 and var["seconds"] > 0
    assert (out / "c.inrc").exists() and not (out / "broken.inrc").exists()


def _manifest(out: Path) -> dict:
    path = out / ".inrcodec-batch" / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_batch_killed_with_sigkill_resumes_without_redoing_finished_tiles(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    field_file(src / "v.nc", 3, shape=(6, 2, 12, 12))  # 6 tiles: one (z, y, x) field per t
    field_file(src / "w.nc", 4)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "inrcodec", "batch", str(src), "-o", str(out), "--max-error", "0.02",
            "--model", "siren", "--steps", "80", "--workers", "1", "-q"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    done_before: dict = {}
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            tiles = _manifest(out).get("inputs", {}).get("0000-v.nc", {}).get("tiles", {})
            if len(tiles) >= 2:
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its LocalCluster workers, all at once
        proc.wait()
    manifest = _manifest(out)
    done_before = manifest["inputs"]["0000-v.nc"]["tiles"]
    assert 2 <= len(done_before) < 6, "the batch should have been killed half-way"
    assert not (out / "v.inrc").exists()
    parts = sorted(p.name for p in (out / ".inrcodec-batch" / "0000-v.nc").glob("tile-*.part"))
    assert set(parts) >= {f"tile-{i}.part" for i in done_before}

    without_resume = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert without_resume.returncode == 2 and "--resume" in without_resume.stderr
    resumed = subprocess.run(argv + ["--resume", "--json", str(tmp_path / "r.json")], env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = _manifest(out)
    assert after["run"] == 2
    tiles = after["inputs"]["0000-v.nc"]["tiles"]
    assert len(tiles) == 6
    for i, rec in done_before.items():
        assert tiles[i]["run"] == 1  # finished before the kill: not encoded again
    assert sum(rec["run"] == 2 for rec in tiles.values()) == 6 - len(done_before)
    back = decompress_dataset((out / "v.inrc").read_bytes())
    orig = xr.open_dataset(src / "v.nc")
    assert np.abs(back["f"].values - orig["f"].values).max() <= 0.02
    assert (out / "w.inrc").exists()


def test_batch_joins_an_existing_cluster(tmp_path):
    from distributed import LocalCluster

    from inrcodec.batch import run_batch
    from inrcodec.dataset_codec import FieldTarget

    src = field_file(tmp_path / "one.nc", 5)
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        report = run_batch([src], tmp_path / "out", None, FieldTarget(model="siren", steps=3, max_error=0.05),
                           scheduler=cluster.scheduler_address, quiet=True)
    assert report["scheduler"] == cluster.scheduler_address and report["inputs"][0]["status"] == "done"
    back = decompress_dataset((tmp_path / "out" / "one.inrc").read_bytes())
    assert np.abs(back["f"].values - xr.open_dataset(src)["f"].values).max() <= 0.05
