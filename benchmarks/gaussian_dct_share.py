"""Base share of ``gaussian+dct`` by rate: which share of the bytes should the Gaussians get? (issue 13)

    python benchmarks/gaussian_dct_share.py benchmarks/results/gdct_share_curves.json \\
        -o benchmarks/results/gdct_share_rule

Input: a ``gaussian_dct_lab.py`` result (one variant, several Gaussian bases per image, the residual coded at
many steps over each). Each base gives a curve of (total bpp, PSNR); at a total rate T, a share s puts the base at
s x T bpp: its PSNR is interpolated along each cached base's curve at T (log rate), then between the two cached
bases that bracket s x T (log base rate). A rule s(T) so gives a curve over T (``--totals``); its BD-rate is taken
against the fixed share 0.4 (``BASE_SHARE``) per image and averaged, next to the oracle (the best cached base at
each T, an upper bound no rule reaches). Rules outside the cached base rates at some T are marked n/a there.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from inrcodec import metrics  # noqa: E402
from oracle_gaussian_dct import write_figure_and_json  # noqa: E402

RULES = {
    "0.4": lambda t: 0.4,
    "0.3": lambda t: 0.3,
    "0.35": lambda t: 0.35,
    "0.45": lambda t: 0.45,
    "0.5": lambda t: 0.5,
    # rising with the rate: shares the oracle picked on kodim03/07 (0.2-0.3 at 0.3 bpp, 0.4-0.6 at 1 bpp)
    "0.3@0.2..0.5@1": lambda t: float(np.clip(0.3 + 0.2 * math.log(t / 0.2) / math.log(5.0), 0.3, 0.5)),
    "0.25@0.2..0.45@1": lambda t: float(np.clip(0.25 + 0.2 * math.log(t / 0.2) / math.log(5.0), 0.25, 0.45)),
    "0.35@0.2..0.5@1": lambda t: float(np.clip(0.35 + 0.15 * math.log(t / 0.2) / math.log(5.0), 0.35, 0.5)),
    # falling with the rate
    "0.5@0.2..0.3@1": lambda t: float(np.clip(0.5 - 0.2 * math.log(t / 0.2) / math.log(5.0), 0.3, 0.5)),
}


def psnr_at(curve: list[dict], total: float) -> float | None:
    """PSNR of a base's curve at total bpp (linear in log bpp between its points); None outside it."""
    pts = sorted((p["bpp"], p["psnr"]) for p in curve)
    x = np.log([p[0] for p in pts])
    y = np.maximum.accumulate([p[1] for p in pts])
    lt = math.log(total)
    if lt < x[0] or lt > x[-1]:
        return None
    return float(np.interp(lt, x, y))


def rule_curve(bases: list[tuple[float, list[dict]]], rule, totals: list[float]) -> list[dict | None]:
    """(bpp, psnr) at each total rate under ``rule``; ``bases`` (base bpp, curve) by increasing base bpp."""
    out = []
    lb = np.log([b for b, _ in bases])
    for t in totals:
        want = rule(t) * t
        lw = math.log(want)
        if lw < lb[0] - 1e-9 or lw > lb[-1] + 1e-9:
            out.append(None)
            continue
        i = int(np.clip(np.searchsorted(lb, lw) - 1, 0, len(bases) - 2))
        a, b = psnr_at(bases[i][1], t), psnr_at(bases[i + 1][1], t)
        if a is None or b is None:
            out.append(None)
            continue
        f = (lw - lb[i]) / (lb[i + 1] - lb[i])
        out.append({"bpp": t, "psnr": (1 - f) * a + f * b, "share": rule(t)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lab_json", type=Path)
    ap.add_argument("--variant", default="rdoq")
    ap.add_argument("--totals", default="0.2,0.25,0.3,0.35,0.45,0.6,0.75,0.9,1.0")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    lab = json.loads(args.lab_json.read_text())
    totals = [float(t) for t in args.totals.split(",")]
    result = {"command": "python benchmarks/gaussian_dct_share.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
              "lab": lab["command"], "per_image": {}}
    for stem, img in lab["per_image"].items():
        npx = None
        bases = []
        for rate, b in img["per_base"].items():
            curve = b["curves"][args.variant]
            p0 = curve[0]
            npx = 8 * p0["bytes"] / p0["bpp"]
            bases.append((8 * b["base_bytes"] / npx, curve))
        bases.sort(key=lambda x: x[0])
        curves = {name: rule_curve(bases, rule, totals) for name, rule in RULES.items()}
        oracle = []
        for t in totals:
            cands = [(psnr_at(c, t), bb) for bb, c in bases]
            cands = [c for c in cands if c[0] is not None]
            oracle.append({"bpp": t, "psnr": max(cands)[0], "share": max(cands)[1] / t} if cands else None)
        curves["oracle"] = oracle
        ref = curves["0.4"]
        bdr = {}
        for name, c in curves.items():
            ok = [i for i in range(len(totals)) if c[i] is not None and ref[i] is not None]
            if len(ok) < 4:
                bdr[name] = "n/a"
                continue
            bdr[name] = metrics.bd_rate({"bpp": [ref[i]["bpp"] for i in ok], "psnr": [ref[i]["psnr"] for i in ok]},
                                        {"bpp": [c[i]["bpp"] for i in ok], "psnr": [c[i]["psnr"] for i in ok]})
        result["per_image"][stem] = {"bases_bpp": [b for b, _ in bases], "curves": curves,
                                     "bd_rate_vs_share_0.4": bdr}
        print(stem, "oracle shares:", [round(p["share"], 2) if p else None for p in oracle])
        print("  ", {k: (round(v, 2) if isinstance(v, float) else v) for k, v in bdr.items()})
    names = list(RULES) + ["oracle"]
    result["mean_bd_rate_vs_share_0.4"] = {
        n: float(np.mean([r["bd_rate_vs_share_0.4"][n] for r in result["per_image"].values()
                          if isinstance(r["bd_rate_vs_share_0.4"][n], float)])) for n in names}
    print("mean:", {k: round(v, 2) for k, v in result["mean_bd_rate_vs_share_0.4"].items()})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (stem, r) in enumerate(result["per_image"].items()):
        o = [p for p in r["curves"]["oracle"] if p]
        ax.plot([p["bpp"] for p in o], [p["share"] for p in o], "-o", color=f"C{i}", label=f"{stem} oracle", ms=3)
    t = np.linspace(0.2, 1.0, 50)
    for name in ("0.4", "0.3@0.2..0.5@1"):
        ax.plot(t, [RULES[name](x) for x in t], "k--" if name == "0.4" else "k:", label=f"rule {name}")
    ax.set_xlabel("total bpp")
    ax.set_ylabel("base share of the bytes (best cached base)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    write_figure_and_json(fig, result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
