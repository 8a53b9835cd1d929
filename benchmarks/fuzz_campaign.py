"""Fuzz campaign: many re-sealed hostile ``.inrc`` files against the decoder; summary JSON for the record.

Every case is reproducible from (campaign seed, case number): ``--replay N`` rebuilds case N and decodes it in the
foreground with its traceback. Seeds are the golden corpus (``tests/golden/*.inrc``, every model and the file of
parts) plus any ``inrcodec.fuzzing.SEED_MAKERS`` entry without a golden file.

Each worker process runs its cases with an alarm (a case still running at ``--hang`` seconds is recorded as
``Timeout`` and the worker moves on) and an address-space limit (``--mem-limit-gb``: a memory bomb becomes a
``MemoryError`` instead of taking the machine down). Timings are wall-clock on a 2-core machine shared with other
work: the load average is stored with the results.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/fuzz_campaign.py --cases 100000 --workers 2 \
        --time-limit 1500 --out benchmarks/results/fuzz_campaign.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOLDEN = ROOT / "tests" / "golden"


def load_seeds() -> dict[str, bytes]:
    from inrcodec.fuzzing import SEED_MAKERS

    seeds = {p.stem: p.read_bytes() for p in sorted(GOLDEN.glob("*.inrc"))}
    for name, make in SEED_MAKERS.items():
        if name not in seeds:
            seeds[name] = make()
    return seeds


def make_case(seeds: dict[str, bytes], campaign_seed: int, i: int) -> tuple[str, bytes, str]:
    from inrcodec.fuzzing import mutate

    rng = random.Random(f"{campaign_seed}:{i}")
    name = rng.choice(sorted(seeds))
    data, how = mutate(rng, seeds[name], list(seeds.values()))
    return name, data, how


class _Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise _Hang()


_SEEDS: dict[str, bytes] = {}
_ARGS: dict = {}


def _init(args: dict) -> None:
    import torch

    torch.set_num_threads(1)
    _ARGS.update(args)
    if args["mem_limit_gb"]:
        lim = int(args["mem_limit_gb"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    signal.signal(signal.SIGALRM, _alarm)
    _SEEDS.update(load_seeds())
    from inrcodec.fuzzing import run_case

    for data in _SEEDS.values():  # imports and first calls (kernels, constriction) out of the first case's time
        run_case(data, args["max_pixels"])


def _run_chunk(bounds: tuple[int, int]) -> dict:
    from inrcodec.fuzzing import CLEAN, SLOW_SECONDS, run_case

    outcomes: Counter = Counter()
    by_mutator: dict[str, Counter] = {}
    bad: list[dict] = []
    slow: list[dict] = []
    slowest = (0.0, None)
    for i in range(*bounds):
        seed_name, data, how = make_case(_SEEDS, _ARGS["seed"], i)
        signal.alarm(_ARGS["hang"])
        try:
            outcome, secs, msg = run_case(data, _ARGS["max_pixels"])
        except _Hang:
            outcome, secs, msg = "Timeout", float(_ARGS["hang"]), f"still running after {_ARGS['hang']} s"
        finally:
            signal.alarm(0)
        outcomes[outcome] += 1
        if outcome == "FormatError" and msg.startswith("cannot decode ") and ": " in msg:
            # the last-resort net in codec.load_representation caught a model decoder's own exception
            net = msg.split(": ")[1].split(" ")[0].rstrip(":")
            outcomes[f"FormatError via last-resort net ({net})"] += 1
            outcomes[outcome] -= 1
        for m in set(how.split("+")):
            by_mutator.setdefault(m, Counter())[outcome] += 1
        rec = {"case": i, "seed_file": seed_name, "mutation": how, "outcome": outcome, "seconds": round(secs, 3),
               "bytes": len(data), "message": msg[:200]}
        if outcome not in CLEAN and len(bad) < 50:
            bad.append(rec)
        if secs > SLOW_SECONDS and len(slow) < 50:
            slow.append(rec)
        if secs > slowest[0]:
            slowest = (secs, rec)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": bounds[1] - bounds[0], "outcomes": outcomes, "by_mutator": by_mutator, "bad": bad, "slow": slow,
            "slowest": slowest[1], "peak_rss_mb": rss_kb / 1024.0, "end": bounds[1]}


def replay(case: int, seed: int, max_pixels: int) -> None:
    from inrcodec.fuzzing import decode_target

    seeds = load_seeds()
    name, data, how = make_case(seeds, seed, case)
    print(f"case {case}: seed file {name}, mutation {how}, {len(data)} bytes")
    Path(f"/tmp/fuzz_case_{case}.inrc").write_bytes(data)
    t0 = time.perf_counter()
    try:
        decode_target(data, max_pixels)
        print("decoded")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    print(f"{time.perf_counter() - t0:.3f} s; file written to /tmp/fuzz_case_{case}.inrc")


def main() -> None:
    from inrcodec.fuzzing import CLEAN, FUZZ_MAX_PIXELS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--time-limit", type=float, default=None, help="stop submitting work after this many seconds")
    ap.add_argument("--hang", type=int, default=10, help="seconds after which a case counts as a hang")
    ap.add_argument("--mem-limit-gb", type=float, default=4.0)
    ap.add_argument("--max-pixels", type=int, default=FUZZ_MAX_PIXELS)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--replay", type=int, default=None, help="rebuild and decode one case in the foreground")
    a = ap.parse_args()
    if a.replay is not None:
        replay(a.replay, a.seed, a.max_pixels)
        return

    t0 = time.time()
    load0 = os.getloadavg()
    chunks = [(s, min(s + a.chunk, a.cases)) for s in range(0, a.cases, a.chunk)]
    args = {"seed": a.seed, "hang": a.hang, "mem_limit_gb": a.mem_limit_gb, "max_pixels": a.max_pixels}
    total: Counter = Counter()
    by_mut: dict[str, Counter] = {}
    bad, slow, slowest, rss, done = [], [], None, 0.0, 0
    stopped_early = False
    ctx = mp.get_context("fork")
    with ctx.Pool(a.workers, initializer=_init, initargs=(args,), maxtasksperchild=40) as pool:
        pending = [pool.apply_async(_run_chunk, (c,)) for c in chunks]
        for res in pending:
            remaining = None if a.time_limit is None else a.time_limit - (time.time() - t0)
            if remaining is not None and remaining <= 0:
                stopped_early = True
                break
            try:
                r = res.get(timeout=remaining)
            except mp.TimeoutError:
                stopped_early = True
                break
            done += r["n"]
            total.update(r["outcomes"])
            for m, cnt in r["by_mutator"].items():
                by_mut.setdefault(m, Counter()).update(cnt)
            bad += r["bad"]
            slow += r["slow"]
            rss = max(rss, r["peak_rss_mb"])
            if r["slowest"] and (slowest is None or r["slowest"]["seconds"] > slowest["seconds"]):
                slowest = r["slowest"]
            print(f"{done} cases, {time.time() - t0:.0f} s, {dict(total)}", flush=True)
        if stopped_early:
            pool.terminate()
    seconds = time.time() - t0
    crashes = sum(v for k, v in total.items() if k not in CLEAN and not k.startswith("FormatError"))
    summary = {
        "command": "PYTHONPATH=$PWD OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",  # what else ran: see the load averages
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
        "campaign_seed": a.seed,
        "cases_requested": a.cases,
        "cases_run": done,
        "stopped_by_time_limit": stopped_early,
        "seconds": round(seconds, 1),
        "cases_per_second": round(done / seconds, 1),
        "max_pixels": a.max_pixels,
        "memory_limit_gb_per_worker": a.mem_limit_gb,
        "seed_files": {k: len(v) for k, v in load_seeds().items()},
        "outcomes": dict(total.most_common()),
        "exceptions_other_than_input_or_format_error": crashes,
        "cases_over_2s": len(slow),
        "slowest_case": slowest,
        "peak_rss_mb_per_worker": round(rss, 1),
        "by_mutator": {m: dict(c.most_common()) for m, c in sorted(by_mut.items())},
        "crash_examples": bad[:50],
        "slow_examples": slow[:50],
        "replay": "python benchmarks/fuzz_campaign.py --seed SEED --replay CASE",
    }
    text = json.dumps(summary, indent=1, default=str)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    print(json.dumps({k: summary[k] for k in ("cases_run", "outcomes", "exceptions_other_than_input_or_format_error",
                                              "cases_over_2s", "slowest_case", "peak_rss_mb_per_worker")},
                     indent=1, default=str))


if __name__ == "__main__":
    main()
