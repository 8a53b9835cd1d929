"""Gaussian base + DCT-coded residual (``--model gaussian+dct``): 2-D Gaussians for the smooth structure, an 8x8
transform code for the texture and sharp detail they pay too much for.

Why (issue 13, benchmarks/README.md "Gaussian base + DCT residual"): each Gaussian costs 31-47 bits and texture
needs very many of them, while a block transform codes texture cheaply; with the entropy coder of the Gaussians
within 1-3 % of its bound, the gap to WebP/AVIF was in the representation. Measured at equal total bytes on
kodim03/07 (1000 Gaussian steps), a small Gaussian base plus the residual beats the Gaussians alone at every rate
from 0.2 to 1 bpp.

Encoding (``codec.compress``, one fit): the Gaussians are fitted by ``GaussianImage``'s schedule to ``base_share`` of
the byte budget (a fixed 0.4, measured on Kodak; on 8-bit gray images since session 28 falling with the rate,
``share_for_rate``: 0.4 up to 0.2 bpp, 0.15 from 1 bpp; 0.3 on fits of RD_MIN_STEPS to SHORT_MAX_STEPS steps, fast's 200,
since session 24; on schedules of SEARCH_MIN_STEPS or more, the slow preset's, the share is searched per image and
rate: ``search_plan`` below, since session 25 a fit at each of four shares, two at a time). On fits of RD_MIN_STEPS or more (every preset's) they
are fitted for the residual rather than for themselves (since session 22, ``BASE_LOSS``): half of the loss is what the
residual over them will cost (``residual_loss``: per 8x8 DCT coefficient of the error, the cheaper of leaving it as
distortion and coding it, at the luma step at which the residual of the base as it stands would fill the rest of
the budget, estimated at the start and again at 1/4, 1/2 and 3/4 of the schedule, by secants of ``coefcoder``'s
estimate from a guess since session 24), half the MSE
(benchmarks/README.md "a Gaussian base fitted for the residual"): -2.0 % BD-rate at medium's 1000 steps on
kodim01/03/05/07, -1.6 % at equal CPU (the loss compiled since session 23: ~2 CPU-ms per step over the MSE; video
intra frames, slow's probes and large capped fits keep the MSE). The quality knob the codec bisects on the *real*
file size is then the residual's luma step (``GaussianDCT.step_for``), so the whole file lands on ``--bpp`` (or ``--psnr``). The residual's symbols come from the RD-optimised quantiser
priced with the symbol coder's own context models (``rdoq_ctx``, λ ``image_dct.RDOQ_LAMBDA``), and the deblocking
strength is the one with the least error (``image_dct.best_strength``): encoder choices, no format change. The residual is the original minus the decoded base, computed from
the base the decoder will draw (the ``gaussians`` section decoded and rendered, rounded to the image's integers).

Decoding: render the Gaussians, round to the image's integers, add the residual exactly (``image_dct.add``:
integer arithmetic, the same on every machine), deblock (8-bit). The base render is the ``gaussian`` model's
float rasteriser, as deterministic as that model's own files. ``decode --scale/--size`` resamples the decoded
image after the residual (bicubic, antialiased when shrinking); a region is cut from that.

Sections: ``gaussians`` (``gaussian_codec``, unchanged) and ``dct`` (``image_dct``; empty: no residual).
Gray and RGB images of 8 or 16 bits.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FormatError, InputError
from . import image_dct, register, residual_loss
from .gaussian import QAT_START, GaussianConfig, GaussianImage

NAME = "gaussian+dct"
# Share of the payload budget the Gaussians get. On the RD envelope over (base rate, residual step) of kodim03/07
# (benchmarks/results/oracle_gaussian_dct_mcdct2.json; bases 0.05/0.1/0.2/0.35 bpp) the winning base took 0.2-0.5
# of the file on kodim03 and 0.3-0.6 on kodim07 between 0.4 and 1.1 bpp: one share for all rates, not tuned per image.
BASE_SHARE = 0.4
# Since session 28 one fit's share on an 8-bit gray image falls with the total rate (medium's, and any --steps or
# --time-budget schedule between fast's and slow's; a large photo per tile): piecewise linear in log bpp between
# these (bpp, share) knots, constant beyond them. Measured at medium's 1000 steps (benchmarks/README.md, session 28):
# once the residual is cheap, bytes above ~0.3 bpp pay more in it than in more Gaussians. On gray 8-bit images
# (crops of two camera photos of ../shared/data/photos that were not used to choose the knots, two Kodak images
# in gray) -1.4 to -3.6 % BD-rate, every one a gain. On RGB the same rule gained 2.5 % on Kodak 01-12 but not on
# other photos (crops of three photos +1.3 to -0.9 %, a ray-traced one +10.5 %: clean, smooth pictures want the
# larger base): RGB keeps BASE_SHARE until a rule can tell those apart; 16-bit images were not measured.
SHARE_BY_RATE: tuple[tuple[float, float], ...] = ((0.2, 0.4), (0.6, 0.2), (1.0, 0.15))
SHARE_RULE_CHANNELS: tuple[int, ...] = (1,)  # 8-bit images with this many channels take the rule (gray)
# Base size with no byte target (--psnr, or no target): bits per pixel of the Gaussians.
DEFAULT_BASE_BPP = 0.1
# The quality knob: luma steps (8-bit levels) from STEP_COARSE to STEP_FINE, mapped so that the *estimated*
# residual size is log-linear in quality (``_calibrate``): the codec's secant search on the real file size then
# lands in ~3 real encodes (each ~1.2 CPU-s on a Kodak image: 31 blobs) instead of ~11.
STEP_COARSE, STEP_FINE = 256.0, 1.0
CALIBRATION_STEPS = 9  # octave grid (17 until session 24: the search lands on real sizes; ~0.4 CPU-s less)
# Encoder-side search of the base size (issue 13; the slow preset). Session 22's form (GRID_SHARES empty; slow's
# until session 25, the grid below): a schedule of at least SEARCH_MIN_STEPS steps first runs a short probe fit of PROBE_STEPS at each of SEARCH_SHARES (a small and a large base), each coded to
# the byte target (the rate search with RDOQ: ~6 CPU-s on a Kodak image, as much as the probe's fit). The main fit
# gets the steps the probes did not use, each probe counted as PROBE_COST steps (its fit, set-up and coding:
# ~12.5 CPU-s against ~20 ms per step of a 4800-step fit), so the encode costs about what one fit did. Its share:
# the small one where its probe wins by more than SMALL_MARGIN_DB, the large one where it does not win, else
# SEARCH_MIDDLE. The margin because short fits favour small bases (the Gaussians gain more from the later steps
# than the residual does): at 240 steps the small base won by 0.17 dB on kodim07 at 1 bpp and tied on kodim05,
# where the 1000-step fits prefer shares of 0.3-0.45; on kodim01 it won by 0.85 dB (benchmarks/README.md).
SEARCH_SHARES: tuple[float, float] = (0.2, 0.45)
SEARCH_MIDDLE = 0.3
SMALL_MARGIN_DB = 0.3
# Short schedules (fast's 200 steps) favour small bases (the probes above): fits of RD_MIN_STEPS to SHORT_MAX_STEPS
# (where it was measured) take the base share SHORT_SHARE (None: BASE_SHARE) by ``search_plan`` without probes.
SHORT_MAX_STEPS = 400
SHORT_SHARE: float | None = 0.3
SEARCH_MIN_STEPS = 4000  # slow's 6400 steps search; medium's 1000 and video intra frames' 3000 keep one fit
PROBE_STEPS = 240
PROBE_COST = 600
# Since session 25 (slow's schedule of 6400 steps) the search is a grid without probes: one fit at each of
# GRID_SHARES, SEARCH_WORKERS at a time (threads, one torch thread each: one core each on slow's 2-core target),
# each of the schedule's steps / (fits per worker), coded to the target; the best real file wins. Measured on
# kodim07 (benchmarks/README.md, session 25): fits of 5800 steps instead of 3600 gained nothing at the same share
# (-0.07..+0.02 dB), while the share the probes did not pick won by 0.05-0.15 dB at every rate: the allowance buys
# shares, not steps, and the probes (biased toward small bases at 240 steps) are no longer needed.
# Since session 26 the grid has two waves: the first at GRID_SHARES (a small and a large base), the second at
# NEXT_WAVE[i], the neighbours of the first wave's winner i (ties: the small one), so that the four fits reach a base
# of an eighth of the bytes where a textured image wants one at high rates (kodim01 at 1 bpp: 0.1 +0.13 dB over 0.2,
# itself +0.27 over 0.3) without giving up 0.6 where a smooth one wants it. With NEXT_WAVE empty every share of
# GRID_SHARES is fitted at once (session 25's grid: 0.2 / 0.3 / 0.45 / 0.6).
SEARCH_WORKERS = 2
GRID_SHARES: tuple[float, ...] = (0.2, 0.45)
NEXT_WAVE: tuple[tuple[float, ...], ...] = ((0.125, 0.3), (0.3, 0.6))
# slow's fits also quantise with rdoq_ctx's context look-ahead (image_dct.RDOQ_LOOKAHEAD is the default for the
# others): fits of LOOKAHEAD_MIN_STEPS to RD_MAX_STEPS steps (slow's 3200; not video intra frames' 3000, medium's or
# fast's; not a --time-budget schedule alone). Lab: -0.31 % BD-rate per base for ~0.9 CPU-s per encode (session 24).
SLOW_LOOKAHEAD = 2
LOOKAHEAD_MIN_STEPS = 3100
# The encode's work after the fit (coding_seconds), CPU-s of one thread on this project's 2-core AVX-512 machine
# (benchmarks/results/encode_tail_*.json, benchmarks/README.md "Large photos"): 5.8-7.1 per MP on a 1.3 MP RGB photo
# at 0.1-0.8 bpp; ~2.5 per MP in the 0.8 MP gray tiles of the 12 MP photo; whole 6 MP photos 10.9 (RGB: half of it
# the kernel's page faults on the RD quantiser's temporaries over 32 MB, which ~1 MP tiles avoid) and 5.9 (gray,
# before the hinted byte search). Rounded up, plus the CLI's start-up and writing outside the codec's clock.
CODING_FIXED_SECONDS = 1.5
CODING_SECONDS_PER_MPX = 1.0
CODING_SECONDS_PER_MSAMPLE = 5.0  # 2.0 until session 23; each encode of the byte search now also fits the
# restoration filters (0.29-0.32 CPU-s on a Kodak image) and chooses the 16x16 groups (+0.8-1.0): ~1 s per million
# samples per encode, measured on Kodak images only, x the hinted search's ~3 encodes (not yet measured on a photo)
# The byte search's first guess (size_search_hint): the file's bytes besides the two sections, and the ratio of the
# calibration's size estimate (plain dead-zone symbols) to the real RD-optimised section at the same step.
CONTAINER_BYTES = 300
# measured 1.09-1.41 on wikimedia_030 at 0.1-0.8 bpp before the 16x16 groups, the filters and the priced base (1.2
# until session 24, when the first guess of a Kodak file at fast landed 14-20 % under its target on kodim07/12 at
# 0.35 and 1 bpp; at 0.95 -5 to +2 %, 15 encodes of the byte search for those four where the 1.2 took 21)
RDOQ_SHRINK = 0.95
# The base's loss (encoder only; the bitstream is the same): "mse" fits the Gaussians as the ``gaussian`` model
# does; "rd" mixes in what the residual coded over them will cost (``residual_loss``, weight RD_MIX) from RD_START
# of the schedule on, at the luma step at which the residual of the base as it stands is estimated to fill the rest
# of the budget (re-estimated at each of RD_ESTIMATES). Measured at medium (1000 steps) against "mse"
# (benchmarks/README.md "a Gaussian base fitted for the residual"): BD-rate -1.6 / -1.8 / -1.9 / -2.2 % on
# kodim01 / 03 / 05 / 07, for ~20 more CPU-ms per step (the fused loss; the MSE costs 3). On
# 256-px crops at 400 steps (noise ~1 % per image) the residual's cost alone (RD_MIX 1) from the start gained more
# on kodim03/07 (-6.5 / -3.0 %) but lost on the textured kodim01/05 (+2.7 / +1.0 %), from half-way -0.6 % mean.
BASE_LOSS = "rd"
RD_START = 0.0
RD_ESTIMATES = (0.25, 0.5, QAT_START)
RD_STEP_FACTOR = 1.0  # on the estimated step
RD_WARM_START = True  # estimates by secant from a guess (session 24: ~0.3 -> ~0.06-0.09 CPU-s each on Kodak)
# the first estimate's guess: (luma step, residual bits per pixel, -d ln step / d ln bpp), the fast fits' first
# estimates on kodim07/12 (steps 16-62 at 0.21-0.6 bpp of residual); None: bisection
RD_FIRST_GUESS: tuple[float, float, float] | None = (17.0, 0.6, 1.05)
RD_EVERY = 1  # the residual's cost on every RD_EVERY-th step only, the MSE on the others (its CPU cost / RD_EVERY)
RD_MIX = 0.5  # the loss is (1 - RD_MIX) x MSE + RD_MIX x the residual's cost
# Fits of fewer steps keep the MSE. Compiled (session 23: kernels.residual_loss, the MSE fused in) the loss costs ~3
# CPU-ms per step on a Kodak image against the MSE's ~1.3, and the four step estimates ~0.4-0.6 CPU-s each: +14-15 %
# of a fast or medium encode. Measured against the MSE base on kodim01/03/05/07 (benchmarks/README.md "compiled"):
# medium -2.0 % at equal steps, -1.6 % at equal CPU (870 steps); fast -2.0 % at equal steps. (Session 22's torch
# form cost ~20 CPU-ms per step, so only slow's main fit had it.)
RD_MIN_STEPS = 200
# The search's probes (PROBE_STEPS) keep the MSE: the shares were measured with MSE-fitted probes.
# A fit under a time budget keeps the MSE above this many pixels: there medium's cap binds (its floor fades from
# 0.5 MP) and the loss's cost comes out of the steps, its four step estimates most (~1.5-2 CPU-s each at 1.3 MP).
# Measured once on wikimedia_030 (1.28 MP) at 0.3 bpp, load ~8: 199 steps instead of 325 in the cap, -0.03 dB at
# equal bytes (benchmarks/README.md "compiled").
RD_CAPPED_MAX_PIXELS = 500_000
# A fit governed by a time budget alone (codec.BUDGET_STEP_CAP steps) keeps the MSE too: not measured at equal time.
RD_MAX_STEPS = 100_000
# Restoration filters after the deblocking (``restore``: classified Wiener filters, VVC's ALF idea; the ``dct``
# section's format 3), fitted per encode and written where they pay; 8-bit images (session 23, issue 13:
# benchmarks/README.md "Classified restoration filters"). False writes format 2 as before.
RESTORE = True
_mse_only = threading.local()  # mse_base(): fits in this thread keep the MSE


@contextmanager
def mse_base():
    """Fits started inside (in this thread) fit the base to the MSE whatever their steps: ``mcvideo``'s intra
    frames, whose encode the residual's cost has not been measured on (a base for a frame that later frames
    predict from, at 3000 steps)."""
    old = getattr(_mse_only, "on", False)
    _mse_only.on = True
    try:
        yield
    finally:
        _mse_only.on = old


OVERLAP = True  # decoder: residual symbols in a second thread when torch has 2+ threads (a switch for benchmarks)


def main_share(psnr_small: float, psnr_large: float) -> float:
    """The main fit's base share from the PSNRs of the probes at the small and the large share (SEARCH_SHARES)."""
    lead = psnr_small - psnr_large
    return SEARCH_SHARES[0] if lead > SMALL_MARGIN_DB else SEARCH_SHARES[1] if not lead > 0 else SEARCH_MIDDLE


def share_for_rate(bpp: float | None, knots: tuple[tuple[float, float], ...] | None = None) -> float:
    """The base's share of the bytes of one fit at a total of ``bpp`` bits per pixel: the (bpp, share) ``knots``
    (default SHARE_BY_RATE) interpolated in log bpp, constant beyond the first and last; BASE_SHARE with no rate
    (or no knots)."""
    knots = SHARE_BY_RATE if knots is None else knots
    if bpp is None or not knots or not bpp > 0:
        return BASE_SHARE
    rates, shares = zip(*knots)
    return float(np.interp(np.log(bpp), np.log(rates), shares))


def without_restoration(data: bytes) -> bytes | None:
    """The same file with its ``dct`` section in format 2 or 4 (the restoration filters of formats 3, 5 and 6 left out;
    format 7 stays 7 with its tools, without its filters),
    or None where the file has none: what the encoder before session 23 wrote at the same residual step, for paired
    measurements."""
    from ..container import Container, read_container, write_container

    c = read_container(data)
    dct = c.sections.get("dct", b"")
    if c.model != NAME or not dct or dct[0] not in image_dct.WITH_FILTERS + (image_dct.FORMAT_TOOLS,):
        return None
    h, w, ch = (int(s) for s in c.signal["shape"])
    q, units, strength, tx16, filters, cfl = image_dct.decode_parts(dct, h, w, ch)
    if filters is None:
        return None
    # format 7 stays 7 with the same tools (the same symbol coder); formats 3, 5, 6 become 2 or 4
    form, tools = (image_dct.FORMAT_TOOLS, dct[1]) if dct[0] == image_dct.FORMAT_TOOLS else (image_dct.FORMAT, None)
    sections = dict(c.sections, dct=image_dct.encode_section(q, units, strength, form=form, tx16=tx16, tools=tools,
                                                                         cfl=cfl))
    return write_container(Container(c.signal, c.model, c.config, sections, c.extra))


@dataclass
class GaussianDCTConfig:
    n_gaussians: int = 4096
    layers: int = 3
    base_share: float = BASE_SHARE  # informative: the decoder does not need it

    def validate(self) -> None:
        GaussianConfig(self.n_gaussians, self.layers).validate()
        if not (isinstance(self.base_share, (int, float)) and 0.0 < self.base_share <= 1.0):
            raise FormatError(f"config field base_share={self.base_share!r} out of range")


@register
class GaussianDCT(GaussianImage):
    name = NAME
    Config = GaussianDCTConfig
    progressive = False  # a fraction of the Gaussians under a residual made for all of them is no useful picture
    resamplable = True
    default_quality = 0.6  # no target: the middle of the calibrated residual sizes (log scale); quality 1 is ~lossless

    @classmethod
    def accepts(cls, desc: dict[str, Any]) -> bool:
        return desc["shape"][-1] in (1, 3) and np.dtype(desc["dtype"]) in (np.uint8, np.uint16)

    def __init__(self, config: GaussianDCTConfig, desc: dict[str, Any]):
        super().__init__(config, desc)
        dtype = np.dtype(desc["dtype"])
        if self.channels not in (1, 3) or dtype not in (np.uint8, np.uint16):
            raise InputError(f"model {NAME!r} codes gray or RGB images of 8 or 16 bits, not {self.channels} "
                             f"channel(s) of {dtype}")
        # decoded (symbols, units, deblocking strength, 16x16 flags or None, restoration filters or None)
        self._residual: tuple | None = None
        self._base_cache: tuple[bytes, np.ndarray] | None = None  # (gaussians section, decoded base integers)
        self._decoded_base_ints: np.ndarray | None = None  # decoder: the base drawn while the residual decoded
        self._section_cache: dict[float, bytes] = {}
        self._raw: np.ndarray | None = None  # DCT of (image - decoded base) at step 1
        self._raw16: np.ndarray | None = None  # the same in 16x16 transforms of 2x2 block groups (image_tx16)
        self._calibration: tuple[np.ndarray, np.ndarray] | None = None  # (log estimated bytes, log step), rising
        self._residual_bits: float | None = None  # of the byte target, what the residual gets
        self._rd_delta: float | None = None  # luma step the base's loss prices the residual at (None: MSE)
        self._rd_calls = 0  # loss evaluations since the residual's cost took over (RD_EVERY)
        self._rd_marks: list[float] = []  # schedule points at which that step is (re-)estimated, still to come

    # -- rate control: the Gaussians get base_share of the budget ----------------------------------------------
    @classmethod
    def config_for(cls, desc, target_bits, **overrides):
        pixels = int(np.prod(desc["shape"][:-1]))
        # the rule where it was measured to pay: 8-bit gray (session 28; RGB and 16-bit keep BASE_SHARE)
        ruled = np.dtype(desc["dtype"]) == np.uint8 and desc["shape"][-1] in SHARE_RULE_CHANNELS
        bpp = target_bits / pixels if ruled and target_bits is not None else None
        share = float(overrides.pop("base_share", share_for_rate(bpp)))
        base_bits = DEFAULT_BASE_BPP * pixels if target_bits is None else share * target_bits
        g = GaussianImage.config_for(desc, base_bits, **overrides)
        cfg = GaussianDCTConfig(g.n_gaussians, g.layers, share)
        cfg.validate()
        return cfg

    @classmethod
    def search_plan(cls, max_steps, target_bits, overrides):
        if "base_share" in overrides:
            return None
        if max_steps < SEARCH_MIN_STEPS:
            if SHORT_SHARE is not None and RD_MIN_STEPS <= max_steps <= SHORT_MAX_STEPS:  # fast: a smaller base
                return [], 0, max_steps, lambda psnrs: {**overrides, "base_share": SHORT_SHARE}
            return None
        if GRID_SHARES:  # slow since session 25: a fit per share, SEARCH_WORKERS at a time, the schedule split
            fits = len(GRID_SHARES) + (len(NEXT_WAVE[0]) if NEXT_WAVE else 0)
            each = max_steps // -(-fits // max(SEARCH_WORKERS, 1))
            at = lambda shares: [{**overrides, "base_share": x} for x in shares]
            if not NEXT_WAVE:  # one wave of every share
                return [], 0, each, lambda psnrs: at(GRID_SHARES), SEARCH_WORKERS
            return at(GRID_SHARES), each, each, lambda psnrs: at(NEXT_WAVE[int(np.argmax(psnrs))]), SEARCH_WORKERS
        small, large = SEARCH_SHARES  # session 22's probes, then one main fit
        main = max_steps - PROBE_COST * len(SEARCH_SHARES)
        return ([{**overrides, "base_share": small}, {**overrides, "base_share": large}], PROBE_STEPS, main,
                lambda psnrs: {**overrides, "base_share": main_share(*psnrs)})

    def set_targets(self, bits: float | None = None, psnr: float | None = None) -> None:
        pixels = int(np.prod(self.coord_shape))
        base_bits = DEFAULT_BASE_BPP * pixels if bits is None else self.config.base_share * bits
        self._residual_bits = None if bits is None else bits - base_bits
        self._rd_marks = sorted({RD_START, *(m for m in RD_ESTIMATES if m > RD_START)})
        # the PSNR target is the residual's to reach (codec bisection), not a reason to stop the base early
        super().set_targets(base_bits, None)

    # -- the base's loss --------------------------------------------------------------------------------------------
    def on_progress(self, frac: float) -> None:
        super().on_progress(frac)
        if (BASE_LOSS != "rd" or not self._residual_bits or self._target is None or frac >= 1.0
                or not RD_MIN_STEPS <= (self.max_steps or 0) <= RD_MAX_STEPS or self.max_steps == PROBE_STEPS
                or getattr(_mse_only, "on", False)
                or (self.time_budget is not None and np.prod(self.coord_shape) > RD_CAPPED_MAX_PIXELS)):
            return
        if self._rd_marks and frac >= self._rd_marks[0]:
            while self._rd_marks and frac >= self._rd_marks[0]:
                self._rd_marks.pop(0)
            with torch.no_grad():
                base = self._integers(GaussianImage.render(self).numpy())
            raw = image_dct.raw_coefficients(self._integers(self._target.numpy()), base)
            # from a guess, a few secant estimates instead of a bisection's 8: a re-estimate from the last one, the
            # first from the step of a typical Kodak residual at this many bits per pixel (RD_FIRST_GUESS)
            guess, evals = None, residual_loss.SECANT_EVALS
            if RD_WARM_START and self._rd_delta is not None:
                guess = self._rd_delta / RD_STEP_FACTOR
            elif RD_WARM_START and RD_FIRST_GUESS is not None:
                step, bpp, slope = RD_FIRST_GUESS
                guess = step * (self._residual_bits / np.prod(self.coord_shape) / bpp) ** -slope
                evals += 1
            self._rd_delta = RD_STEP_FACTOR * residual_loss.step_for_bytes(raw, self._residual_bits / 8.0, guess=guess,
                                                                           evals=evals)

    def _level_scale(self) -> float:
        """8-bit levels per unit of the normalised signal."""
        lo, hi = self.desc["range"]
        level = np.iinfo(np.dtype(self.desc["dtype"])).max // 255
        return ((hi - lo) if hi > lo else 1.0) / level

    def loss(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self._rd_delta is None:
            return super().loss(pred, ref)
        self._rd_calls += 1
        if RD_EVERY > 1 and self._rd_calls % RD_EVERY:
            return super().loss(pred, ref)
        scale = self._level_scale()
        # the MSE (``super().loss``) in the same pass
        return residual_loss.residual_rd_loss(pred, ref, self._rd_delta, scale, weight=min(RD_MIX, 1.0) / scale**2,
                                              mse_weight=max(1.0 - RD_MIX, 0.0))

    # -- the integer image the decoder draws before the residual ------------------------------------------------
    def _integers(self, normalized: np.ndarray) -> np.ndarray:
        lo, hi = self.desc["range"]
        dtype = np.dtype(self.desc["dtype"])
        out = normalized.astype(np.float64)  # in place from here: the decoder's time (same values as out-of-place)
        out *= (hi - lo) if hi > lo else 1.0
        out += lo
        info = np.iinfo(dtype)
        np.rint(out, out=out)
        np.clip(out, info.min, info.max, out=out)
        return out.astype(dtype)

    def _normalized(self, ints: np.ndarray) -> torch.Tensor:
        lo, hi = self.desc["range"]
        return torch.from_numpy(((ints.astype(np.float64) - lo) / ((hi - lo) if hi > lo else 1.0)).astype(np.float32))

    def _decoded_base(self) -> tuple[bytes, np.ndarray]:
        if self._base_cache is None:
            blob = super().encode(1.0)["gaussians"]
            base = GaussianImage.decode(GaussianConfig(self.config.n_gaussians, self.config.layers), self.desc,
                                        {"gaussians": blob})
            with torch.no_grad():
                self._base_cache = (blob, self._integers(base.render().numpy()))
        return self._base_cache

    def _image(self) -> np.ndarray:
        """The image being coded, as the image's integers."""
        if self._target is None:
            raise RuntimeError("encode needs a fitted model")
        return self._integers(self._target.numpy())

    def _raw_coefficients(self) -> np.ndarray:
        if self._raw is None:
            _, base = self._decoded_base()
            self._raw = image_dct.raw_coefficients(self._image(), base)
        return self._raw

    def _raw16_coefficients(self) -> np.ndarray:
        if self._raw16 is None:
            _, base = self._decoded_base()
            self._raw16 = image_dct.raw_coefficients16(self._image(), base)
        return self._raw16

    def step_for(self, quality: float) -> float:
        """Luma step of ``quality`` in (0, 1]: log-linear in the estimated residual size between the sizes at
        STEP_COARSE (quality 0) and STEP_FINE (quality 1)."""
        if self._calibration is None:
            raw = self._raw_coefficients()
            log_steps = np.linspace(math.log(STEP_COARSE), math.log(STEP_FINE), CALIBRATION_STEPS)
            sizes = [image_dct.estimate_bytes(image_dct.quantise_raw(raw, math.exp(s))[0]) for s in log_steps]
            log_sizes = np.maximum.accumulate(np.log(np.maximum(sizes, 1.0)))  # non-decreasing for interp
            self._calibration = (log_sizes, log_steps)
        log_sizes, log_steps = self._calibration
        goal = log_sizes[0] + float(np.clip(quality, 0.0, 1.0)) * (log_sizes[-1] - log_sizes[0])
        return math.exp(float(np.interp(goal, log_sizes, log_steps)))

    @classmethod
    def coding_seconds(cls, desc: dict[str, Any], target_bits: float | None) -> float:
        """Seconds of the encode after the fit (``Representation.coding_seconds``), by pixels and channels, measured
        (``benchmarks/profile_encode_tail.py``, one thread, CPU-s ~ idle wall): finishing the Gaussians, the
        residual's calibration and 3-5 RD-optimised encodes of the byte search, the kept file's decode."""
        h, w, c = (int(s) for s in desc["shape"])
        return CODING_FIXED_SECONDS + h * w / 1e6 * (CODING_SECONDS_PER_MPX + CODING_SECONDS_PER_MSAMPLE * c)

    def size_search_hint(self, target_bytes: float) -> tuple[float, float] | None:
        """The quality whose calibrated residual estimate fills what the Gaussians leave of ``target_bytes``, and
        the slope of the file's log size there (the calibration makes the residual's log size linear in quality):
        the codec's byte search starts at it instead of at quality 1 (``codec._search_log_size``)."""
        blob, _ = self._decoded_base()
        self.step_for(0.5)  # the calibration
        log_sizes, _ = self._calibration
        span = float(log_sizes[-1] - log_sizes[0])
        if span <= 0.0:
            return None
        residual = target_bytes - len(blob) - CONTAINER_BYTES
        if residual <= 1.0:
            return 0.0, span  # the Gaussians alone fill it: the search starts at no residual
        guess = (math.log(residual / RDOQ_SHRINK) - float(log_sizes[0])) / span
        return float(np.clip(guess, 0.0, 1.0)), span * residual / target_bytes

    # -- coding -----------------------------------------------------------------------------------------------
    def encode(self, quality: float) -> dict[str, bytes]:
        """quality 0: the Gaussians alone; above: a residual at luma step ``step_for(quality)``."""
        blob, base = self._decoded_base()
        if quality <= 0.0:
            return {"gaussians": blob, "dct": b""}
        step = self.step_for(quality)
        if step not in self._section_cache:
            raw16 = self._raw16_coefficients() if image_dct.TX16 else None  # 16x16 groups where they pay
            section, _ = image_dct.encode_residual(self._image(), base, self._raw_coefficients(), raw16, step,
                                                   restoration=RESTORE, rdoq=image_dct.RDOQ_LAMBDA,
                                                   prices=image_dct.RDOQ_PRICES,
                                                   lookahead=self._lookahead())
            self._section_cache = {step: section}  # the last one only
        return {"gaussians": blob, "dct": self._section_cache[step]}

    def _lookahead(self) -> int:
        """rdoq_ctx's context look-ahead for this fit's encodes (SLOW_LOOKAHEAD on slow's long fits)."""
        if LOOKAHEAD_MIN_STEPS <= (self.max_steps or 0) <= RD_MAX_STEPS:
            return max(SLOW_LOOKAHEAD, image_dct.RDOQ_LOOKAHEAD)
        return image_dct.RDOQ_LOOKAHEAD

    @classmethod
    def decode(cls, config, desc, sections, fraction: float | None = None):
        if fraction is not None:
            raise InputError(f"model {NAME!r} cannot decode a fraction of its representation")
        for name in ("gaussians", "dct"):
            if name not in sections:
                raise FormatError(f"{NAME} model: missing section {name!r}")
        h, w, c = (int(s) for s in desc["shape"])
        # With two or more threads the residual's symbols are decoded in a second thread while this one decodes
        # and draws the Gaussians (the rasteriser runs without the GIL): the two halves of the decoder overlap.
        pool = ThreadPoolExecutor(1) if OVERLAP and sections["dct"] and torch.get_num_threads() > 1 else None
        try:
            residual = pool.submit(image_dct.decode_parts, sections["dct"], h, w, c) if pool else None
            base = GaussianImage.decode(GaussianConfig(config.n_gaussians, config.layers), desc,
                                        {"gaussians": sections["gaussians"]})
            n = base.means.shape[0]
            model = cls(GaussianDCTConfig(n, config.layers, config.base_share), desc)
            with torch.no_grad():
                for name in ("means", "chol", "colors"):
                    getattr(model, name).copy_(getattr(base, name))
            if residual is not None:
                model._decoded_base_ints = model._render_base_integers()
                model._residual = residual.result()
            elif sections["dct"]:
                model._residual = image_dct.decode_parts(sections["dct"], h, w, c)
            if model._residual is not None and model._residual[4] is not None and np.dtype(desc["dtype"]) != np.uint8:
                raise FormatError(f"{NAME}: restoration filters in a residual of a {np.dtype(desc['dtype'])} image")
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return model.eval()

    # -- rendering --------------------------------------------------------------------------------------------
    def _render_base_integers(self) -> np.ndarray:
        with torch.no_grad():
            return self._integers(GaussianImage.render(self).numpy())

    def decoded_integers(self) -> np.ndarray | None:
        """The decoded image (h, w, c) in the signal's integer dtype: the Gaussians rounded to integers plus the
        residual, deblocked; None while there is no residual (fitting). ``render`` is this, normalised; the codec
        takes it as it is where normalising and back is the identity (``codec._exact_integers``)."""
        if self._residual is None:
            return None
        base = self._decoded_base_ints if self._decoded_base_ints is not None else self._render_base_integers()
        return image_dct.add(base, *self._residual)

    def render(self, shape=None, region=None):
        """While fitting (no residual): the Gaussians, as ``gaussian`` draws them. Decoded: the Gaussians rounded to
        the image's integers plus the residual, deblocked; another ``shape`` or a ``region`` is resampled from that."""
        if self._residual is None:
            return super().render(shape, region)
        h, w = self.hw
        img = self._normalized(self.decoded_integers())
        shape = (h, w) if shape is None else tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"bad render size {shape}")
        if shape != (h, w):
            x = img.permute(2, 0, 1)[None]
            x = F.interpolate(x, size=shape, mode="bicubic", align_corners=False,
                              antialias=shape[0] < h or shape[1] < w)
            img = x[0].permute(1, 2, 0).clamp(0.0, 1.0)
        if region is not None:
            (y0, y1), (x0, x1) = region
            img = img[y0:y1, x0:x1]
        return img

