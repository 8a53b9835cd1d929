"""Residual-side experiments of ``gaussian+dct`` on cached Gaussian bases: exact bytes and PSNR, no fitting.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_dct_lab.py --images kodim03,kodim07 \\
        --base-rates 0.1,0.2,0.35 --variants baseline,rdoq -o benchmarks/results/gdct_lab_rdoq

The Gaussian bases are the ``gaussian`` files fitted by ``oracle_gaussian_dct.py`` (1000 steps, seed 0, cached
in ``--cache`` as decoded uint8 images plus their byte counts; fit them there first). For each image, base and
variant the residual is coded at every luma step of ``--res-steps`` in the closed loop (the real ``dct`` section
bytes; PSNR of the decoded 8-bit image): a point is (base bytes + section bytes + 4, PSNR). Nothing here depends
on the machine's load, so variants are compared exactly:

- per (image, base): BD-rate of each variant's curve over the steps against ``baseline``'s;
- per image: BD-rate of each variant's RD envelope over all bases (the Pareto front) against ``baseline``'s.

Variants: ``baseline`` (plain dead-zone quantiser), ``rdoq`` (``image_dct.rdo_quantise``: per coefficient
level / level - 1 / 0 by distortion + lambda x bits, bits from format 1's band statistics), ``rdoqctx`` (the same
priced with format 2's context models, ``rdoq_ctx``: the encoder since session 21; ``+nodrop`` without the block
drop after it), any of them ``+db`` (the deblocking strength with the least error, ``image_dct.best_strength``),
``wiener`` (a restoration filter after the deblocking, ``_restoration.py``, an experiment), ``rdoq+wiener``, and
``tx4`` (per block an 8x8 or four 4x4 transforms, ``_tx4.py``, an experiment), ``tx16`` (format 4: per 16x16
group four 8x8 transforms or one 16x16, ``image_tx16``; ``tx16+db``: the encoder's ``image_dct.encode_residual``
without its guard, ``tx16guard+db`` with it; ``rs`` in the name: with the restoration filters, the encoder's whole
chain; ``nosp``: without sign prediction, format 7's ``signpred`` tool, session 25; ``nogc``: without the contexts that
know the 16x16 groups, format 7's TOOL_GROUPS, session 26; ``cflband`` / ``cflimg``: with chroma from luma, TOOL_CFL,
alphas per band / one per channel, ``cflng`` without its guard, ``cflreg`` a free alpha per 32x32, a ceiling whose
section is not decodable; without ``cfl`` in the name: none), ``rdoqctxla`` / ``rdoqctxla2`` (``rdoq_ctx`` with its context
look-ahead: each choice also priced by the bits it changes in the magnitudes whose contexts hold it, the block's own
/ and the neighbouring blocks'; ``tx16guardla2+db``: the encoder's function with it), ``dq`` (dependent
quantisation, ``_depquant.py``, an experiment: Delta = dq_f x step, the trellis's levels coded by the unchanged
coder; ``dqla``, ``dqla2`` with the look-ahead; ``nodrop``, ``+db`` as above). The first variant is the anchor.
``--set NAME=X``: rdoq_lambda, ctx_lambda, chroma (the chroma step factor of ``rdoqctx``), drop_lambda,
tx_lambda, tx_bias, tx_mu, tx_requant, tx_bias16, tx_cal (tx16's choice), wiener_*, dq_f, dq_lambda (in step^2),
dq_passes. Any variant ``...@f2``: the same with the symbols coded by format 2's ``coefcoder`` instead of format 7's
``coefcoder7`` (``image_dct.RICH_MODEL`` off; session 25). Writes ``<out>.json`` and ``<out>.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inrcodec import metrics  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.models import image_dct  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from oracle_gaussian_dct import base_key, pareto, psnr8, write_figure_and_json  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"
HEADER_BYTES = 4  # container bytes of the dct section beyond the section itself (length, name): roughly


def cached_base(cache: Path, stem: str, rate: float, steps: int) -> tuple[int, np.ndarray]:
    """(bytes, decoded image) of the base oracle_gaussian_dct.py fitted and cached (FileNotFoundError if none)."""
    key = base_key(cache, stem, rate, steps)
    meta = json.loads(key.with_suffix(".json").read_text())
    return int(meta["bytes"]), np.load(key.with_suffix(".npz"))["decoded"]


def decode_blob(blob: bytes, base: np.ndarray) -> np.ndarray:
    """The decoded image of a ``dct`` section over ``base``."""
    q, units, strength, tx16, _, cfl = image_dct.decode_parts(blob, *base.shape)
    return image_dct.add(base, q, units, strength, tx16, cfl=cfl)


def code(variant: str, image: np.ndarray, base: np.ndarray, raw: np.ndarray, step: float, kw: dict):
    """(section bytes, decoded image) of one variant at luma ``step``."""
    if variant.endswith("@f2"):  # the same variant with the symbols in format 2's coder (RICH_MODEL off)
        keep = image_dct.RICH_MODEL
        image_dct.RICH_MODEL = False
        try:
            return code(variant[:-3], image, base, raw, step, kw)
        finally:
            image_dct.RICH_MODEL = keep
    strength = image_dct.DEBLOCK_STRENGTH
    if variant.startswith("tx4"):  # per-block 8x8 or four 4x4 transforms (image_tx), over RDOQ
        import _tx4 as image_tx
        from inrcodec.models import coefcoder

        if kw.get("_raw4") is None:
            kw["_raw4"] = image_tx.raw_split_coefficients(image, base)
        q, units, split = image_tx.quantise_split(raw, kw["_raw4"], step, kw.get("tx_lambda", 0.3),
                                                  kw.get("tx_bias", 1.0),
                                                  rdoq=kw.get("rdoq_lambda", image_dct.RDOQ_LAMBDA))
        rec_ = coefcoder._Recorder()
        image_tx.code_flags(rec_, q, split)
        blob = image_dct.encode_section(q, units, strength)
        return len(blob) + len(rec_.payload()), image_tx.add_split(base, q, units, strength, split)
    if variant.startswith("tx16"):  # format 4: per 16x16 group four 8x8 or one 16x16 transform (image_tx16)
        if kw.get("_raw16") is None:
            kw["_raw16"] = image_dct.raw_coefficients16(image, base)
        opts = {"mu": kw.get("tx_mu"), "bias": kw.get("tx_bias16"),
                "requantise": None if "tx_requant" not in kw else bool(kw["tx_requant"]),
                "calibrate": None if "tx_cal" not in kw else bool(kw["tx_cal"]),
                "guard": "guard" in variant, "rdoq": kw.get("ctx_lambda", image_dct.RDOQ_LAMBDA), "prices": "ctx",
                "lookahead": 2 if "la2" in variant else 1 if "la" in variant else 0}
        if variant.endswith("+db"):  # the encoder's function (best deblocking strength)
            keep = image_dct.SIGN_PREDICTION, image_dct.SIGN_FORM
            image_dct.SIGN_PREDICTION = "never" if "nosp" in variant else keep[0]  # nosp: no sign prediction (signpred)
            image_dct.SIGN_FORM = 1 if "sp1" in variant else keep[1]  # sp1: the sign stream's form 1 (session 25)
            keep_cg, keep_gc = image_dct.CFL_GUARD, image_dct.GROUP_CONTEXTS
            image_dct.CFL_GUARD = "cflng" not in variant  # cflng: chroma from luma without its guard
            image_dct.GROUP_CONTEXTS = "nogc" not in variant  # nogc: without the contexts that know the groups
            keep_gcost = image_dct.TX16_GROUP_COST
            image_dct.TX16_GROUP_COST = "gcost" in variant  # gcost: the 16x16 choice priced with them
            cfl = ("image" if "cflimg" in variant else "band" if ("cflband" in variant or "cflng" in variant) else
                   "region" if "cflreg" in variant else "off")  # cflreg: a free alpha per 32x32 (a ceiling)
            try:
                if cfl == "region":
                    with _region_ceiling():
                        blob, rec = image_dct.encode_residual(image, base, raw, kw["_raw16"], step, cfl=cfl, **opts)
                else:
                    blob, rec = image_dct.encode_residual(image, base, raw, kw["_raw16"], step,
                                                          restoration="rs" in variant, cfl=cfl, **opts)
            finally:
                image_dct.SIGN_PREDICTION, image_dct.SIGN_FORM = keep
                image_dct.CFL_GUARD, image_dct.GROUP_CONTEXTS = keep_cg, keep_gc
                image_dct.TX16_GROUP_COST = keep_gcost
            if "rs" in variant:  # with the restoration filters (rs): the decoder's image
                return len(blob), image_dct.add(base, *image_dct.decode_parts(blob, *base.shape))
            if rec is None:
                rec = decode_blob(blob, base)
            return len(blob), rec
        del opts["guard"]
        q, units, flags = image_dct.quantise_tx16(raw, kw["_raw16"], step, **opts)
        blob = image_dct.encode_section(q, units, strength, tx16=flags)
        return len(blob), image_dct.add(base, q, units, strength, flags)
    if variant.startswith("dq"):  # dependent quantisation (depquant): levels by the trellis, Delta = dq_f x step
        return _code_dq(variant, image, base, raw, step, kw)
    if variant.startswith("rdoqctx"):  # RDOQ priced with format 2's context models (rdoq_ctx)
        drop = 0.0 if "nodrop" in variant else kw.get("drop_lambda", image_dct.RDO_LAMBDA)
        q, units = image_dct.quantise_raw(raw, step, rdoq=kw.get("ctx_lambda", image_dct.RDOQ_LAMBDA), prices="ctx",
                                          chroma=kw.get("chroma", image_dct.CHROMA_FACTOR), lam=drop,
                                          lookahead=2 if "la2" in variant else 1 if "la" in variant else 0)
    elif variant.startswith("rdoq"):
        q, units = image_dct.quantise_raw(raw, step, rdoq=kw.get("rdoq_lambda", image_dct.RDOQ_LAMBDA))
    else:
        q, units = image_dct.quantise_raw(raw, step)
    if variant.endswith("+db"):  # the deblocking strength with the best PSNR (the section stores it)
        strength = image_dct.best_strength(image, base, q, units)
    if variant.endswith("+db2"):  # H.264's full normal filter (p1/q1 too), best strength: an experiment
        import _deblock2

        plain = image_dct.add(base, q, units, 0)
        coded = np.any(q != 0, axis=(0, 3))
        recs = [_deblock2.deblock2(plain, coded, int(units[0, 0]), s) for s in image_dct.DEBLOCK_CANDIDATES]
        rec = max(recs, key=lambda r: psnr8(image, r))
        return len(image_dct.encode_section(q, units, strength)), rec
    blob = image_dct.encode_section(q, units, strength)
    rec = image_dct.add(base, q, units, strength)
    if variant.endswith("wiener"):
        import _restoration as restoration

        params = restoration.fit(image, rec, **{k[7:]: v for k, v in kw.items() if k.startswith("wiener_")})
        extra = restoration.encode(params)
        rec = restoration.apply(rec, params)
        return len(blob) + len(extra), rec
    return len(blob), rec


@contextlib.contextmanager
def _region_ceiling(r: int = 4):
    """``cflreg``: chroma from luma with a least-squares alpha per r x r blocks and channel (all bands), in 1/16, and
    no side information (the section holds no alphas, so it cannot be decoded; the encoder's own image is the
    point): the ceiling of any region-wise signalling (session 26)."""
    def fit(raw, q, units, tx16=None, mode=None):
        y = image_dct.cfl_dequantised(q[:1], units[:1], np.zeros((0, len(image_dct.CFL_EDGES) - 1)), tx16)[0] / 16.0
        by, bx = y.shape[:2]
        rows, cols = np.arange(by) // r, np.arange(bx) // r
        out = np.zeros((2, by, bx, len(image_dct.CFL_EDGES) - 1), np.int64)
        for ch in (1, 2):
            num = np.zeros((rows[-1] + 1, cols[-1] + 1))
            den = np.zeros_like(num)
            np.add.at(num, (rows[:, None], cols[None, :]), (y * raw[ch]).sum(-1))
            np.add.at(den, (rows[:, None], cols[None, :]), (y * y).sum(-1))
            a = np.rint(num / np.maximum(den, 1e-9) * (1 << image_dct.CFL_SHIFT))
            out[ch - 1] = np.clip(a, -image_dct.CFL_MAX, image_dct.CFL_MAX)[rows][:, cols][..., None]
        return out if out.any() else None

    encode_section = image_dct.encode_section

    def free(*a, cfl=None, **k):  # the map's bytes are not counted
        return encode_section(*a, cfl=None, **k)

    keep = image_dct.cfl_fit
    image_dct.cfl_fit, image_dct.encode_section = fit, free
    try:
        yield
    finally:
        image_dct.cfl_fit, image_dct.encode_section = keep, encode_section


def _code_dq(variant: str, image, base, raw, step: float, kw: dict):
    """``dq``: the trellis's levels coded by the unchanged coder, their reconstructions (``depquant.reconstruct``)
    decoded with steps Delta; ``+db`` the best deblocking strength (candidates scaled by 1 / dq_f: the thresholds
    scale with step x strength); ``nodrop``: without the block drop."""
    import _depquant as depquant

    f = kw.get("dq_f", 0.5)
    chroma = kw.get("chroma", image_dct.CHROMA_FACTOR)
    units = image_dct.step_units(step * f, raw.shape[0], chroma)
    coef = raw / (image_dct._per_position(units)[:, None, None, :] / image_dct.STEP_UNIT)
    lam = kw.get("dq_lambda", kw.get("ctx_lambda", image_dct.RDOQ_LAMBDA)) / f**2
    drop = 0.0 if "nodrop" in variant else kw.get("drop_lambda", image_dct.RDO_LAMBDA) / f**2
    q = depquant.trellis(coef, lam, chroma, passes=int(kw.get("dq_passes", 2)), drop=drop,
                         lookahead=2 if "la2" in variant else 1 if "la" in variant else 0)
    r = depquant.reconstruct(q)
    strength = image_dct.DEBLOCK_STRENGTH
    if variant.endswith("+db"):
        cands = tuple(sorted({min(int(round(s / f)), 64) for s in image_dct.DEBLOCK_CANDIDATES}))
        strength = image_dct.best_strength(image, base, r, units, candidates=cands)
    return len(image_dct.encode_section(q, units, strength)), image_dct.add(base, r, units, strength)


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def bd(anchor: list[dict], test: list[dict]) -> float | str:
    def c(points):
        p = sorted(points, key=lambda p: p["bpp"])
        return {"bpp": [x["bpp"] for x in p], "psnr": [x["psnr"] for x in p]}
    try:
        return metrics.bd_rate(c(anchor), c(test))
    except InputError as exc:
        return f"n/a: {exc}"


def lab_parser(doc: str, res_steps: str, images: str = "kodim01,kodim03,kodim05,kodim07") -> argparse.ArgumentParser:
    """The options of the labs over cached bases (this one, rsearch_lab, signpred_lab, signpred_form2_lab,
    gdct_restore_lab): images, base rates, residual steps, the base cache; the caller adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--images", default=images)
    ap.add_argument("--base-rates", default="0.1,0.2,0.35")
    ap.add_argument("--res-steps", default=res_steps)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gsresid_cache"))
    return ap


def cpu_ms(fn, runs: int, best: bool = False) -> float:
    """Process CPU milliseconds of ``fn()`` (not wall: the machine is shared): the median of ``runs`` calls, or
    their minimum with ``best``."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return 1000.0 * float(min(times) if best else np.median(times))


def lab_record(script: str, argv) -> dict:
    """A lab result's first fields: the command that made it, the commit, the load at the start."""
    return {"command": f"python benchmarks/{script} " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
            "git_commit": _commit(), "load_start": os.getloadavg()}


def main(argv=None) -> int:
    ap = lab_parser(__doc__, "4,5,6,8,10,12,16,20,24,32,48", images="kodim03,kodim07")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--variants", default="baseline,rdoq")
    ap.add_argument("--set", action="append", default=[], help="variant keyword NAME=FLOAT (e.g. rdoq_lambda=0.3)")
    ap.add_argument("--cfl-edges", default=None, help="zig-zag band edges of chroma from luma's alphas, e.g. "
                    "0,1,3,6,10,64 (image_dct.CFL_EDGES; a format constant: the lab's files decode in this run only)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cfl_edges:
        image_dct.CFL_EDGES = tuple(int(e) for e in args.cfl_edges.split(","))
        image_dct.cfl_bands.cache_clear()
    kw = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    variants = args.variants.split(",")
    steps = [float(s) for s in args.res_steps.split(",")]
    result = dict(lab_record("gaussian_dct_lab.py", argv), settings=kw, cpu_s={}, per_image={})
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        npx = image.shape[0] * image.shape[1]
        per_base, points = {}, {v: [] for v in variants}
        for rate in [float(r) for r in args.base_rates.split(",")]:
            try:
                base_bytes, base = cached_base(args.cache, stem, rate, args.steps)
            except FileNotFoundError:
                print(f"{stem}: no cached base at {rate} bpp, skipped", flush=True)
                continue
            raw = image_dct.raw_coefficients(image, base)
            kwb = dict(kw, _raw4=None, _raw16=None)  # per-base caches of the variants
            curves = {}
            for v in variants:
                c0 = time.process_time()
                pts = []
                for s in steps:
                    nbytes, rec = code(v, image, base, raw, s, kwb)
                    total = base_bytes + nbytes + HEADER_BYTES
                    pts.append({"step": s, "base_rate": rate, "residual_bytes": nbytes, "bytes": total,
                                "bpp": 8 * total / npx, "psnr": psnr8(image, rec)})
                curves[v] = pts
                points[v] += pts
                cpu = time.process_time() - c0
                result["cpu_s"][f"{stem} {rate} {v}"] = round(cpu, 2)
                print(f"{stem} base {rate} {v}: {cpu:.1f} CPU-s", flush=True)
            per_base[str(rate)] = {"base_bytes": base_bytes, "base_psnr": psnr8(image, base), "curves": curves,
                                   "bd_rate_vs_baseline": {v: bd(curves[variants[0]], curves[v])
                                                           for v in variants[1:]}}
            print(f"  {stem} base {rate}: " + json.dumps(per_base[str(rate)]["bd_rate_vs_baseline"]), flush=True)
        env = {v: pareto(points[v]) for v in variants}
        result["per_image"][stem] = {"per_base": per_base, "envelope": env,
                                     "envelope_bd_rate_vs_baseline": {v: bd(env[variants[0]], env[v])
                                                                      for v in variants[1:]}}
        print(f"  {stem} envelope: " + json.dumps(result["per_image"][stem]["envelope_bd_rate_vs_baseline"]),
              flush=True)
    result["mean"] = {}
    for v in variants[1:]:
        per_base = [b["bd_rate_vs_baseline"][v] for r in result["per_image"].values() for b in r["per_base"].values()]
        envs = [r["envelope_bd_rate_vs_baseline"][v] for r in result["per_image"].values()]
        result["mean"][v] = {"per_base": float(np.mean([x for x in per_base if isinstance(x, float)])),
                             "envelope": float(np.mean([x for x in envs if isinstance(x, float)]))}
    result["load_end"] = os.getloadavg()
    print("mean BD-rate vs baseline:", json.dumps(result["mean"]))
    write(result, args.out)
    return 0


def write(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stems = list(result["per_image"])
    fig, axes = plt.subplots(1, len(stems), figsize=(5.5 * len(stems), 4.4), squeeze=False)
    for ax, stem in zip(axes[0], stems):
        for i, (v, pts) in enumerate(result["per_image"][stem]["envelope"].items()):
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], "-o", color=f"C{i}", ms=3, label=v)
        ax.set_xlim(0, 1.3)
        ax.set_title(f"{stem}: RD envelope over bases")
        ax.set_xlabel("bpp (base + residual)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    write_figure_and_json(fig, result, out)


if __name__ == "__main__":
    sys.exit(main())
