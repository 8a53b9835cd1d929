"""Decode time of a Kodak-size file (``decompress``: container parse, entropy decoding, render) per model.

    PYTHONPATH=. python benchmarks/bench_decode.py [--image kodim03] [--models gaussian,latentgrid]
        [--bpp 0.5,1.0] [--steps 30] [--repeats 7] [-o benchmarks/results/decode_kodak]

Decode cost depends on the model's size at the rate (Gaussians, latents), not on how long it was trained, so the
files are made with a short fit (``--steps``). Wall and process CPU time are both recorded (2 shared cores:
the load average is in the JSON); the median of ``--repeats`` decodes is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import compress, decompress  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodim03")
    ap.add_argument("--models", default="gaussian,latentgrid")
    ap.add_argument("--bpp", default="0.5,1.0")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/decode_kodak"))
    args = ap.parse_args()
    sig = load(DATA / f"{args.image}.png")
    result = {"command": "python " + " ".join(sys.argv), "image": args.image,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "load_before": os.getloadavg(), "runs": []}
    for model in args.models.split(","):
        for bpp in [float(b) for b in args.bpp.split(",")]:
            torch.set_num_threads(2)
            data = compress(sig, model, bpp=bpp, steps=args.steps).data
            for t in [int(x) for x in args.threads.split(",")]:
                torch.set_num_threads(t)
                decompress(data)  # warm-up (kernel libraries, allocations)
                wall, cpu = [], []
                for _ in range(args.repeats):
                    w, c = time.perf_counter(), time.process_time()
                    decompress(data)
                    wall.append(time.perf_counter() - w)
                    cpu.append(time.process_time() - c)
                run = {"model": model, "bpp": 8 * len(data) / sig.num_pixels, "threads": t,
                       "decode_ms_wall": round(1000 * statistics.median(wall), 1),
                       "decode_ms_cpu": round(1000 * statistics.median(cpu), 1), "load": os.getloadavg()[0]}
                print(json.dumps(run), flush=True)
                result["runs"].append(run)
    result["load_after"] = os.getloadavg()
    Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
