"""compress(signal) -> bytes and decompress(bytes) -> Signal: fitting, rate control and the container together.

Rate control in two stages. Before fitting, the model's ``config_for`` sizes the architecture for the byte
budget (the prior). After fitting, the codec bisects the continuous ``quality`` knob of ``encode`` on the *real*
file size (header included), so ``bpp=R`` lands at the largest file not above R (within 10 % below it when the
model has the capacity; the report says when it had not). ``psnr=`` bisects for the smallest file whose
*decoded* output reaches the target. ``max_error=`` goes to the error-bounded coder (``inrcodec.bounded``): with
model ``auto`` (the default) or ``bounded`` a closed-loop interpolation predictor codes the field itself; with an
INR model the same coder codes the residual after the network (section ``bounded``), so every decoded value is
within E whatever the model achieved. Non-finite values (NaN, +-Inf) are kept exactly in every mode.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from . import __version__
from .container import Container, read_container, write_container
from .entropy import decode_ints
from .errors import FormatError, InputError
from .fit import FitSettings, fit
from .limits import check_pixels, pixel_cap
from .schema import check_model_file
from .metrics import psnr as psnr_metric
from .models import default_model, get_model
from .presets import DEFAULT as DEFAULT_PRESET, resolve as resolve_preset
from .models.base import Representation
from .signal import Signal

BPP_TOLERANCE = 0.10


def mark_targets(report: dict, bpp: float | None, psnr: float | None) -> None:
    """Record a file-of-parts encode's targets and whether they were met (``report`` has its ``bpp``/``psnr``)."""
    if bpp is not None:
        report["target_bpp"] = bpp
        report["target_met"] = abs(report["bpp"] - bpp) <= BPP_TOLERANCE * bpp
    if psnr is not None:
        report["target_psnr"] = psnr
        report["target_met"] = report["psnr"] >= psnr
QUALITY_SEARCH_STEPS = 12
# A byte-target search stops once a file that fits is within this share of the target (0.3 % of the bytes is
# ~0.01 dB): with secant steps that takes ~4 encodes instead of 13, and an encode (entropy coding of every
# parameter) cost ~0.45 CPU s for the 25 000 Gaussians of a 1.3 MP photo at 0.4 bpp.
SIZE_SEARCH_TOL = 0.003
DEFAULT_QUALITY = 0.6  # with no rate/quality target: ~9 bits per weight, visually transparent for MLPs
BUDGET_STEP_CAP = 1_000_000  # steps of a fit governed by --time-budget alone (the clock stops it long before)
# A time budget is for the whole encode: the fit gets what is left after the work that follows it, the larger of
# this share of the budget and the model's own estimate of that work (``Representation.coding_seconds``; for
# gaussian+dct measured per pixel: 6-14 CPU-s/MP of byte search on RGB photos, which 10 % of 60 s/MP did not cover).
CODING_SHARE = 0.1


@dataclass
class CompressResult:
    data: bytes
    report: dict[str, Any] = field(default_factory=dict)


# progress(stage, step, fraction, psnr, elapsed)
ProgressFn = Callable[[str, int, float, float, float], None]
# preview(step, render): called at each evaluation of the fit; render() gives the current (unquantised) fit as a
# Signal in the input's layout. Rendering costs a forward pass, so the caller decides when to call it.
PreviewFn = Callable[[int, Callable[[], Signal]], None]


def compress(signal: Signal, model: str | None = None, *, bpp: float | None = None, psnr: float | None = None,
             max_error: float | None = None, relative: bool = False, time_budget: float | None = None,
             seed: int = 0, steps: int | None = None, config: dict[str, Any] | None = None,
             progress: ProgressFn | None = None, preview: PreviewFn | None = None,
             preset: str | None = None, tile: bool | int | None = None) -> CompressResult:
    """Fit ``model`` to ``signal`` and code it. At most one of ``bpp``/``psnr``/``max_error`` sets the target.

    ``time_budget`` (seconds, the whole encode) without ``steps`` is the fit's schedule: it runs until what is
    left is the model's estimate of the coding that follows (at least 10 % of the budget), then codes. ``steps``
    alone fixes the schedule; both: whichever ends first. Neither: the ``preset``'s schedule (``fast``/``medium``/
    ``slow``, default ``medium``; see ``presets.py``), which also picks the model when ``model`` is None. ``tile``: large images are coded as tiles (``image_tiles``) by
    default; False never, True always, an int: always, with tiles of about that side."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    if sum(x is not None for x in (bpp, psnr, max_error)) > 1:
        raise InputError("give at most one of bpp, psnr, max_error")
    if bpp is not None and not bpp > 0:
        raise InputError(f"bpp must be positive, got {bpp}")
    if max_error is not None and not max_error > 0:
        raise InputError(f"max error must be positive, got {max_error}")
    if max_error is not None and tile not in (None, False):
        raise InputError("tiling does not combine with --max-error (error-bounded files are coded whole)")
    if max_error is None and tile is not False:
        from .image_tiles import compress_tiled, should_tile
        from .presets import preset_model

        tiled_model = preset_model(signal.kind, preset, model, signal.describe())
        if should_tile(signal, None if tile is None else True, tiled_model):
            return compress_tiled(signal, model, bpp=bpp, psnr=psnr, time_budget=time_budget, steps=steps,
                                  seed=seed, preset=preset, config=config,
                                  tile=None if isinstance(tile, bool) or tile is None else int(tile),
                                  progress=None if progress is None else
                                  (lambda done, n, el: progress("tiles", done, done / n, float("nan"), el)))
    error_bound = None
    if max_error is not None:
        from .bounded.field import AUTO, BOUNDED_MODEL, absolute_bound

        error_bound = absolute_bound(signal.data, max_error, relative)
        if (model or AUTO) in (AUTO, BOUNDED_MODEL):
            return _compress_bounded(signal, model or AUTO, error_bound, time_budget=time_budget, seed=seed,
                                     steps=steps, config=config, progress=progress, t0=t0)
    plan = resolve_preset(signal.kind, signal.num_pixels, preset, model, steps, time_budget,
                          lambda m: get_model(m).default_steps, signal.describe())
    name, steps, time_budget = plan.model, plan.steps, plan.time_budget
    config = {**plan.config, **(config or {})}
    cls = get_model(name)
    if signal.ndim_coords not in cls.supported_ndims:
        raise InputError(f"model {name!r} does not support signals with {signal.ndim_coords} coordinate axes")

    desc = signal.describe()
    target_bytes = None if bpp is None else bpp * signal.num_pixels / 8.0
    overhead = len(write_container(Container(desc, name, {}, {"a": b"", "b": b""})))
    payload_bits = None if target_bytes is None else max(8.0 * (target_bytes - overhead) - 64 * 8, 256.0)

    target = torch.from_numpy(np.nan_to_num(signal.normalized(), nan=0.5, posinf=1.0, neginf=0.0))
    # Leave the rest of the encode its time (CODING_SHARE).
    reserve = None if time_budget is None else max(CODING_SHARE * time_budget, cls.coding_seconds(desc, payload_bits))
    budget = None if time_budget is None else max(time_budget - reserve - (time.perf_counter() - t0), 0.5)
    # A time budget without --steps is the schedule: the fit runs until the budget is spent (a longer budget buys
    # quality; gaussian at 0.35 bpp on kodim03: 33.84 dB after 800 steps, 34.29 dB after 2400). --steps caps it.
    max_steps = steps or (cls.default_steps if budget is None else BUDGET_STEP_CAP)
    nonfinite = _nonfinite_section(signal)
    totals = {"steps": 0, "seconds": 0.0}
    totals_lock = threading.Lock()

    def run_fit(overrides: dict[str, Any], n_steps: int, fit_budget: float | None) -> tuple[Representation, Any]:
        torch.manual_seed(seed)
        cfg = cls.config_for(desc, payload_bits, **overrides)
        net = cls(cfg, desc)
        net.fit_seed = seed  # fits run concurrently (a search) must not draw from the shared global generator
        net.set_targets(payload_bits, psnr)
        settings = FitSettings(max_steps=n_steps, time_budget=fit_budget, lr=cls.lr_for(cfg),
                               target_psnr=None if psnr is None else psnr + 1.0, seed=seed)
        done = dict(totals)

        def fit_progress(s: int, f: float, p: float, e: float) -> None:
            if progress is not None:
                progress("fit", done["steps"] + s, f, p, done["seconds"] + e)
            if preview is not None:
                preview(done["steps"] + s, lambda: _render_now(net, desc))
        result = fit(net, target, settings, fit_progress)
        net.eval()
        with totals_lock:
            totals["steps"] += result.steps
            totals["seconds"] += result.seconds
        return net, result

    def build(net: Representation, quality: float, render: bool = True) -> tuple[bytes, Signal | None]:
        sections = net.encode(quality)
        if not render and error_bound is None:  # size only (the rate search's probes)
            if nonfinite is not None:
                sections["nonfinite"] = nonfinite
            extra = {"encoder": f"inrcodec {__version__}"}
            return write_container(Container(desc, name, net.config_dict(), sections, extra)), None
        decoded_net = cls.decode(net.config, desc, sections)
        with torch.no_grad():
            decoded = Signal.from_normalized(decoded_net.render().numpy(), desc)
        if error_bound is not None:  # the predictive coder on the network's residual (keeps NaN/Inf itself)
            from .bounded import encode_verified

            sections["bounded"], _, values = encode_verified(signal.data, error_bound, base=decoded.data)
            decoded = Signal(values, signal.kind, signal.value_range, dict(signal.metadata))
        elif nonfinite is not None:
            sections["nonfinite"] = nonfinite
            decoded = _with_nonfinite(decoded, nonfinite)
        extra = {"encoder": f"inrcodec {__version__}"}
        return write_container(Container(desc, name, net.config_dict(), sections, extra)), decoded

    default_q = DEFAULT_QUALITY if cls.default_quality is None else cls.default_quality
    searched: list[dict] = []  # the fits of an encoder-side search, for the report

    def hint_of(net: Representation) -> tuple[float, float] | None:
        """Where the model expects its file to land on the byte target (the byte search starts there)."""
        return None if target_bytes is None else net.size_search_hint(target_bytes)

    def complete(net: Representation, result: Any) -> tuple:
        """The fit's file at the target (rate search), scored: within the byte target first, then PSNR."""
        c0 = time.thread_time()
        q, data, decoded = _search_quality(lambda x, render=True: build(net, x, render), signal, target_bytes,
                                           psnr, error_bound, default_q, hint_of(net))
        score = (len(data) <= target_bytes, _finite_psnr(signal, decoded))
        # thread_time: this fit's coding alone while others run beside it
        return score, net, result, (q, data, decoded), {
            "config": net.config_dict(), "fit_steps": result.steps, "bytes": len(data), "psnr": score[1],
            "code_cpu_s": time.thread_time() - c0}

    # Encoder-side search (gaussian+dct on long schedules, a byte target): short probe fits with different config
    # overrides are coded to the target; the main fit(s) take the overrides the model chooses from the probes' PSNRs
    # and the remaining steps; the best file of them all is kept. The plan may ask for up to ``workers`` fits at
    # once (threads, one torch thread each: slow's two main fits on two cores; ``_concurrently``).
    search = None
    if error_bound is None and payload_bits is not None and steps is not None:  # a schedule of steps, not of time
        search = cls.search_plan(max_steps, payload_bits, dict(config or {}))
        if search is not None and not search[0] and isinstance(search[3]([]), dict):  # the schedule's overrides, one fit
            config, max_steps, search = search[3]([]), search[2], None
    if search is None:
        net, result = run_fit(dict(config or {}), max_steps, budget)
        if error_bound is not None:  # network bytes vs residual bytes: keep the quantisation with the smallest file
            quality, data, decoded = min(((q, *build(net, q)) for q in (0.5 * default_q, default_q,
                                                                         min(1.0, 1.5 * default_q))),
                                         key=lambda t: len(t[1]))
        else:
            quality, data, decoded = _search_quality(lambda x, render=True: build(net, x, render), signal,
                                                     target_bytes, psnr, error_bound, default_q, hint_of(net))
    else:
        probes, probe_steps, main_steps, choose, *rest = search
        workers = search_workers(rest[0] if rest else 1)
        # a probe's share of a time cap (the preset's safety net): what its fit and coding cost in main-fit steps
        waves = max(-(-len(probes) // workers), 1)
        probe_budget = None if budget is None else budget * (max_steps - main_steps) / (waves * max_steps)
        threads = torch.get_num_threads()
        if rest:  # a plan for concurrent fits: one torch thread per fit, however many run at once (the same file)
            torch.set_num_threads(1)

        def job(overrides: dict[str, Any], n_steps: int, fit_budget: float | None) -> tuple:
            c0 = time.thread_time()  # this thread's CPU: the fit's own while another runs beside it
            out = complete(*run_fit(overrides, n_steps, fit_budget))
            out[4]["cpu_s"] = time.thread_time() - c0
            return out

        try:
            coded = _concurrently([lambda ov=ov: job(ov, probe_steps, probe_budget) for ov in probes], workers)
            mains = choose([c[0][1] if c[0][0] else -math.inf for c in coded])
            mains = [mains] if isinstance(mains, dict) else list(mains)
            main_budget = None if budget is None else \
                max(budget - (time.perf_counter() - t0), 0.5) / -(-len(mains) // workers)
            coded += _concurrently([lambda ov=ov: job(ov, main_steps, main_budget) for ov in mains], workers)
        finally:
            torch.set_num_threads(threads)
        searched.extend(c[4] for c in coded)  # in the plan's order, not the threads' finishing order
        # the best file; ties go to the first coded
        _, net, result, (quality, data, decoded), _ = max(coded, key=lambda t: t[0])
    seconds = time.perf_counter() - t0
    report = {
        "model": name,
        "preset": preset or DEFAULT_PRESET,
        "bytes": len(data),
        "bpp": 8.0 * len(data) / signal.num_pixels,
        "psnr": _finite_psnr(signal, decoded),
        "max_abs_error": _finite_max_error(signal, decoded),
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu0,  # this process's CPU (all threads): timings under contention
        "fit_seconds": totals["seconds"],  # every fit of a search
        "fit_steps": totals["steps"],
        "coding_reserve_seconds": reserve,
        "fit_psnr_unquantised": result.psnr,
        "quality": quality,
        "config": net.config_dict(),
        **({"search": searched} if searched else {}),
        "shape": list(signal.data.shape),
        "dtype": str(signal.dtype),
    }
    if target_bytes is not None:
        report["target_bpp"] = bpp
        report["target_met"] = abs(len(data) - target_bytes) <= BPP_TOLERANCE * target_bytes
    if psnr is not None:
        report["target_psnr"] = psnr
        report["target_met"] = report["psnr"] >= psnr
    if error_bound is not None:
        from .bounded.field import bound_report

        report.update(bound_report(signal, decoded, error_bound))
    return CompressResult(data, report)


def search_workers(wanted: int) -> int:
    """Fits of an encoder-side search run at once: what the plan wants, up to the cores; one inside a worker thread
    (a tile of ``image_tiles`` or a GOP already runs beside others, one per core)."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    return max(1, min(int(wanted), os.cpu_count() or 1))


def _concurrently(jobs: list[Callable[[], Any]], workers: int) -> list[Any]:
    """The jobs' results in order, run ``workers`` at a time in threads (the rasteriser and torch's kernels release
    the GIL); in this thread where one worker."""
    if workers <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def _finite_psnr(signal: Signal, decoded: Signal) -> float:
    """PSNR over the finite values (non-finite ones are kept exactly, and would make it NaN)."""
    x, y = signal.data, decoded.data
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        keep = np.isfinite(x)
        if not keep.any():
            return float("inf")
        x, y = x[keep], y[keep]
    if x.dtype.kind == "f":
        from .bounded.field import finite_range

        peak = finite_range(x)
        if peak == 0:
            return float("inf") if np.array_equal(x, y) else float("-inf")
        return psnr_metric(x, y, peak=peak)
    return psnr_metric(x, y)


def _finite_max_error(signal: Signal, decoded: Signal) -> float:
    x = signal.data
    keep = np.isfinite(x) if x.dtype.kind == "f" else np.ones(x.shape, dtype=bool)
    if not keep.any():
        return 0.0
    return float(np.max(np.abs(x[keep].astype(np.float64) - decoded.data[keep].astype(np.float64))))


def _nonfinite_section(signal: Signal) -> bytes | None:
    from .bounded.coder import encode_class_map, has_nonfinite

    return encode_class_map(signal.data) if has_nonfinite(signal.data) else None


def _with_nonfinite(decoded: Signal, blob: bytes) -> Signal:
    from .bounded.coder import apply_class_map, decode_class_map

    cls, other = decode_class_map(blob, decoded.data.shape, decoded.dtype)
    return Signal(apply_class_map(decoded.data.copy(), cls, other), decoded.kind, decoded.value_range,
                  dict(decoded.metadata))


# An INR base is worth trying only with time to fit it: below this many seconds left it cannot beat the predictor.
AUTO_MIN_FIT_SECONDS = 5.0


def _compress_bounded(signal: Signal, model: str, bound: float, *, time_budget: float | None, seed: int,
                      steps: int | None, config: dict[str, Any] | None, progress: ProgressFn | None,
                      t0: float) -> CompressResult:
    """``bounded``: the predictive coder alone. ``auto``: that, and (given a time budget or steps) the default INR
    for the signal kind as a base under the same coder; keeps the smaller file and says why."""
    from .bounded.field import AUTO, BOUNDED_MODEL, bound_report, compress_predictor_only

    data, info, decoded = compress_predictor_only(signal, bound)
    chosen, why = BOUNDED_MODEL, "predictor only (asked for)"
    candidates = [{"model": BOUNDED_MODEL, "bytes": len(data), "seconds": info["predictor_seconds"]}]
    inr_report = None
    if model == AUTO:
        inr = default_model(signal.kind)
        # the INR candidate codes its residual with the same coder three times (one per weight quantisation) after
        # its fit: keep that out of the fit's share of the budget
        reserve = 6.0 * info["predictor_seconds"]  # measured: ~5.5x on a 91^3 field (residuals code slower)
        left = None if time_budget is None else time_budget - (time.perf_counter() - t0) - reserve
        if get_model(inr) and signal.ndim_coords not in get_model(inr).supported_ndims:
            why = f"predictor only: {inr} does not take {signal.ndim_coords}-D signals"
        elif time_budget is None and steps is None:
            why = "predictor only: no --time-budget or --steps to fit an INR base in"
        elif left is not None and left < AUTO_MIN_FIT_SECONDS:
            why = (f"predictor only: the budget leaves {max(left, 0.0):.1f} s to fit an INR base after the predictor "
                   f"and the reserve for coding its residual (needs {AUTO_MIN_FIT_SECONDS:g} s)")
        else:
            res = compress(signal, inr, max_error=bound, time_budget=left, seed=seed, steps=steps, config=config,
                           progress=progress)
            candidates.append({"model": inr, "bytes": len(res.data), "seconds": res.report["seconds"]})
            if len(res.data) < len(data):
                data, decoded, chosen, inr_report = res.data, decompress(res.data), inr, res.report
                why = (f"{inr} base + predictor on its residual: {candidates[1]['bytes']} < "
                       f"{candidates[0]['bytes']} bytes")
            else:
                why = (f"predictor only: {candidates[0]['bytes']} bytes <= {candidates[1]['bytes']} with a "
                       f"{inr} base fitted for {res.report['fit_seconds']:.1f} s")
    report = {
        "model": chosen,
        "requested_model": model,
        "auto": {"chose": chosen, "why": why, "candidates": candidates},
        "bytes": len(data),
        "bpp": 8.0 * len(data) / signal.num_pixels,
        "bits_per_value": 8.0 * len(data) / signal.data.size,
        "ratio": signal.data.nbytes / len(data),
        "psnr": _finite_psnr(signal, decoded),
        "seconds": time.perf_counter() - t0,
        "shape": list(signal.data.shape),
        "dtype": str(signal.dtype),
    }
    report.update(info if inr_report is None else {k: inr_report[k] for k in ("fit_seconds", "fit_steps", "quality",
                                                                           "config") if k in inr_report})
    report.update(bound_report(signal, decoded, bound))
    return CompressResult(data, report)


@torch.no_grad()
def _render_now(net: Representation, desc: dict[str, Any]) -> Signal:
    return Signal.from_normalized(net.render().clamp(0, 1).numpy(), desc)


def _search_quality(build, signal: Signal, target_bytes: float | None, target_psnr: float | None,
                    error_bound: float | None, default_quality: float = DEFAULT_QUALITY,
                    hint: tuple[float, float] | None = None) -> tuple[float, bytes, Signal]:
    """Bisect the quality knob. Size grows with quality; so (approximately) does PSNR. ``build(quality,
    render=False)`` may skip the decoded signal (None): a byte target bisects on sizes alone and renders only the
    file it keeps (each render is a full-image pass: ~13 of them were a fixed cost on large photos); encoding is
    deterministic, so building the kept quality again gives the same bytes. ``hint``: a model's (quality, slope)
    for the byte target (``Representation.size_search_hint``): the search starts there (``_search_log_size``)."""
    if target_bytes is None and target_psnr is None:
        return default_quality, *build(default_quality)
    lo, hi = 0.0, 1.0
    if target_bytes is not None and hint is not None:
        quality = _search_log_size(lambda q: len(build(q, render=False)[0]), target_bytes, *hint)
        return quality, *build(quality)
    if target_bytes is not None:
        size = lambda q: len(build(q, render=False)[0])  # noqa: E731
        s_hi = size(hi)
        if s_hi <= target_bytes:
            return hi, *build(hi)  # model too small to spend the budget: report says target_met=False
        best, s_lo = None, None
        for i in range(QUALITY_SEARCH_STEPS):
            mid = 0.5 * (lo + hi)
            if s_lo is not None and s_hi > s_lo and i % 3 != 2:  # secant (every third step a bisection)
                aim = target_bytes * (1.0 - 0.5 * SIZE_SEARCH_TOL)
                t = min(max((aim - s_lo) / (s_hi - s_lo), 0.02), 0.98)
                mid = lo + t * (hi - lo)
            s = size(mid)
            if s <= target_bytes:
                lo, s_lo, best = mid, s, mid
                if s >= (1.0 - SIZE_SEARCH_TOL) * target_bytes:
                    break
            else:
                hi, s_hi = mid, s
        quality = 0.0 if best is None else best  # None: even quality 0 is over budget
        return quality, *build(quality)

    def too_low(decoded: Signal) -> bool:
        return psnr_metric(signal.data, decoded.data) < target_psnr  # go up

    data_hi, dec_hi = build(hi)
    if too_low(dec_hi):
        return hi, data_hi, dec_hi  # even the finest quantisation misses the PSNR: best we found
    for _ in range(QUALITY_SEARCH_STEPS):
        mid = 0.5 * (lo + hi)
        data, decoded = build(mid)
        if too_low(decoded):
            lo = mid
        else:
            hi, data_hi, dec_hi = mid, data, decoded
    return hi, data_hi, dec_hi  # smallest quality known to reach the PSNR


def _search_log_size(size: Callable[[float], int], target_bytes: float, guess: float, slope: float) -> float:
    """The largest quality found whose file fits ``target_bytes`` (within SIZE_SEARCH_TOL below it), for a model
    whose log size is about linear in quality with ``slope`` (d ln bytes / d quality) near ``guess``: probes at the
    guess, steps by the slope until the target is bracketed, then secant steps on the log size (every third a
    bisection). gaussian+dct's residual at 1.3 MP: 3-4 real encodes where the linear secant from quality 1 took 7-9
    (each ~1 CPU-s of RD-optimised quantisation per megapixel). 0.0 when even quality 0 is over the target."""
    lo, hi, s_lo, s_hi, best = 0.0, 1.0, None, None, None
    aim = math.log(target_bytes * (1.0 - 0.5 * SIZE_SEARCH_TOL))
    q = min(max(guess, 0.0), 1.0)
    for i in range(QUALITY_SEARCH_STEPS):
        s = size(q)
        if s <= target_bytes:
            lo, s_lo, best = q, s, q
            if s >= (1.0 - SIZE_SEARCH_TOL) * target_bytes or q >= 1.0:
                break  # q 1 under the target: the model cannot spend it (the report says target_met=False)
        else:
            hi, s_hi = q, s
            if q <= 0.0:
                break
        if s_lo is not None and s_hi is not None:
            if (hi - lo) * max(slope, 1e-3) < 0.25 * SIZE_SEARCH_TOL:
                break  # no size in between is a quarter of the window away: a jump over it (a tool switching on)
            if i % 3 == 2 or s_hi <= s_lo:
                q = 0.5 * (lo + hi)
            else:
                t = (aim - math.log(s_lo)) / (math.log(s_hi) - math.log(s_lo))
                q = lo + min(max(t, 0.02), 0.98) * (hi - lo)
        else:  # one side known: extrapolate along the slope (never past the other end), at least by a step that
            # moves the size by the tolerance (a fixed 0.01 of quality was +4 % of the size on kodim12's residual at
            # fast: 2 more encodes from just under the window; session 24)
            nudge = min(0.01, SIZE_SEARCH_TOL / max(slope, 1e-3))
            q = q + (aim - math.log(max(s, 1))) / max(slope, 1e-3)
            q = min(max(q, lo + nudge if s_lo is not None else 0.0), hi if s_hi is None else hi - nudge)
            q = min(max(q, 0.0), 1.0)
    return 0.0 if best is None else best


def _apply_residual(base: np.ndarray, q: np.ndarray, step: float, dtype: np.dtype) -> np.ndarray:
    """The i.i.d. residual section ("residual") of files written before the bounded coder: still readable."""
    out = base + q * step
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(dtype)


def load_representation(data: bytes, fraction: float | None = None,
                        max_pixels: int | None = None) -> tuple[Container, Representation]:
    """Rebuild the representation of a file. ``fraction`` in (0, 1] (progressive models only, e.g. "gaussian")
    decodes only that most important part of it. ``max_pixels``: decoded-size cap (``inrcodec.limits``)."""
    c = read_container(data)
    check_pixels(c.signal["shape"][:-1], max_pixels)
    try:
        cls = get_model(c.model)
    except InputError:
        raise FormatError(f"file uses unknown model {c.model!r}") from None
    if len(c.signal["shape"]) - 1 not in cls.supported_ndims:
        raise FormatError(f"model {c.model!r} cannot represent a signal with {len(c.signal['shape']) - 1} axes")
    cfg = cls.config_from_dict(c.config)
    check_model_file(c.model, cfg, c.signal, c.sections)
    extra = {}
    if fraction is not None:
        if not (isinstance(fraction, (int, float)) and 0.0 < fraction <= 1.0):
            raise InputError(f"fraction must be in (0, 1], got {fraction!r}")
        if not getattr(cls, "progressive", False):
            raise InputError(f"model {c.model!r} cannot decode a fraction of its representation")
        extra["fraction"] = float(fraction)
    try:
        with np.errstate(all="ignore"), pixel_cap(max_pixels):  # hostile steps overflow float32: refused below
            net = cls.decode(cfg, c.signal, c.sections, **extra)  # (pixel_cap: model work caps see the caller's)
        for name, t in net.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise FormatError(f"{c.model} payload decodes to non-finite values in {name}")
    except FormatError:
        raise
    except (ValueError, RuntimeError, KeyError, IndexError, TypeError, OverflowError, MemoryError) as exc:
        # the schema checks (Config.validate, inrcodec.schema) come first; this is the last line of defence
        raise FormatError(f"cannot decode {c.model} payload: {type(exc).__name__}: {exc}"[:300]) from None
    return c, net


def _exact_integers(net, desc: dict) -> np.ndarray | None:
    """A model's decoded integers (``decoded_integers``), where ``Signal.from_normalized`` of its normalised render
    would give exactly them back: an 8- or 16-bit signal over its dtype's full range (x / (2^b - 1) in float32,
    times 2^b - 1 in float64, rounds back to x for every x: tests/test_codec_fastpath.py checks all 2^16). The
    decoder's last steps then skip two float round trips (~3 ms of a Kodak image's ~40)."""
    get = getattr(net, "decoded_integers", None)
    dtype = np.dtype(desc["dtype"])
    if get is None or dtype not in (np.uint8, np.uint16):
        return None
    info = np.iinfo(dtype)
    if list(desc["range"]) != [float(info.min), float(info.max)]:
        return None
    ints = get()
    if ints is None or ints.dtype != dtype or list(ints.shape) != list(desc["shape"]):
        return None
    return ints


def decompress(data: bytes, shape: tuple[int, ...] | None = None,
               region: tuple[tuple[int, int], ...] | None = None, fraction: float | None = None,
               max_pixels: int | None = None) -> Signal:
    """Decode a ``.inrc`` file. ``shape`` renders the signal on another grid (same extent); ``region`` renders
    only a sub-box of that grid; ``fraction`` (progressive models) decodes only the most important part of the
    representation (a coarser image from a prefix of the data). The max-error residual applies at the native
    grid of a complete decode only. ``max_pixels`` caps the samples of the native grid and of the render
    (default ``inrcodec.limits.MAX_PIXELS``; 0 = no cap). A file of parts (video) is decoded by its layout
    (``inrcodec.parts``)."""
    from . import dataset_codec, image_tiles, video_codec  # noqa: F401  (register their layouts)
    from .bounded.field import BOUNDED_MODEL, decode_predictor_only
    from .parts import LAYOUTS

    c = read_container(data)
    if c.model == image_tiles.LAYOUT:  # checks the whole image against the cap before decoding any tile
        with pixel_cap(max_pixels):
            return LAYOUTS[c.model](c, shape=shape, region=region, fraction=fraction, max_pixels=max_pixels)
    if c.model in LAYOUTS:  # its parts are decoded under the caller's cap
        with pixel_cap(max_pixels):
            return LAYOUTS[c.model](c, shape=shape, region=region, fraction=fraction)
    if c.model == BOUNDED_MODEL:
        check_pixels(c.signal["shape"][:-1], max_pixels)
        native = tuple(c.signal["shape"][:-1])
        if (shape is not None and tuple(shape) != native) or region is not None or fraction not in (None, 1.0):
            raise InputError("an error-bounded (predictor only) file decodes only whole, at its own grid")
        return decode_predictor_only(c)
    c, net = load_representation(data, fraction, max_pixels)
    native = tuple(c.signal["shape"][:-1])
    if shape is not None and len(shape) != len(native):
        raise InputError(f"size has {len(shape)} axes, the signal has {len(native)}")
    if shape is not None:
        check_pixels(shape, max_pixels, "requested size")
    if region is not None:
        check_pixels([hi - lo for lo, hi in region], max_pixels, "requested region")
    if (shape is not None and tuple(shape) != native) or region is not None:
        if not net.resamplable:
            raise InputError(f"model {c.model!r} cannot render at another size or region")
    ints = _exact_integers(net, c.signal) if (shape is None or tuple(shape) == native) and region is None else None
    if ints is not None:
        out = Signal(ints, kind=c.signal["kind"], value_range=tuple(c.signal["range"]),
                     metadata=dict(c.signal.get("meta", {})))
    else:
        with torch.no_grad():
            values = net.render(shape=tuple(shape) if shape else None, region=region).numpy()
        if not np.isfinite(values).all():  # finite but hostile weights can still overflow the activations
            raise FormatError(f"{c.model} file decodes to non-finite values: it is corrupt")
        desc = dict(c.signal)
        desc["shape"] = list(values.shape)
        out = Signal.from_normalized(values, desc)
    values = out.data
    complete = values.shape[:-1] == native and (fraction is None or fraction >= 1.0)
    if "bounded" in c.sections and complete:
        from .bounded import decode_bounded

        values = decode_bounded(c.sections["bounded"], out.data.shape, out.dtype, base=out.data)
        return Signal(values, out.kind, out.value_range, out.metadata)
    if "nonfinite" in c.sections and complete:
        out = _with_nonfinite(out, c.sections["nonfinite"])
    if "residual" in c.sections and values.shape[:-1] == native and (fraction is None or fraction >= 1.0):
        blob = c.sections["residual"]
        if len(blob) < 8:
            raise FormatError("residual section truncated")
        step = float(np.frombuffer(blob[:8], dtype="<f8")[0])
        if not np.isfinite(step) or step <= 0:
            raise FormatError("invalid residual step")
        q = decode_ints(blob[8:], out.data.size).reshape(out.data.shape)
        out = Signal(_apply_residual(out.data.astype(np.float64), q, step, out.dtype), out.kind,
                     out.value_range, out.metadata)
    return out


def __getattr__(name: str):
    # The numcodecs codec moved to inrcodec.integrations.numcodecs; kept importable from here.
    if name == "InrCodec":
        from .integrations.numcodecs import InrCodec

        return InrCodec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
