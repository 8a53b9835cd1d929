"""CPU ms per stage of decoding a ``gaussian+dct`` file (issue 13 item 4), for a before/after comparison.

    # files: kodim03 and kodim07 at 0.5 and 1.0 bpp, 30 Gaussian steps (decode cost: the sizes, not the training)
    PYTHONPATH=$PWD python benchmarks/bench_gdct_decode_stages.py --make /tmp/gdct_files
    # after (this checkout) and before (another checkout, e.g. the parent commit), one torch thread:
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_gdct_decode_stages.py /tmp/gdct_files/*.inrc \\
        --label after -o /tmp/after.json
    PYTHONPATH=/path/to/before OMP_NUM_THREADS=1 python benchmarks/bench_gdct_decode_stages.py ... --label before

Wall-clock (``--wall N``): the median of N ``decompress`` calls per file at each of ``--threads`` (torch threads:
the rasteriser's and the residual kernel's OpenMP threads), with the CPU seconds of those calls; large files (a
tiled 12 MP photo) take ``--wall-large`` runs instead.

    PYTHONPATH=$PWD python benchmarks/bench_gdct_decode_stages.py /tmp/gdct_files/*.inrc --wall 9 --threads 1,2 \
        --large /tmp/photo.inrc --label after -o benchmarks/results/gdct_decode_s21_after.json

Rounds run alternately (before, after, before, ...) under a varying load are pooled with ``--merge r1.json r2.json
... -o pooled.json`` (medians of all runs per tree, file and thread count).

Stages: container parse, the Gaussians' entropy decoding, the residual's symbols, the rasteriser, rounding the
base to integers, inverse DCT + add, deblocking, the normalised output, ``Signal.from_normalized`` (the codec's
last step), and the whole ``decompress`` for reference. Median of ``--repeats`` of ``time.process_time`` (the
machine is shared: CPU time, with the load average in the output). Also checks the decoded image's SHA-256, so
before and after can be shown to give the same bits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import inrcodec  # noqa: F401  (first: its OpenMP spin default, GOMP_SPINCOUNT, applies only if set before torch loads)
import numpy as np
import torch


def stages(data: bytes, repeats: int) -> tuple[dict, str]:
    from inrcodec import decompress
    from inrcodec.container import read_container
    from inrcodec.models import deblock, get_model, image_dct
    from inrcodec.models.gaussian import GaussianConfig, GaussianImage
    from inrcodec.signal import Signal

    times: dict[str, list[float]] = {}

    def t(name, f, *a):
        c = time.process_time()
        r = f(*a)
        times.setdefault(name, []).append(time.process_time() - c)
        return r

    decompress(data)  # warm-up
    for _ in range(repeats):
        c = t("container", read_container, data)
        cls = get_model(c.model)
        cfg = cls.config_from_dict(c.config)
        base = t("gaussians_entropy", GaussianImage.decode, GaussianConfig(cfg.n_gaussians, cfg.layers), c.signal,
                 {"gaussians": c.sections["gaussians"]})
        h, w, ch = c.signal["shape"]
        q, units, strength, tx16, filters = t("dct_symbols", image_dct.decode_residual, c.sections["dct"], h, w, ch)
        with torch.no_grad():
            img = t("raster", lambda: GaussianImage.render(base).numpy())
        net = cls.decode(cfg, c.signal, c.sections)
        ints = t("to_integers", net._integers, img)
        out = t("inverse_add", image_dct.add, ints, q, units, 0, tx16)
        coded = np.any(q != 0, axis=(0, 3))
        try:  # the compiled filter where this checkout decodes with it (session 21)
            from inrcodec.kernels.dct_residual import deblock as fast_deblock
        except ImportError:
            fast_deblock = None
        if fast_deblock is not None:
            out = t("deblock", fast_deblock, out, coded, *deblock.thresholds(int(units[0, 0]), strength))
        else:
            out = t("deblock", deblock.deblock, out, coded, int(units[0, 0]), strength)
        if filters is not None:  # format 3's restoration filters (session 23)
            from inrcodec.models import restore

            out = t("restore", restore.apply, out, filters)
        nrm = t("to_normalized", net._normalized, out)  # not on the decode path where codec._exact_integers is
        t("from_normalized", Signal.from_normalized, nrm.numpy(), c.signal)
        t("decompress_total", decompress, data)
    digest = hashlib.sha256(np.ascontiguousarray(decompress(data).data).tobytes()).hexdigest()
    return {k: round(1e3 * statistics.median(v), 2) for k, v in times.items()}, digest


def wall(data: bytes, runs: int, threads: int) -> dict:
    """Median wall ms of ``decompress`` over ``runs`` calls (after one warm-up) with ``threads`` torch threads,
    and the median CPU ms of the same calls (all threads of the process)."""
    from inrcodec import decompress

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        decompress(data)
        walls, cpus = [], []
        for _ in range(runs):
            c, w = time.process_time(), time.perf_counter()
            decompress(data)
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
    finally:
        torch.set_num_threads(old)
    return {"threads": threads, "runs": runs, "wall_ms_median": round(1e3 * statistics.median(walls), 1),
            "wall_ms_min": round(1e3 * min(walls), 1), "cpu_ms_median": round(1e3 * statistics.median(cpus), 1),
            "wall_ms": [round(1e3 * x, 1) for x in walls], "cpu_ms": [round(1e3 * x, 1) for x in cpus],
            "load": os.getloadavg()}


def merge(paths: list[Path]) -> dict:
    """The --wall runs of several outputs (rounds, trees) pooled per (label, file, threads): medians of all runs."""
    pooled: dict = {}
    for p in paths:
        r = json.loads(p.read_text())
        for name, entry in r["wall"].items():
            for w in entry["by_threads"]:
                d = pooled.setdefault(r["label"], {}).setdefault(name, {}).setdefault(str(w["threads"]), {
                    "wall_ms": [], "cpu_ms": [], "loads": [], "commit": r.get("commit")})
                d["wall_ms"] += w["wall_ms"]
                d["cpu_ms"] += w["cpu_ms"]
                d["loads"].append(w["load"][0])
    for label in pooled.values():
        for name in label.values():
            for d in name.values():
                d["wall_ms_median"] = round(statistics.median(d["wall_ms"]), 1)
                d["cpu_ms_median"] = round(statistics.median(d["cpu_ms"]), 1)
                d["runs"] = len(d["wall_ms"])
    return {"command": " ".join(sys.argv), "inputs": [str(p) for p in paths], "pooled": pooled}


def make(folder: Path) -> None:
    from inrcodec import compress
    from inrcodec.signals import load

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("kodim03", "kodim07"):
        sig = load(Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / f"{name}.png")
        for bpp in (0.5, 1.0):
            (folder / f"{name}_{bpp}.inrc").write_bytes(compress(sig, "gaussian+dct", bpp=bpp, steps=30, seed=0).data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--make", type=Path, default=None, help="write the two test files into this folder and stop")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--label", default="")
    ap.add_argument("--wall", type=int, default=0, help="also time N whole decompress calls per file and thread count")
    ap.add_argument("--threads", default="1,2", help="torch thread counts for --wall")
    ap.add_argument("--large", type=Path, nargs="*", default=[], help="files timed by --wall-large runs only")
    ap.add_argument("--wall-large", type=int, default=3)
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--commit", default=None, help="the measured code's commit, where its folder is no git checkout")
    ap.add_argument("--note", default="")
    ap.add_argument("--merge", action="store_true", help="pool the --wall runs of the JSON files given into -o")
    ap.add_argument("-o", "--out", type=Path, default=None)
    args = ap.parse_args()
    if args.make:
        make(args.make)
        return 0
    if args.merge:
        res = merge(args.files)
        args.out.write_text(json.dumps(res, indent=1))
        return 0
    import subprocess

    import inrcodec
    from inrcodec import codec, decompress

    code = Path(inrcodec.__file__).parent
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    skip = ("decompress_total",) + (("to_normalized", "from_normalized") if hasattr(codec, "_exact_integers") else ())
    res = {"label": args.label, "note": args.note, "command": " ".join(sys.argv), "code": str(code),
           "commit": args.commit or commit or None,
           "torch_threads": torch.get_num_threads(), "load_before": os.getloadavg(),
           "cpu_process_s_before": time.process_time(), "files": {}, "wall": {}}
    for f in [] if args.no_stages else args.files:
        ms, digest = stages(f.read_bytes(), args.repeats)
        res["files"][f.name] = {"cpu_ms": ms, "sum_of_stages": round(sum(v for k, v in ms.items() if k not in skip),
                                                                     1),
                                "stages_not_on_the_decode_path": [k for k in skip if k != "decompress_total"],
                                "decoded_sha256": digest}
        print(args.label, f.name, json.dumps(res["files"][f.name]), flush=True)
    threads = [int(x) for x in args.threads.split(",") if x]
    for f, runs in [(f, args.wall) for f in args.files] + [(f, args.wall_large) for f in args.large]:
        if not runs:
            continue
        data = f.read_bytes()
        entry = {"bytes": len(data), "by_threads": [wall(data, runs, n) for n in threads]}
        if f in args.large:
            entry["decoded_sha256"] = hashlib.sha256(np.ascontiguousarray(decompress(data).data).tobytes()).hexdigest()
        res["wall"][f.name] = entry
        print(args.label, f.name, json.dumps(entry), flush=True)
    res["load_after"] = os.getloadavg()
    res["cpu_process_s"] = round(time.process_time(), 2)
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
