"""Gaussian section form 1 -> form 2, end to end: two ``bench_presets.py`` runs (before: a checkout of the parent
commit; after: this one) merged into one result, with BD-rates against the classical codecs and between them.

    # before: in a checkout of the commit before form 2 (git archive 748fbf1), with the encoded files kept
    KEEP_DIR=/tmp/files PYTHONPATH=. python benchmarks/bench_presets.py --presets medium --uncapped \\
        --images kodim01,...,kodim06 --rates 0.2,0.35,0.6,1.0 -o /tmp/before
    # after: the same command in this checkout
    PYTHONPATH=. python benchmarks/bench_presets.py ... -o /tmp/after
    PYTHONPATH=. python benchmarks/bench_gaussian_form2.py /tmp/before.json /tmp/after.json \\
        [--recode /tmp/files/*.inrc] -o benchmarks/results/gaussian_form2_kodak

``--recode``: the before-run's files re-coded in form 2 (the same quantised Gaussians, bit-exact same picture):
the coding gain alone, without the rate search spending it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_presets import plot, summarise  # noqa: E402

from inrcodec.container import read_container  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.metrics import bd_rate  # noqa: E402
from inrcodec.models import gaussian_codec as gc  # noqa: E402


def recode(paths: list[Path]) -> dict:
    rows = []
    for p in paths:
        c = read_container(p.read_bytes())
        h, w, nc = c.signal["shape"]
        sec = c.sections["gaussians"]
        q, layer, steps, counts = gc.decode_section(sec, h, w, nc)
        f1 = gc.encode_section(q, layer, len(counts), steps, form=gc.FORM_LEGACY)
        f2 = gc.encode_section(q, layer, len(counts), steps, form=gc.FORM_CONTEXT)
        file_bytes = len(p.read_bytes())
        rows.append({"file": p.name, "gaussians": len(q.index), "file_bytes": file_bytes, "form1_section": len(f1),
                     "form2_section": len(f2), "file_saving_pct": round(100 * (len(f2) - len(f1)) / file_bytes, 2)})
    return {"files": rows, "mean_file_saving_pct": round(float(np.mean([r["file_saving_pct"] for r in rows])), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--recode", nargs="*", type=Path, default=[])
    ap.add_argument("--note", default="")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks" / "results" / "gaussian_form2_kodak")
    a = ap.parse_args()
    before, after = json.loads(a.before.read_text()), json.loads(a.after.read_text())
    pb, pa = next(iter(before["points"].values())), next(iter(after["points"].values()))
    images = sorted({p["image"] for p in pa if sum(q["image"] == p["image"] for q in pa) >= 4}
                    & {p["image"] for p in pb})  # images both runs completed (4 rates)
    result = {"command": "python " + " ".join(sys.argv), "note": a.note, "load_average_now": os.getloadavg(),
              "before_command": before["command"], "after_command": after["command"],
              "baselines_from": before["baselines_from"], "images": images,
              "points": {"form 1 (before)": [p for p in pb if p["image"] in images],
                         "form 2 (after)": [p for p in pa if p["image"] in images]}}
    summarise(result)
    per = {}
    for image in images:
        ref = sorted((p["bpp"], p["psnr"]) for p in pb if p["image"] == image)
        new = sorted((p["bpp"], p["psnr"]) for p in pa if p["image"] == image)
        try:
            per[image] = round(bd_rate(ref, new), 2)
        except InputError as exc:
            per[image] = f"n/a: {exc}"
    nums = [v for v in per.values() if isinstance(v, float)]
    result["bd_rate_after_vs_before"] = {"per_image": per, "mean": round(float(np.mean(nums)), 2) if nums else None}
    if a.recode:
        result["recode_before_files"] = recode(a.recode)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(result, a.out.with_suffix(".png"))
    print(json.dumps({k: result[k] for k in ("images", "bd_rate_vs", "bd_rate_after_vs_before")}, indent=1))
    if a.recode:
        print("recode mean file saving %", result["recode_before_files"]["mean_file_saving_pct"])


if __name__ == "__main__":
    main()
