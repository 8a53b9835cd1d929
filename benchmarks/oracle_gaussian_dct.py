"""Oracle of issue 13's question: does a Gaussian base plus a DCT-coded residual beat the Gaussians alone?

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracle_gaussian_dct.py \\
        --images kodim03,kodim07,kodim01 --base-rates 0.1,0.2,0.35,0.6,1.0 --steps 1000 \\
        -o benchmarks/results/oracle_gaussian_dct

For each image and base rate the Gaussian codec is fitted (``inrcodec.codec.compress``, ``--steps`` steps, seed 0)
and decoded; the residual (original - decoded, 8-bit RGB) is then coded at several luma steps with a residual
coder (``--coder``: ``mcdct2``, the video P-frame coder as it is, or ``imgdct`` variants) and added in its closed
loop (deblocking included). Every (base rate, step) pair is a point (Gaussian file bytes + residual bytes + 4
bytes for the step, PSNR); the RD envelope over all pairs (Pareto front) is compared with the Gaussians alone
(the base fits themselves) and with JPEG/WebP/AVIF (``inrcodec.compare``) by BD-rate over ``--avg-range``.
A base rate of 0 is a flat mid-grey base (0 bytes): the residual coder alone, as an image codec.

Fits are cached (``--cache``, outside the repository): rerunning with another coder does not refit.
Writes ``<out>.json`` and ``<out>.png``; timings are CPU seconds of this process (process_time) beside wall seconds,
with the load average, because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import metrics  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"
STEP_BYTES = 4  # what a header field for the residual step would cost


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse > 0 else 99.0


def base_key(cache: Path, stem: str, rate: float, steps: int) -> Path:
    """Where ``base_fit`` caches a base (``.npz``: the decoded image, ``.json``: bytes and fit seconds)."""
    return cache / (f"{stem}_b{rate:g}_s{steps}".replace(".", "p"))


def base_fit(rgb: np.ndarray, stem: str, rate: float, steps: int, cache: Path) -> dict:
    """Gaussian file at ``rate`` bpp (cached): bytes, decoded uint8 image, fit CPU/wall seconds."""
    from inrcodec.codec import compress, decompress
    from inrcodec.signal import Signal

    key = base_key(cache, stem, rate, steps)
    if key.with_suffix(".npz").exists():
        z = np.load(key.with_suffix(".npz"))
        meta = json.loads(key.with_suffix(".json").read_text())
        return {**meta, "decoded": z["decoded"]}
    if rate == 0:
        meta = {"bytes": 0, "cpu_s": 0.0, "wall_s": 0.0}
        dec = np.full_like(rgb, 128)
    else:
        sig = load(DATA / f"{stem}.png")
        c0, w0 = time.process_time(), time.perf_counter()
        res = compress(sig, "gaussian", bpp=rate, steps=steps, seed=0)
        meta = {"bytes": len(res.data), "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0,
                "fit_steps": res.report["fit_steps"], "load": os.getloadavg()[0]}
        dec = decompress(res.data).data
        assert isinstance(dec, np.ndarray) and dec.dtype == np.uint8
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(key.with_suffix(".npz"), decoded=dec)
    key.with_suffix(".json").write_text(json.dumps(meta))
    return {**meta, "decoded": dec}


def residual_points(rgb: np.ndarray, dec: np.ndarray, steps: list[float], coder: str) -> list[dict]:
    """(residual bytes, PSNR) of the closed-loop residual at each luma step."""
    out = []
    for s in steps:
        if coder == "mcdct2":
            from inrcodec.models import deblock, mcdct2

            q, _ = mcdct2.analyse(rgb.astype(np.float32) - dec.astype(np.float32), s)
            nbytes = len(mcdct2.encode_symbols([q]))
            rec = mcdct2.add(dec, q, s, deblock.DEFAULT_STRENGTH)
        else:
            from inrcodec.models import image_dct

            blob, rec = image_dct.code_residual(rgb, dec, s, variant=coder)
            nbytes = len(blob)
        out.append({"step": s, "residual_bytes": nbytes, "psnr": psnr8(rgb, rec)})
    return out


def pareto(points: list[dict]) -> list[dict]:
    """Points not dominated in (fewer bytes, higher PSNR), by increasing bpp."""
    front, best = [], -1e9
    for p in sorted(points, key=lambda p: (p["bpp"], -p["psnr"])):
        if p["psnr"] > best + 1e-9:
            front.append(p)
            best = p["psnr"]
    return front


def bd(anchor: list[dict], test: list[dict], lo: float, hi: float) -> float | str:
    def cut(c):
        c = sorted(c, key=lambda p: p["bpp"])
        inside = [p for p in c if lo <= p["bpp"] <= hi]
        # one point either side of the range, so the fit covers it
        below = [p for p in c if p["bpp"] < lo][-1:]
        above = [p for p in c if p["bpp"] > hi][:1]
        c = below + inside + above
        return {"bpp": [p["bpp"] for p in c], "psnr": [p["psnr"] for p in c]}
    try:
        return metrics.bd_rate(cut(anchor), cut(test))
    except InputError as exc:
        return f"n/a: {exc}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim03,kodim07,kodim01")
    ap.add_argument("--base-rates", default="0,0.1,0.2,0.35,0.6,1.0")
    ap.add_argument("--res-steps", default="3,4,5,6,8,10,12,16,20,24,32,48,64,96")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--coder", default="mcdct2")
    ap.add_argument("--avg-range", default="0.2,1.0")
    ap.add_argument("--baselines", default="jpeg,webp,avif")
    ap.add_argument("--alone-json", default="benchmarks/results/gaussian_kodak_rd_medium1000_{stem}.json",
                    help="bench_kodak result whose inrcodec-gaussian curve (same steps) joins the Gaussians-alone "
                         "points of the base fits, where the file exists")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks" / "results" / "oracle_gaussian_dct")
    args = ap.parse_args(argv)
    lo, hi = _floats(args.avg_range)
    rates, steps = _floats(args.base_rates), _floats(args.res_steps)
    result = {"command": "python benchmarks/oracle_gaussian_dct.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
              "coder": args.coder, "gaussian_steps": args.steps, "per_image": {}, "load_start": os.getloadavg()}
    from inrcodec.compare import compare

    for stem in [s for s in args.images.split(",") if s]:
        sig = load(DATA / f"{stem}.png")
        rgb = sig.data
        npx = rgb.shape[0] * rgb.shape[1]
        bl_cache = args.cache / f"{stem}_baselines.json"
        if bl_cache.exists():
            base_curves = json.loads(bl_cache.read_text())
        else:
            r = compare(sig, args.baselines.split(","), [], None, bpp_range=(0.12, 1.6), baseline_points=10)
            base_curves = {n: [{"bpp": p["bpp"], "psnr": p["psnr"]} for p in c] for n, c in r["curves"].items()}
            args.cache.mkdir(parents=True, exist_ok=True)
            bl_cache.write_text(json.dumps(base_curves))
        points, alone, fits = [], [], {}
        for rate in rates:
            f = base_fit(rgb, stem, rate, args.steps, args.cache)
            base_psnr = psnr8(rgb, f["decoded"])
            fits[str(rate)] = {k: v for k, v in f.items() if k != "decoded"} | {"psnr": base_psnr,
                                                                               "bpp": 8 * f["bytes"] / npx}
            if rate > 0:
                alone.append({"bpp": 8 * f["bytes"] / npx, "psnr": base_psnr})
            if rate > 0:  # the base alone (an empty residual) is a choice the encoder has too
                points.append({"base_rate": rate, "base_bytes": f["bytes"], "step": None, "residual_bytes": 0,
                               "psnr": base_psnr, "bytes": f["bytes"], "bpp": 8 * f["bytes"] / npx, "base_share": 1.0})
            c0 = time.process_time()
            for p in residual_points(rgb, f["decoded"], steps, args.coder):
                total = f["bytes"] + p["residual_bytes"] + STEP_BYTES
                points.append({"base_rate": rate, "base_bytes": f["bytes"], **p, "bytes": total,
                               "bpp": 8 * total / npx, "base_share": f["bytes"] / total})
            print(f"{stem} base {rate}: {8 * f['bytes'] / npx:.3f} bpp {base_psnr:.2f} dB "
                  f"(fit {f['cpu_s']:.0f} CPU-s); residuals {time.process_time() - c0:.1f} CPU-s", flush=True)
        alone_path = ROOT / args.alone_json.format(stem=stem)
        if alone_path.exists():
            extra = json.loads(alone_path.read_text())["per_image"][stem]["curves"].get("inrcodec-gaussian", [])
            alone += [{"bpp": p["bpp"], "psnr": p["psnr"], "from": alone_path.name} for p in extra]
        alone.sort(key=lambda p: p["bpp"])
        env = pareto(points)
        env_gs = pareto([p for p in points if p["base_rate"] > 0])  # a Gaussian base only (no flat-grey base)
        dct_only = pareto([p for p in points if p["base_rate"] == 0])
        curves = {"gaussian": alone, "envelope": env, "envelope_gaussian_base": env_gs, "dct_only": dct_only,
                  **base_curves}
        table = {}
        for row in ("gaussian", "envelope", "envelope_gaussian_base", "dct_only"):
            if len(curves[row]) >= 3:
                table[row] = {col: bd(curves[col], curves[row], lo, hi)
                              for col in ["gaussian", *base_curves] if col != row}
        result["per_image"][stem] = {"fits": fits, "points": points, "curves": curves, "bd_rate": table}
        for row, cols in table.items():
            print(f"  {row}: " + ", ".join(f"{c} {v:+.1f}%" if isinstance(v, float) else f"{c} {v}"
                                           for c, v in cols.items()), flush=True)
        print("  envelope base share: " + ", ".join(f"{p['bpp']:.2f}bpp<-base {p['base_rate']} step {p['step']}"
                                                    for p in env if lo * 0.8 <= p["bpp"] <= hi * 1.2), flush=True)
    result["load_end"] = os.getloadavg()
    rows = {r for v in result["per_image"].values() for r in v["bd_rate"]}
    result["mean_bd_rate"] = {}
    for row in sorted(rows):
        cols = {}
        for v in result["per_image"].values():
            for c, x in v["bd_rate"].get(row, {}).items():
                if isinstance(x, float):
                    cols.setdefault(c, []).append(x)
        result["mean_bd_rate"][row] = {c: float(np.mean(x)) for c, x in cols.items()}
    print("mean BD-rate:", json.dumps(result["mean_bd_rate"], indent=1))
    write(result, args.out)
    return 0


def write(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stems = list(result["per_image"])
    fig, axes = plt.subplots(1, len(stems), figsize=(6 * len(stems), 4.8), squeeze=False)
    style = {"gaussian": "k-o", "envelope": "r-s", "envelope_gaussian_base": "m--", "dct_only": "c:",
             "jpeg": "b-", "webp": "g-", "avif": "y-"}
    for ax, stem in zip(axes[0], stems):
        v = result["per_image"][stem]
        for p in v["points"]:
            ax.plot(p["bpp"], p["psnr"], ".", color="0.8", ms=3)
        for n, c in v["curves"].items():
            c = sorted(c, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in c], [p["psnr"] for p in c], style.get(n, "-"), label=n, ms=4)
        ax.set_xlim(0, 1.3)
        ax.set_title(f"{stem}: Gaussian base + {result['coder']} residual")
        ax.set_xlabel("bpp (whole file)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    write_figure_and_json(fig, result, out)


def write_figure_and_json(fig, result: dict, out: Path) -> None:
    """``<out>.png`` and ``<out>.json``, each written to a temporary file and renamed."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out.with_suffix(".png")) as tmp_png, atomic_output(out.with_suffix(".json")) as tmp_json:
        fig.savefig(tmp_png, format="png", dpi=90)
        tmp_json.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}.json/.png")


if __name__ == "__main__":
    sys.exit(main())
