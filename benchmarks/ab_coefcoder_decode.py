"""A/B of the compiled coefficient decoders (``cuda/coefcoder_cpu.cpp``) at two revisions: the same streams decoded
by both builds must give the same symbols, and the process CPU of each.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/ab_coefcoder_decode.py --base e344c24 \\
        -o benchmarks/results/ab_coefcoder_decode_s27

Both builds are made here from the sources (``git show BASE:cuda/...`` and the working tree) with the loader's flags,
as standalone libraries of that one unit. Streams: ``dct_like`` symbols (tests/test_coefcoder.py) of a Kodak-size
residual (3 x 64 x 96 blocks) at two densities, coded as format 2, format 7, and format 7 with the 16x16 group flags.
CPU milliseconds: the best of ``--runs`` calls (process time; the machine is shared).
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import cpu_ms, lab_record  # noqa: E402
from inrcodec.entropy._bytes import ans_words, read_varint  # noqa: E402
from inrcodec.kernels import _loader  # noqa: E402
from inrcodec.models import coefcoder, coefcoder7  # noqa: E402
from test_coefcoder import dct_like  # noqa: E402

UNIT, HEADERS = "coefcoder_cpu.cpp", ("ans_cpu.h",)


def build(rev: str | None, into: Path) -> ctypes.CDLL:
    """The decoder unit at ``rev`` (None: the working tree) as a library of its own."""
    src = into / (rev or "tree")
    src.mkdir()
    for name in (UNIT, *HEADERS):
        text = (ROOT / "cuda" / name).read_text() if rev is None else subprocess.run(
            ["git", "show", f"{rev}:cuda/{name}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        (src / name).write_text(text)
    out = src / "cc.so"
    subprocess.run(["c++", *_loader.CPU_FLAGS, "-shared", "-I", str(src), str(src / UNIT), "-o", str(out)], check=True)
    return ctypes.CDLL(str(out))


def streams(c: int, by: int, bx: int):
    flags = np.random.default_rng(0).random((by // 2, bx // 2)) < 0.5
    for scale in (0.7, 3.0):
        q = dct_like(c, by, bx, seed=1, scale=scale)
        yield f"format 2, scale {scale}", coefcoder.encode(q), "f2"
        yield f"format 7, scale {scale}", coefcoder7.encode(q), "f7"
        yield f"format 7 + groups, scale {scale}", coefcoder7.encode(q, groups=flags), "f7g"


def decoder(lib: ctypes.CDLL, kind: str, blob: bytes, c: int, by: int, bx: int):
    """A call decoding ``blob`` with ``lib``, and the arrays it fills (then those it reads: keep them alive)."""
    p = lambda a: ctypes.c_void_p(a.ctypes.data)  # noqa: E731
    n, pos = read_varint(blob, 0, "length", 5)
    words = ans_words(blob[pos:pos + n])
    up, left = (np.ascontiguousarray(t, np.int64) for t in coefcoder._template())
    starts = np.ascontiguousarray(coefcoder._diagonal_starts(), np.int64)
    table = np.ascontiguousarray(coefcoder._class_table() if kind == "f2" else coefcoder7._class_table(), np.int16)
    where = np.ascontiguousarray(coefcoder7._where(), np.int64)
    out, flags, n_escape = np.empty((c * by * bx, 64), np.int16), np.zeros((by // 2, bx // 2), np.uint8), ctypes.c_int64()
    head = (p(words), ctypes.c_int64(len(words)), c, by, bx, p(up), p(left), p(starts), p(table),
            ctypes.c_int64(len(table)))
    calls = {"f2": lambda: lib.cc_decode_format2(*head, p(out), ctypes.byref(n_escape)),
             "f7": lambda: lib.cc_decode_format7(*head, p(where), p(out), ctypes.byref(n_escape), 1),
             "f7g": lambda: lib.cc_decode_format7_groups(*head, p(where), p(out), ctypes.byref(n_escape), 1, p(flags),
                                                         by // 2, bx // 2)}
    return calls[kind], (out, flags, n_escape, words, up, left, starts, table, where)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git revision of the A side (B: the working tree)")
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    result = dict(lab_record("ab_coefcoder_decode.py", argv), base=args.base, rows=[])
    c0, shape = time.process_time(), (3, 64, 96)
    with tempfile.TemporaryDirectory() as tmp:
        libs = {"base": build(args.base, Path(tmp)), "tree": build(None, Path(tmp))}
        for name, blob, kind in streams(*shape):
            row = {"stream": name, "bytes": len(blob)}
            got = {}
            for side, lib in libs.items():
                call, filled = decoder(lib, kind, blob, *shape)
                assert call() == 0, (name, side)
                got[side] = [filled[0].copy(), filled[1].copy(), filled[2].value]
                row[f"cpu_ms_{side}"] = round(cpu_ms(call, args.runs, best=True), 3)
            same = all(np.array_equal(a, b) for a, b in zip(got["base"], got["tree"]))
            row["identical"] = bool(same)
            row["change_pct"] = round(100.0 * (row["cpu_ms_tree"] / row["cpu_ms_base"] - 1.0), 1)
            print(json.dumps(row), flush=True)
            result["rows"].append(row)
            assert same, name
    result["cpu_s"] = round(time.process_time() - c0, 1)
    result["load_end"] = __import__("os").getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
