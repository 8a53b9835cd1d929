"""CPU seconds per latent-grid training step on a whole Kodak image (one thread, ``time.process_time()``), from two
fits of 10 and 60 steps (the difference / 50, so the init and the coding drop out), and the init's CPU seconds.
The slow preset's step count on 2 idle threads is derived from it in benchmarks/README.md.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/lg_step_cpu.py --image kodim03 --bpp 0.6 \
        -o benchmarks/results/lg_step_cpu_kodim03.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.fit import FitSettings, fit  # noqa: E402
from inrcodec.models.latentgrid import LatentGrid  # noqa: E402
from inrcodec.signals import load  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "kodak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodim03")
    ap.add_argument("--bpp", type=float, default=0.6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks/results/lg_step_cpu_kodim03.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(load(DATA / f"{args.image}.png").normalized()).float()
    desc = {"shape": tuple(x.shape), "kind": "image"}
    n = x.shape[0] * x.shape[1]
    runs = {}
    for steps in (10, 60):
        torch.manual_seed(0)
        m = LatentGrid(LatentGrid.config_for(desc, args.bpp * n), desc)
        m.set_targets(bits=args.bpp * n)
        load0 = os.getloadavg()[0]
        c, t = time.process_time(), time.perf_counter()
        fit(m, x, FitSettings(max_steps=steps, eval_every=10**6, lr=m.default_lr))
        runs[steps] = {"cpu_s": time.process_time() - c, "wall_s": time.perf_counter() - t, "load_at_start": load0}
    cpu = (runs[60]["cpu_s"] - runs[10]["cpu_s"]) / 50
    result = {"command": "python " + " ".join(sys.argv), "image": args.image, "bpp": args.bpp,
              "threads": args.threads, "config": str(m.config), "cpu_s_per_step": cpu,
              "wall_s_per_step": (runs[60]["wall_s"] - runs[10]["wall_s"]) / 50,
              "init_cpu_s": runs[10]["cpu_s"] - 10 * cpu, "runs": runs}
    print(json.dumps(result))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
