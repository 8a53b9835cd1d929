"""Should one ``gaussian+dct`` fit's base share fall with the rate? (issue 13, session 28)

    # 1. Kodak: one 1000-step fit per image, rate and share (seed 0), appended as JSON lines
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_dct_share_search.py direct \\
        --images kodim01,...,kodim12 --rates 0.2,0.35,0.6,1.0 --steps 1000 --shares 0.2,0.3 -o share1000.jsonl
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gaussian_dct_share_search.py direct \\
        --images kodim01,...,kodim12 --rates 0.6,1.0 --steps 1000 --shares 0.13 -o share1000.jsonl
    # (share 0.4 is medium's own run: bench_kodak.py ... --steps 1000 -o .../gaussian_dct_s28_medium1000_kodimNN)
    # 2. Other pictures: centre 768x512 crops of ../shared/data/photos and two Kodak images in gray, encoded at
    #    medium's 1000 steps with the share fixed at 0.4 and with the rule (--rule-channels 1,3: gray and RGB).
    #    (Session 28's rows were made from the same crops saved as PNG and loaded back, whose header metadata
    #    differs by a few bytes, so a re-run lands within a few bytes of them, not on them.)
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_share_by_rate.py heldout --share fixed -o heldout_fixed.jsonl
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gdct_share_by_rate.py heldout --share rule \\
        --rule-channels 1,3 -o heldout_rule.jsonl
    # 3. The tables, BD-rates and figure
    python benchmarks/gdct_share_by_rate.py summary --kodak share1000.jsonl --kodak-medium 'R/gaussian_dct_s28_medium1000_{stem}.json' \\
        --heldout-fixed heldout_fixed.jsonl --heldout-rule heldout_rule.jsonl -o benchmarks/results/gdct_share_by_rate_s28

``summary`` scores candidate rules (share as a function of the total rate, piecewise linear in log bpp) on the
Kodak fits: a rule's share at each rate is read off the measured shares (PSNR and bpp interpolated in log share
between the two measured shares around it), its curve's BD-rate taken against the fixed share 0.4 per image; next
to them the oracle (the best measured share at each rate). On the held-out pictures the BD-rate is of real encodes
(the rule against the fixed share).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import metrics  # noqa: E402
from inrcodec.codec import compress  # noqa: E402
from inrcodec.compare import crop_signal  # noqa: E402
from inrcodec.models import gaussian_dct  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RGB_CROPS = ("wikimedia_003", "wikimedia_030", "wikimedia_044", "icinfo_rgb8bit_artificial")
GRAY_CROPS = ("icinfo_gray8bit_cathedral", "icinfo_gray8bit_spider_web")
GRAY_KODAK = ("kodim03", "kodim07")
RATES_RGB = (0.2, 0.35, 0.6, 1.0)
RATES_GRAY = (0.1, 0.2, 0.4, 0.8)
KODAK_RATES = (0.2, 0.35, 0.6, 1.0)
RULES = {  # name: (bpp, share) knots
    "fixed 0.3": ((1.0, 0.3),),
    "0.4 to 0.35 bpp, 0.2 at 0.6, 0.15 at 1": ((0.35, 0.4), (0.6, 0.2), (1.0, 0.15)),
    "0.4 to 0.3 bpp, 0.15 at 1": ((0.3, 0.4), (1.0, 0.15)),
    "0.4 to 0.2 bpp, 0.3 at 0.35, 0.2 at 0.6, 0.15 at 1": ((0.2, 0.4), (0.35, 0.3), (0.6, 0.2), (1.0, 0.15)),
    "0.4 to 0.2 bpp, 0.2 at 0.6, 0.15 at 1 (SHARE_BY_RATE)": ((0.2, 0.4), (0.6, 0.2), (1.0, 0.15)),
    "0.4 to 0.2 bpp, 0.15 at 1": ((0.2, 0.4), (1.0, 0.15)),
    "0.4 to 0.4 bpp, 0.15 at 1": ((0.4, 0.4), (1.0, 0.15)),
}


def heldout_pictures() -> list[tuple[str, Signal, tuple[float, ...]]]:
    """Centre 768x512 crops of the photos, and Kodak images in gray (BT.601 luma, rounded), with their rates."""
    crop = lambda n: crop_signal(load(DATA / "photos" / f"{n}.png"), 768, 512)  # noqa: E731
    out = [(f"{n} (crop)", crop(n), RATES_RGB) for n in RGB_CROPS]
    out += [(f"{n} (crop)", crop(n), RATES_GRAY) for n in GRAY_CROPS]
    for n in GRAY_KODAK:
        rgb = load(DATA / "kodak" / f"{n}.png").data.astype(np.float64)
        luma = np.clip(np.round(rgb @ [0.299, 0.587, 0.114]), 0, 255).astype(np.uint8)
        out.append((f"{n} (gray)", Signal(luma[..., None], "image"), RATES_GRAY))
    return out


def run_heldout(args) -> int:
    if args.rule_channels:
        gaussian_dct.SHARE_RULE_CHANNELS = tuple(int(c) for c in args.rule_channels.split(","))
    command = "python benchmarks/gdct_share_by_rate.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    for name, sig, rates in heldout_pictures():
        for rate in rates:
            c0 = time.process_time()
            config = {"base_share": gaussian_dct.BASE_SHARE} if args.share == "fixed" else None
            res = compress(sig, "gaussian+dct", bpp=rate, steps=args.steps, seed=0, config=config)
            row = {"image": name, "rate": rate, "bytes": len(res.data), "bpp": res.report["bpp"],
                   "psnr": res.report["psnr"], "share": res.report["config"]["base_share"],
                   "cpu_s": time.process_time() - c0, "command": command}
            print(json.dumps(row), flush=True)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _bd(ref: list[tuple[float, float]], test: list[tuple[float, float]]) -> float:
    curve = lambda pts: {"bpp": [p[0] for p in pts], "psnr": [p[1] for p in pts]}  # noqa: E731
    return float(metrics.bd_rate(curve(ref), curve(test)))


def summarise(args) -> dict:
    fits: dict[tuple[str, float], dict[float, tuple[float, float]]] = defaultdict(dict)
    for path in args.kodak:
        for r in _rows(path):
            fits[(r["image"], r["rate"])][r["base_share"]] = (r["bpp"], r["psnr"])
    stems = sorted({k[0] for k in fits})
    for stem in stems:  # share 0.4: medium's own run of the same code
        run = json.loads(Path(args.kodak_medium.format(stem=stem)).read_text())
        for p in run["per_image"][stem]["curves"]["inrcodec-gaussian+dct"]:
            fits[(stem, p["target_bpp"])][0.4] = (p["bpp"], p["psnr"])

    def at(stem, rate, share):
        got = fits[(stem, rate)]
        if share in got:
            return got[share]
        shares = sorted(got)
        if not shares[0] < share < shares[-1]:
            return None
        i = int(np.searchsorted(shares, share))
        a, b = shares[i - 1], shares[i]
        w = (math.log(share) - math.log(a)) / (math.log(b) - math.log(a))
        return tuple((1 - w) * x + w * y for x, y in zip(got[a], got[b]))

    complete = [s for s in stems if all(len(fits[(s, r)]) >= 3 for r in KODAK_RATES)]
    ref = {s: [at(s, r, 0.4) for r in KODAK_RATES] for s in complete}
    rules = {}
    for name, knots in RULES.items():
        rule = lambda t: gaussian_dct.share_for_rate(t, knots)  # noqa: E731
        per = {s: _bd(ref[s], [at(s, r, rule(r)) for r in KODAK_RATES]) for s in complete}
        rules[name] = {"knots": knots, "shares_at_rates": [rule(r) for r in KODAK_RATES],
                       "bd_rate_vs_0.4_per_image": per, "mean": float(np.mean(list(per.values())))}
    oracle = {s: _bd(ref[s], [max(fits[(s, r)].values(), key=lambda p: p[1]) for r in KODAK_RATES])
              for s in complete}
    measured = {f"{s} @ {r}": {str(k): v[1] for k, v in sorted(fits[(s, r)].items())} for s, r in sorted(fits)}

    held = {}
    fixed, ruled = _rows(args.heldout_fixed), _rows(args.heldout_rule)
    for name in dict.fromkeys(r["image"] for r in fixed):
        a = [(r["bpp"], r["psnr"]) for r in fixed if r["image"] == name]
        b = [(r["bpp"], r["psnr"]) for r in ruled if r["image"] == name]
        held[name] = {"rates": [r["rate"] for r in fixed if r["image"] == name],
                      "psnr_fixed": [p[1] for p in a], "psnr_rule": [p[1] for p in b],
                      "shares_rule": [r["share"] for r in ruled if r["image"] == name],
                      "bd_rate_rule_vs_fixed": _bd(a, b) if len(a) == len(b) >= 4 else None}
    return {"command": "python benchmarks/gdct_share_by_rate.py " + " ".join(map(shlex.quote, sys.argv[1:])),
            "kodak_psnr_by_share": measured, "kodak_rules": rules,
            "kodak_oracle": {"bd_rate_vs_0.4_per_image": oracle, "mean": float(np.mean(list(oracle.values())))},
            "heldout": held}


def figure(result: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    rule = result["kodak_rules"]["0.4 to 0.2 bpp, 0.2 at 0.6, 0.15 at 1 (SHARE_BY_RATE)"]["bd_rate_vs_0.4_per_image"]
    oracle = result["kodak_oracle"]["bd_rate_vs_0.4_per_image"]
    x = np.arange(len(rule))
    ax1.bar(x - 0.2, list(rule.values()), 0.4, label="SHARE_BY_RATE (read off the measured shares)")
    ax1.bar(x + 0.2, [oracle[s] for s in rule], 0.4, label="oracle: best measured share per rate")
    ax1.set_xticks(x, [s[-2:] for s in rule])
    ax1.set_title("Kodak (RGB), medium's 1000 steps: BD-rate vs a fixed share 0.4")
    ax1.set_ylabel("BD-rate (%)")
    ax1.axhline(0, color="k", lw=0.5)
    ax1.legend(fontsize=8, loc="lower left")
    held = {k: v["bd_rate_rule_vs_fixed"] for k, v in result["heldout"].items() if v["bd_rate_rule_vs_fixed"] is not None}
    ax2.barh(list(held), list(held.values()), color=["tab:red" if v > 0 else "tab:green" for v in held.values()])
    ax2.axvline(0, color="k", lw=0.5)
    ax2.set_title("Other pictures: real encodes, the rule vs 0.4 (BD-rate %)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("heldout")
    h.add_argument("--share", choices=["fixed", "rule"], required=True)
    h.add_argument("--rule-channels", default="", help="channel counts the rule applies to (default: the code's)")
    h.add_argument("--steps", type=int, default=1000)
    h.add_argument("-o", "--out", type=Path, required=True)
    s = sub.add_parser("summary")
    s.add_argument("--kodak", type=Path, nargs="+", required=True)
    s.add_argument("--kodak-medium", required=True, help="medium's per-image bench_kodak result, with {stem}")
    s.add_argument("--heldout-fixed", type=Path, required=True)
    s.add_argument("--heldout-rule", type=Path, required=True)
    s.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.mode == "heldout":
        import torch
        torch.set_num_threads(1)
        return run_heldout(args)
    result = summarise(args)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    figure(result, args.out.with_suffix(".png"))
    for name, r in result["kodak_rules"].items():
        print(f"{r['mean']:+6.2f} %  {name}")
    print(f"{result['kodak_oracle']['mean']:+6.2f} %  oracle")
    for name, r in result["heldout"].items():
        print(f"{r['bd_rate_rule_vs_fixed']:+6.2f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
