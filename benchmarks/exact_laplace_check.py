"""Does the exact quantised Laplace (``inrcodec.quant.exact.laplace_*``: integer tables from IEEE basic operations,
fed to a per-symbol Categorical) code exactly what constriction's ``QuantizedLaplace`` (libm ``exp`` inside) coded
for format-version-1 latent-grid files?

1. Tables: constriction's 24-bit left cumulatives, read off its encoder's state (an empty ANS coder holds exactly
   the left cumulative of the one symbol encoded), against ``laplace_weights`` on random (lo, hi, mean, scale).
2. End to end: random symbol arrays encoded both ways give identical ANS words, and decode back.
3. A real file: a latent-grid fit of a Kodak crop, its latents coded both ways (identical bytes), and the decode
   time of each (the exact tables cost numpy work per symbol: see the figures).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/exact_laplace_check.py --out benchmarks/results/exact_laplace.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import constriction
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.quant import exact  # noqa: E402

_M = constriction.stream.model
_Ans = constriction.stream.stack.AnsCoder


def constriction_left(lo: int, hi: int, mean: float, scale: float) -> np.ndarray:
    model = _M.QuantizedLaplace(lo, hi)
    out = []
    for s in range(lo, hi + 1):
        c = _Ans()
        c.encode_reverse(np.array([s], np.int32), model, np.array([mean]), np.array([scale]))
        w = c.get_compressed()
        out.append(int(w[0]) if len(w) else 0)
    return np.array(out, np.int64)


def exact_left(lo: int, hi: int, mean: float, scale: float) -> np.ndarray:
    u = exact.laplace_weights(lo, hi, np.array([mean]), np.array([scale]))[0]
    return np.concatenate([[0], np.cumsum(u)[:-1]]).astype(np.int64) + np.arange(hi - lo + 1)


def real_file(res: dict) -> None:
    """Latent grid on a Kodak crop: the coded latents both ways, and decode times."""
    import torch

    from inrcodec.codec import compress, decompress
    from inrcodec.models.latentgrid import bitstream as latentgrid  # where the coder calls are
    from inrcodec.signal import Signal
    from inrcodec.signals import load

    path = Path("/work/shared/data/kodak/kodim05.png")
    if not path.exists():
        res["real_file"] = "skipped: no shared data"
        return
    img = load(path).data[:256, :256]
    torch.manual_seed(0)
    data = compress(Signal(np.ascontiguousarray(img), kind="image"), "latentgrid", bpp=1.0, steps=150, seed=0).data
    t = time.perf_counter()
    new = decompress(data).data
    t_exact = time.perf_counter() - t

    def old_decode(coder, lo, hi, mean, scale):
        return np.asarray(coder.decode(_M.QuantizedLaplace(lo, hi), mean, scale), np.int64)

    def old_encode(coder, symbols, lo, hi, mean, scale):
        coder.encode_reverse(np.asarray(symbols, np.int32), _M.QuantizedLaplace(lo, hi), mean, scale)

    saved = latentgrid.laplace_decode, latentgrid.laplace_encode_reverse
    latentgrid.laplace_decode, latentgrid.laplace_encode_reverse = old_decode, old_encode
    try:
        t = time.perf_counter()
        old = decompress(data).data
        t_old = time.perf_counter() - t
        torch.manual_seed(0)
        data_old = compress(Signal(np.ascontiguousarray(img), kind="image"), "latentgrid", bpp=1.0, steps=150,
                            seed=0).data
    finally:
        latentgrid.laplace_decode, latentgrid.laplace_encode_reverse = saved
    res["real_file"] = {"image": "kodim05 crop 256x256", "bytes": len(data),
                        "file_identical_when_encoded_with_QuantizedLaplace": data == data_old,
                        "decoded_identical": bool(np.array_equal(new, old)),
                        "decode_seconds_exact": round(t_exact, 3), "decode_seconds_QuantizedLaplace": round(t_old, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    res: dict = {"command": "PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/exact_laplace_check.py "
                            "--out benchmarks/results/exact_laplace.json",
                 "load_average_start": list(os.getloadavg())}
    rng = np.random.default_rng(14)
    bad, entries = 0, 0
    for _ in range(a.tables):
        lo = int(rng.integers(-60, 10))
        hi = lo + int(rng.integers(1, 70))
        mean = float(rng.uniform(lo - 4, hi + 4))
        scale = float(np.exp2(rng.uniform(-6, 8)))
        entries += hi - lo + 1
        bad += int(not np.array_equal(constriction_left(lo, hi, mean, scale), exact_left(lo, hi, mean, scale)))
    res["tables"] = {"random_parameter_sets": a.tables, "table_entries": entries, "tables_differing": bad}
    same = 0
    trials = 50
    for _ in range(trials):
        n = int(rng.integers(1, 20000))
        lo = int(rng.integers(-40, 0))
        hi = lo + int(rng.integers(1, 120))
        mean, scale = rng.uniform(lo, hi, n), np.exp2(rng.uniform(-5, 7, n))
        sym = np.clip(np.rint(mean + rng.laplace(0, scale)), lo, hi).astype(np.int64)
        c1 = _Ans()
        c1.encode_reverse(sym.astype(np.int32), _M.QuantizedLaplace(lo, hi), mean, scale)
        c2 = _Ans()
        exact.laplace_encode_reverse(c2, sym, lo, hi, mean, scale)
        w = c1.get_compressed()
        d = _Ans(w)
        ok = np.array_equal(w, c2.get_compressed()) and np.array_equal(exact.laplace_decode(d, lo, hi, mean, scale),
                                                                       sym) and d.is_empty()
        same += int(ok)
    res["end_to_end"] = {"trials": trials, "identical_words_and_round_trip": same}
    real_file(res)
    res["load_average_end"] = list(os.getloadavg())
    print(json.dumps(res, indent=1))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
