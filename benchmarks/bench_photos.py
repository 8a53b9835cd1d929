"""Large-photo benchmark: inrcodec (``--preset``, tiled above 2.5 MP) against JPEG/WebP/AVIF/JPEG XL per photo.

    .venv/bin/python benchmarks/bench_photos.py --photos wikimedia_003,icinfo_gray8bit_cathedral \\
        --rates 0.1,0.2,0.4,0.8 --seconds-per-mp 60 -o benchmarks/results/photos_medium

Each inrcodec encode is the CLI (``inrcodec fit PHOTO --preset P --bpp R [--time-budget S] --json``) in its own
process, so its peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) and wall-clock seconds are the user's.
``--seconds-per-mp`` gives every encode a budget of that many seconds per megapixel (the issue's 60 s/MP target:
the preset then picks the model, the budget its schedule); without it the preset's own schedule runs.
The classical codecs are swept over [lowest / 2, highest * 2] of the rates our files reached (``baselines.
sweep_to_range``, same conventions as ``bench_kodak``), and BD-rates are ``compare.bd_rates`` (log-rate, cubic,
over the shared PSNR interval). 16-bit photos are skipped for the baselines that take 8 bits only (JPEG, WebP,
AVIF here); JPEG XL and JPEG 2000 (``--codecs ...,jpeg2000``) code them at 16 bits.

The machine is shared (2 cores, four engineers): the load average is stored before and after each photo, and the
timings are under that contention.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec import baselines  # noqa: E402
from inrcodec.compare import PREFIX, bd_rates, software_versions  # noqa: E402
from inrcodec.signals import load  # noqa: E402
from inrcodec.signals._atomic import atomic_output  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "photos_medium"
CODECS = ("jpeg", "webp", "avif", "jpegxl")
# Codecs given a gray photo as RGB (R = G = B): WebP has no gray mode (baselines refuse 1 channel), and libaom AVIF
# through imagecodecs ignored the quality on a 1-channel image (3.82 bpp at every quality on the cathedral photo).
GRAY_AS_RGB = ("webp", "avif")


def run_encode(photo: Path, rate: float, preset: str, budget: float | None, model: str | None,
               extra: list[str]) -> dict:
    """One CLI encode in a child process: its report plus peak RSS (MB) and wall seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out, rep = Path(tmp) / "out.inrc", Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "inrcodec", "fit", str(photo), "-o", str(out), "--preset", preset,
               "--bpp", str(rate), "--json", str(rep), "-q", *extra]
        if budget is not None:
            cmd += ["--time-budget", f"{budget:.1f}"]
        if model:
            cmd += ["--model", model]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        load_start = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        text = proc.stdout.read().decode(errors="replace")
        if status != 0:
            return {"target_bpp": rate, "error": text.strip().splitlines()[-1:] or ["failed"], "wall_s": wall}
        report = json.loads(rep.read_text())
    keep = ("bytes", "bpp", "psnr", "seconds", "model", "layout", "tiles", "grid", "tile", "margin", "workers",
            "allocation", "tile_psnr", "target_met", "fit_steps")
    point = {k: report[k] for k in keep if k in report}
    point.update(target_bpp=rate, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, load_start=load_start,
                 load_end=os.getloadavg()[0],
                 peak_rss_mb=usage.ru_maxrss / 1024.0, cmd=shlex.join(cmd[1:]))
    return point


def encode_rates(photo: Path, stem: str, rates: list[float], args, budget: float | None) -> list[dict]:
    """Our encodes at every rate; ``--parallel N`` runs N at once (each its own process, so RSS stays per
    encode; wall-clock then includes the others' competition, cpu_s does not)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        jobs = [pool.submit(run_encode, photo, rate, args.preset, budget, args.model, shlex.split(args.extra))
                for rate in rates]
        ours = []
        for job in jobs:
            p = job.result()
            print(stem, json.dumps({k: p.get(k) for k in ("target_bpp", "bpp", "psnr", "wall_s", "cpu_s",
                                                          "peak_rss_mb", "tiles", "error")}), flush=True)
            ours.append(p)
    return ours


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--photos", default="", help="comma-separated stems (default: every PNG in --data)")
    ap.add_argument("--rates", default="0.1,0.2,0.4,0.8")
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds-per-mp", type=float, default=None)
    ap.add_argument("--ours-json", type=Path, default=None,
                    help="take inrcodec points from this JSON ({stem: [points]}) instead of encoding")
    ap.add_argument("--baselines-json", type=Path, default=None,
                    help="take baseline curves from this JSON ({stem: {codec: points}}) instead of sweeping")
    ap.add_argument("--codecs", default=",".join(CODECS),
                    help="baselines (default: %(default)s; jpeg2000 and jpegxl also take 16-bit photos)")
    ap.add_argument("--parallel", type=int, default=1, help="encodes at once (default 1)")
    ap.add_argument("--extra", default="", help="more fit options, e.g. '--tile 768'")
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    stems = [s for s in args.photos.split(",") if s] or sorted(p.stem for p in args.data.glob("*.png"))
    rates = [float(r) for r in args.rates.split(",")]
    results: dict = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "preset": args.preset, "seconds_per_mp": args.seconds_per_mp, "rates": rates,
        "machine": "2-core shared dev machine, timings under contention: see load averages",
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "torch_threads": os.environ.get("OMP_NUM_THREADS", "default (one per core)"),
        "versions": software_versions(), "photos": {},
    }
    for stem in stems:
        photo = args.data / f"{stem}.png"
        signal = load(photo)
        h, w = signal.coord_shape
        mp = h * w / 1e6
        budget = None if args.seconds_per_mp is None else args.seconds_per_mp * mp
        entry: dict = {"shape": list(signal.data.shape), "dtype": str(signal.dtype), "megapixels": mp,
                       "load_before": list(os.getloadavg()), "curves": {}}
        if args.ours_json is not None:  # points measured earlier (a run that stopped before its baselines)
            ours = json.loads(args.ours_json.read_text())[stem]
            entry["ours_from"] = str(args.ours_json)
        else:
            ours = encode_rates(photo, stem, rates, args, budget)
        entry["parallel_encodes"] = args.parallel
        name = PREFIX + (args.model or args.preset)
        entry["curves"][name] = sorted([p for p in ours if "psnr" in p], key=lambda p: p["bpp"])
        got = [p["bpp"] for p in ours if "bpp" in p]
        data = signal.data
        done = json.loads(args.baselines_json.read_text()).get(stem, {}) if args.baselines_json else {}
        for codec_name in [c for c in args.codecs.split(",") if c]:
            if codec_name in done:  # swept earlier over the same range (--baselines-json)
                entry["curves"][codec_name] = done[codec_name]
                continue
            codec = baselines.get_codec(codec_name)
            why = codec.why_unsupported(data) if codec.available else "not installed"
            if data.shape[-1] == 1 and codec_name in GRAY_AS_RGB:
                # the stream is what a user would store; PSNR over three equal channels is the gray PSNR when they
                # decode equal (chroma is constant: YUV 4:2:0 keeps it nearly free and exact)
                entry.setdefault("gray_as_rgb", []).append(codec_name)
                data_for = np.repeat(data, 3, axis=2)
                entry["curves"][codec_name] = baselines.sweep_to_range(codec, data_for, min(got) / 2, max(got) * 2, n=6)
                continue
            if why or not got:
                entry.setdefault("skipped", {})[codec_name] = why or "no inrcodec points"
                continue
            entry["curves"][codec_name] = baselines.sweep_to_range(codec, data, min(got) / 2, max(got) * 2, n=6)
        table, notes = bd_rates(entry["curves"])
        entry["bd_rate"], entry["bd_notes"] = table, notes
        ok = [p for p in ours if "psnr" in p]
        if ok:  # wall: the whole CLI process (start-up included); cpu: its CPU seconds, all threads
            entry["encode_wall_s_per_mp"] = [p["wall_s"] / mp for p in ok]
            entry["encode_cpu_s_per_mp"] = [p["cpu_s"] / mp for p in ok if "cpu_s" in p]
            entry["peak_rss_mb"] = [p["peak_rss_mb"] for p in ok]
        entry["load_after"] = list(os.getloadavg())
        results["photos"][stem] = entry
        print(stem, "BD-rate", json.dumps(table), flush=True)
        _write(results, args.output)
    return 0


def _write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(results, indent=1, default=float))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    photos = results["photos"]
    fig, axes = plt.subplots(1, max(1, len(photos)), figsize=(5.5 * max(1, len(photos)), 4.2), squeeze=False)
    for ax, (stem, e) in zip(axes[0], photos.items()):
        for name, pts in e["curves"].items():
            pts = [p for p in pts if p.get("psnr") is not None and np.isfinite(p["psnr"])]
            if not pts:
                continue
            style = dict(marker="o", lw=2.2, color="k") if name.startswith(PREFIX) else dict(marker=".", lw=1)
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], label=name, **style)
        ax.set_xscale("log")
        ax.set_xlabel("bpp (whole file)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{stem} ({e['megapixels']:.1f} MP)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
