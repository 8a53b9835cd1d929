"""Oracle of a per-file choice of the residual's encoder parameters (issue 13, session 26): exact bytes and PSNR over
``gaussian_dct_lab.py``'s cached Gaussian bases, no fitting.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/rsearch_lab.py \\
        --settings base,chroma=1.0,chroma=1.5,rdoq=0.21,rdoq=0.42 -o benchmarks/results/rsearch_lab_s26

Each setting is the encoder's whole chain (``image_dct.encode_residual``: RDOQ priced with the context models,
16x16 groups with their guard, deblocking strength and restoration filters chosen per file, format 7 with its
tools) with one or more of its parameters changed: ``chroma`` (chroma step / luma step, ``CHROMA_FACTOR``),
``rdoq`` (RDOQ's lambda per step^2, ``RDOQ_LAMBDA``), ``dc`` (DC step / AC step, ``DC_FACTOR``), ``lam`` (the block
drop's lambda, ``RDO_LAMBDA``), ``rich`` (0: format 2's coefficient coder instead of ``coefcoder7``), ``la``
(``rdoq_ctx``'s look-ahead), ``mu`` (the 16x16 choice's lambda factor), joined by ``+``
(``chroma=1.5+rdoq=0.42``). ``base``: the constants as session 25 left them (``BASE``). Every point is (base bytes + section bytes
+ 4, PSNR of the decoded 8-bit image at residual step s), cached in ``--points`` (JSON, by image, base, setting
and step) so that later runs add settings without coding the old ones again.

Per base (= a file at one rate range): BD-rate of each setting's curve against ``base``'s; the oracle of a
per-(file, rate) choice: at each PSNR the least log-rate over the settings' cubic fits (``metrics``' fit), averaged
over the PSNR interval every curve covers, against ``base``'s fit (``oracle``; per parameter: ``base`` and that
parameter's values only). ``null``: ``base`` at steps x 2^(1/4) treated as one more setting, the bias of taking a
minimum over fits that all describe the same curve (subtract it).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaussian_dct_lab import DATA, HEADER_BYTES, bd, cached_base, lab_parser, lab_record, psnr8  # noqa: E402

from inrcodec import metrics  # noqa: E402
from inrcodec.models import image_dct  # noqa: E402
from inrcodec.signals import load  # noqa: E402

PARAMS = ("chroma", "rdoq", "dc", "lam", "rich", "la", "mu")
NULL_FACTOR = 2 ** 0.25
# ``base``: the encoder's constants as session 25 left them (RDOQ_LAMBDA 0.3 then), whatever image_dct holds now
BASE = {"chroma": 1.25, "rdoq": 0.3, "dc": 1.0, "lam": 0.06, "rich": 1.0, "la": 0.0}


def parse_setting(name: str) -> dict:
    if name in ("base", "null"):
        return {}
    out = {}
    for part in name.split("+"):
        k, v = part.split("=", 1)
        if k not in PARAMS:
            raise SystemExit(f"unknown parameter {k!r} in {name!r}")
        out[k] = float(v)
    return out


def code_point(image, base, raw, raw16, step: float, s: dict) -> tuple[int, float]:
    """(section bytes, PSNR of the decoded image) of the encoder's chain with setting ``s`` at luma ``step``."""
    s = {**BASE, **s}
    kw = dict(rdoq=s["rdoq"], prices="ctx", lookahead=int(s["la"]), chroma=s["chroma"], dc=s["dc"], lam=s["lam"])
    if "mu" in s:
        kw["mu"] = s["mu"]
    keep = image_dct.RICH_MODEL
    image_dct.RICH_MODEL = bool(s.get("rich", 1.0))
    try:
        blob, _ = image_dct.encode_residual(image, base, raw, raw16, step, restoration=True, **kw)
    finally:
        image_dct.RICH_MODEL = keep
    q, units, strength, flags, filters = image_dct.decode_residual(blob, *base.shape)
    return len(blob), psnr8(image, image_dct.add(base, q, units, strength, flags, filters))


def _fit_curve(points: list[dict]):
    p = sorted(points, key=lambda x: x["psnr"])
    d = np.array([x["psnr"] for x in p])
    r = np.log(np.array([x["bpp"] for x in p]))
    return metrics._fit(d, r), float(d.min()), float(d.max())


def oracle(curves: dict[str, list[dict]], anchor: str = "base", grid: int = 200) -> float:
    """BD-rate (%) of the per-PSNR least log-rate over ``curves``' fits against ``anchor``'s fit."""
    fits = {k: _fit_curve(v) for k, v in curves.items()}
    lo = max(f[1] for f in fits.values())
    hi = min(f[2] for f in fits.values())
    if hi <= lo:
        return float("nan")
    x = np.linspace(lo, hi, grid)
    best = np.min([f[0](x) for f in fits.values()], axis=0)
    base = fits[anchor][0](x)
    return (math.exp(float(np.mean(best - base))) - 1.0) * 100.0


def main(argv=None) -> int:
    ap = lab_parser(__doc__, "5,6,8,11,16,22,32")
    ap.add_argument("--settings", default="base,null")
    ap.add_argument("--points", type=Path, default=Path("/tmp/rsearch_points.json"))
    ap.add_argument("--analyse-only", action="store_true", help="no coding: the points cached so far")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    settings = args.settings.split(",")
    if "base" not in settings:
        settings.insert(0, "base")
    steps = [float(s) for s in args.res_steps.split(",")]
    rates = [float(r) for r in args.base_rates.split(",")]
    store = json.loads(args.points.read_text()) if args.points.exists() else {}
    result = dict(lab_record("rsearch_lab.py", argv), cpu_s={}, per_base={})
    c_all = time.process_time()
    for stem in args.images.split(","):
        image = load(DATA / f"{stem}.png").data
        npx = image.shape[0] * image.shape[1]
        for rate in rates:
            base_bytes, base = cached_base(args.cache, stem, rate, 1000)
            key = f"{stem} {rate:g}"
            raw = raw16 = None
            curves = {}
            for name in settings:
                s = parse_setting(name)
                pts, c0, coded = [], time.process_time(), 0
                for st in steps:
                    st = st * NULL_FACTOR if name == "null" else st
                    pk = f"{key} {'base' if name == 'null' else name} {st:.4f}"
                    if pk not in store:
                        if args.analyse_only:
                            continue
                        if raw is None:
                            raw = image_dct.raw_coefficients(image, base)
                            raw16 = image_dct.raw_coefficients16(image, base)
                        t0 = time.process_time()
                        nbytes, psnr = code_point(image, base, raw, raw16, st, s)
                        store[pk] = {"residual_bytes": nbytes, "psnr": psnr, "cpu_s": time.process_time() - t0}
                        coded += 1
                    e = store[pk]
                    result["points_cpu_s"] = result.get("points_cpu_s", 0.0) + e["cpu_s"]
                    total = base_bytes + e["residual_bytes"] + HEADER_BYTES
                    pts.append({"step": st, "bytes": total, "bpp": 8 * total / npx, "psnr": e["psnr"]})
                if coded:
                    args.points.write_text(json.dumps(store))
                    result["cpu_s"][f"{key} {name}"] = round(time.process_time() - c0, 2)
                    print(f"{key} {name}: {coded} points, {time.process_time() - c0:.1f} CPU-s", flush=True)
                if len(pts) >= 4:
                    curves[name] = pts
            if "base" not in curves:
                continue
            per = {"base_bytes": base_bytes, "curves": curves,
                   "bd_rate_vs_base": {k: bd(curves["base"], v) for k, v in curves.items() if k != "base"}}
            groups = {}
            for name in curves:
                for p in parse_setting(name):
                    groups.setdefault(p if "+" not in name else "combined", []).append(name)
            real = [k for k in curves if k != "null"]
            per["oracle"] = {"all": oracle({k: curves[k] for k in real})}
            for g, names in groups.items():
                per["oracle"][g] = oracle({k: curves[k] for k in ["base", *names]})
            if "null" in curves:
                per["oracle"]["null"] = oracle({k: curves[k] for k in ("base", "null")})
            result["per_base"][key] = per
            print(f"  {key}: BD " + json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                                for k, v in per["bd_rate_vs_base"].items()}), flush=True)
            print(f"  {key}: oracle " + json.dumps({k: round(v, 2) for k, v in per["oracle"].items()}), flush=True)
    summary = {}
    keys = {k for per in result["per_base"].values() for k in per["bd_rate_vs_base"]}
    for k in sorted(keys):
        vals = [per["bd_rate_vs_base"][k] for per in result["per_base"].values()
                if isinstance(per["bd_rate_vs_base"].get(k), float)]
        summary[f"bd {k}"] = {"mean": float(np.mean(vals)), "min": float(np.min(vals)), "max": float(np.max(vals)),
                              "n": len(vals)}
    okeys = {k for per in result["per_base"].values() for k in per["oracle"]}
    for k in sorted(okeys):
        vals = [per["oracle"][k] for per in result["per_base"].values() if k in per["oracle"]]
        summary[f"oracle {k}"] = {"mean": float(np.nanmean(vals)), "min": float(np.nanmin(vals)),
                                  "max": float(np.nanmax(vals)), "n": len(vals)}
    result["summary"] = summary
    result["cpu_s_total"] = round(time.process_time() - c_all, 1)  # this run's (the cached points' own: points_cpu_s)
    result["load_end"] = os.getloadavg()
    for k, v in summary.items():
        print(f"{k:40s} mean {v['mean']:+.2f}  min {v['min']:+.2f}  max {v['max']:+.2f}  (n={v['n']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
