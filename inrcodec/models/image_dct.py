"""Transform-coded residual of an image over a base it is added to (``gaussian+dct``'s refinement layer).

What it reuses from the video residual coder (``mcdct``/``mcdct2``): the 8x8 DCT of the residual in YCoCg, the
dead-zone quantiser, HEVC's integer 8-point matrix for an inverse that is exact on every machine (float32 products
and sums of integers below 2^24, two rounding shifts; result in integer 1/4 levels), and the in-loop deblocking
filter (``deblock``). Its symbols are coded by ``coefcoder`` (format 2: context models rebuilt from what is already
decoded, no tables), in files of format 1 exactly as ``mcdct2`` codes a P frame (last band per block and channel,
then the bands below it); what differs from the video residual is around them, because a residual under a
Gaussian base is *dense* (most blocks code something) where a P-frame residual is sparse: its own steps per
channel (Y, Co, Cg, in 1/16 levels, stored in the section), gray and 16-bit images, and a dead zone, block drop
and chroma step measured on Gaussian residuals of Kodak images (benchmarks/README.md "Gaussian base + DCT
residual"; what was tried and lost is noted there and at ``encode_symbols``).
The encoder (``gaussian_dct``) adds RD-optimised quantisation (per coefficient and per block's end, distortion +
λ x bits: since session 21 the bits priced with format 2's own context models, ``rdoq_ctx``; ``rdo_quantise``
prices them with format 1's per-band statistics) and picks the deblocking strength with the least error
(``best_strength``; the section stores it); benchmarks/README.md "encoder-side RD tools" and "session 21".

Channels: RGB (3) is coded in YCoCg; gray (1) is coded as Y alone. Bit depths: the residual is quantised in units
of 8-bit levels (``level`` = (2^bits - 1) / 255 input levels, 1 or 257) and added to the integer base as
``rint(base + level * r / 4)``: integer sums of exact values, the same on any machine. Deblocking runs on 8-bit
images only (the filter's thresholds are in 8-bit levels).

Section layout (``dct``): byte 0 format, varint steps [AC, DC] of Y (then Co, Cg) in 1/16 levels, byte deblock
strength, then the symbols: format 2 (written since session 20) ``coefcoder``'s context-modelled stream (7.5 %
fewer bytes than format 1 on 48 Kodak residuals, 4-13 % per set: benchmarks/README.md "Context-modelled residual
symbols"); format 1 (still decoded) the blobs of ``mcdct2``'s P-frame coding in
decoding order, each a varint length + ``encode_ints`` blob. Format 7 (session 25) holds every tool of formats 2-6 in
one layout, and a tools byte says which of two coding tools the file uses: the symbols by ``coefcoder7``'s richer
model (``RICH_MODEL``), the signs apart, predicted by boundary matching (``signpred``; written where its sign stream
is shorter, ``SIGN_PREDICTION``). Session 26 added two tools bits: ``TOOL_CFL`` (chroma from luma: per chroma channel
and band of positions an alpha in 1/16 that predicts the chroma coefficients from the dequantised luma ones,
``cfl_dequantised``; the encoder fits them by least squares over the coded luma, quantises the chroma *prediction
residual*, and keeps the tool where the section's real bytes and error beat it without, ``_cfl_choice``) and
``TOOL_GROUPS`` (the 16x16 group flags coded inside ``coefcoder7``'s stream, before the magnitudes, so that grouped
blocks get contexts of their own). Measured in benchmarks/README.md (session 26); weaker variants of chroma from
luma (one alpha per channel, five bands, per-region alphas, alphas from the base) are noted there.
"""

from __future__ import annotations

import functools

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..errors import FormatError
from ..kernels import dct_residual
from . import coefcoder, coefcoder7, deblock, image_tx16, mcdct, mcdct2, rdoq_ctx, restore, signpred
from .mcdct import BANDS, MAX_SYMBOL, N, T8, grid

FORMAT = 2  # written without the tools below; 1 (mcdct2's symbol coding) is still decoded
FORMAT_RESTORE = 3  # format 2 plus the restoration filters (``restore``), written where they pay (8-bit images)
FORMAT_TX16 = 4  # format 2 plus 16x16 transforms for groups of 2x2 blocks (image_tx16): written where a group has one
FORMAT_TX16_RESTORE = 5  # both: the 16x16 flags, then the filters (session 23's two tools were built apart)
# format 5's layout with the filters' cross-channel form (``restore``, session 24): a 16x16 flag stream of length 0
# says no group takes one
FORMAT_CROSS = 6
# every tool of formats 2-6 in one layout (session 25): byte 1 the tools (TOOL_*), then format 2's header, a 16x16 flag
# stream (empty where no group takes one), a byte: no filters / the plain form / the cross-channel form, then the
# filters; with TOOL_SIGNS the sign stream (``signpred``); then the symbols, by ``coefcoder7`` with TOOL_RICH (the same
# symbols in ~1.5 % fewer bytes) else ``coefcoder``, without their signs with TOOL_SIGNS. TOOL_SIGNS2 (session 26,
# only with TOOL_SIGNS): the sign stream is ``signpred``'s form 2 (round-major, every block and side; 0.6 % fewer bytes
# of the residual than form 1 in the lab)
FORMAT_TOOLS = 7
TOOL_RICH, TOOL_SIGNS, TOOL_SIGNS2 = 1, 2, 4
TOOL_CFL = 8  # chroma from luma (session 26): after the filters, per chroma channel and band a signed byte alpha
# (``CFL_SHIFT`` fraction bits); Co/Cg's dequantised coefficients are predicted as alpha x Y's (``cfl_dequantised``)
TOOL_GROUPS = 16  # contexts that know the 16x16 groups (session 26; with TOOL_RICH): the group flags in the symbol
# stream after the coded-block flags (the layout's flag stream empty), grouped blocks in classes of their own
# (``coefcoder7.GROUP_MODE``)
TOOLS_KNOWN = TOOL_RICH | TOOL_SIGNS | TOOL_SIGNS2 | TOOL_CFL | TOOL_GROUPS
GROUP_CONTEXTS = True  # the encoder sets TOOL_GROUPS where a file has 16x16 groups and TOOL_RICH
TX16_GROUP_COST = False  # ... pricing the 16x16 form for its choice with those contexts (quantise_tx16): +0.01 to
# +0.08 % per base on kodim01/03/07 (gdct_lab_groups_gcost_s26.json), off
CFL_SHIFT = 4  # alpha in 1/16
CFL_MAX = 32  # |alpha| <= 2
CFL_EDGES = (0, 1, 10, 64)  # zig-zag bands of the alphas: DC, diagonals 1-3, the rest
CFL = "band"  # the encoder's chroma from luma: "off", "image" (one alpha per chroma channel), "band" (per band)
CFL_GUARD = True  # ... kept only where the real bytes and error beat the section without it
FORMATS = (1, 2, 3, 4, 5, 6, FORMAT_TOOLS)
RICH_MODEL = True  # the encoder codes the symbols with coefcoder7 (format 7; False: format 2's coder)
_WITH_TX16 = (FORMAT_TX16, FORMAT_TX16_RESTORE, FORMAT_CROSS, FORMAT_TOOLS)
WITH_FILTERS = (FORMAT_RESTORE, FORMAT_TX16_RESTORE, FORMAT_CROSS)
STEP_UNIT = 16
MAX_UNITS = 256 * STEP_UNIT  # up to a step of 256 levels: under a poor base (kodim07 at a 0.1 bpp base: 26 dB) a
# step of 64 still coded 0.13 bpp, so a 0.2 bpp file had no residual step that fit (it fell back to the base alone)
COEF_CLAMP = 1 << 15  # |dequantised coefficient| in 1/16 levels (as mcdct2): every sum of the inverse stays < 2^24
STAGE1_SHIFT, STAGE2_SHIFT = 9, 8
N_BANDS = len(BANDS) - 1
BAND_ROWS = 64  # block rows per band of the decoder's inverse (512 pixel rows)
# Encoder choices (not in the bitstream), measured on Kodak residuals under a Gaussian base (see module doc):
# Total bytes at equal PSNR (BD-rate over residual steps 6-24) on kodim03 over a 0.2 bpp Gaussian base (1000 steps):
CHROMA_FACTOR = 1.25  # chroma steps = this x luma step; 2.0 (video's) / 1.5 / 1.25 / 1.0: 0 / -0.9 / -1.0 / -0.0 %
# (session 19, format 1); with the context-priced RDOQ (session 21, kodim01/03/05/07 over 0.2 bpp bases, against
# 1.5) 2.0 / 1.25 / 1.125 / 1.0: +1.2 / -0.34 / -0.37 / -0.31 %. Session 26 (the whole chain, format 7; per base
# of kodim01/03/05/07 at 0.1-0.35 bpp, benchmarks/rsearch_lab.py): 1.0 / 1.5 / 1.75 +0.21 / +0.15 / +0.36 % mean,
# 1.25 the best on every base (a per-file choice among the four: -0.01 %): nothing to search per file
DC_FACTOR = 1.0  # DC steps = this x the channel's AC step; with chroma 1.5, 0.5 / 0.75 / 1.25: +1.1 / -0.1 / +0.7 %
# (session 26 as above: 0.75 / 1.25 +0.25 / +0.40 %, 1.0 the best on every base; per-file choice -0.00 %)
DEAD_ZONE = 0.15  # 0.1 / 0.2 (and 0.08 / 0.25 over a 0.1 bpp base): -0.0 / +0.8 (+0.4 / +2.9) % (before RDOQ: the
# context-priced RDOQ chooses among round / round - 1 / 0 whatever the dead zone gave, which only seeds its classes)
RDO_LAMBDA = 0.06  # 0.12 / 0.2 / 0.3 (0 over a 0.1 bpp base): -0.2 / +3.0 / +10.3 (+0.7) % (session 26: 0 / 0.12
# -0.01 / +0.11 % on kodim01's bases)
RDOQ_COEF_FACTOR = 1.0  # per-coefficient lambda / band-truncation lambda: 0 / 0.5 / 1: -2.8 / -2.9 / -3.5 %
RDOQ_PRICES = "ctx"  # the encoder's RDOQ prices bits with format 2's context models (rdoq_ctx), not format 1's
# per-band statistics ("band"): -1.07 % BD-rate on kodim01/03/05/07 over 0.2 bpp bases at chroma 1.5 (with chroma
# 1.25 and best_strength: -1.75 % per base over 0.1 / 0.2 / 0.35 bpp bases; benchmarks/README.md, session 21)
RDOQ_LOOKAHEAD = 0  # rdoq_ctx's context look-ahead for the encoder (0 off, 1 the block's own and chroma's, 2 also
# the neighbouring blocks'): 1 / 2 -0.22 / -0.31 % BD-rate per base on kodim01/03/05/07 (0.1-0.35 bpp bases; 2 with
# the 16x16 groups -0.30 %) for +0.9 CPU-s per encode on a Kodak image: off until measured end to end
# (benchmarks/README.md, session 24; dependent quantisation, measured there too, did not pay)
RDOQ_LAMBDA = 0.25  # rdo_quantise's lambda for the encoder (gaussian_dct.encode); kodim03/07 over a 0.2 bpp base:
# 0.15 / 0.22 / 0.3 / 0.4 / 0.6: -1.7 / -2.9 / -3.5 / -3.4 / -1.9 % (format 1's band prices, benchmarks/README.md
# "RD-optimised quantisation"). 0.3 until session 26; re-measured then with the encoder's whole chain (context
# prices, 16x16 groups, deblocking and restoration chosen per file, format 7; benchmarks/rsearch_lab.py,
# kodim01/03/05/07 over 0.1-0.35 bpp bases, steps 5-32) against 0.3: 0.15 (kodim07) / 0.21 / 0.25 / 0.42 +0.04 / -0.16 /
# -0.15 / +0.91 % mean per base; 0.25 at or below 0.3 on all 12 bases (-0.05 to -0.27 %), 0.21 above it on one. At
# medium on kodim07 / kodim01 -0.2 / -0.1 % end to end (the same fits). With slow's look-ahead (2) 0.25 against 0.3
# -0.21 % (kodim07's bases: -0.36 against the look-ahead's own -0.15). The best value per file and rate is worth no more (the oracle over 0.15-0.42 per base -0.19 %,
# its bias ~-0.08): nothing to search. The base's loss keeps 0.3 (residual_loss.LAMBDA). The other constants a
# per-file choice could take (none pays, per base at most -0.03 %): CHROMA_FACTOR, DC_FACTOR, RDO_LAMBDA above
DEBLOCK_STRENGTH = deblock.DEFAULT_STRENGTH  # 12; off / 20 / 32: +2.0 / +0.5 / +3.3 %
DEBLOCK_CANDIDATES = (8, 12, 16, 20, 24, 32)  # the encoder picks the best of these per file (best_strength)
TX16 = True  # the encoder chooses per 16x16 group between four 8x8 transforms and one 16x16 (quantise_tx16)
TX16_GUARD = True  # ... and keeps the choice only where the image's real bytes and error beat all-8x8's
SIGN_FORM = 2  # the sign stream's form the encoder writes (2: with TOOL_SIGNS2; 1: session 25's)
SIGN_PREDICTION = "auto"  # format 7's TOOL_SIGNS (signpred) where its sign stream is shorter than the raw signs;
# "always" / "never" force it either way (the golden file with sign prediction is written with "always"). With
# neither tool (RICH_MODEL False, no sign prediction) the encoder writes formats 2-6 as before session 25
GUARD_LAMBDA = 0.33  # RGB squared error per bit / luma step^2: the slope of the encoder's RD curve (kodim05 / 07
# over 0.2 bpp bases, steps 6-24: 0.32-0.34)


@functools.lru_cache(maxsize=1)
def _unzigzag() -> np.ndarray:
    return mcdct._unzigzag()


# -- transform ----------------------------------------------------------------------------------------------------
def to_ycocg(res: np.ndarray) -> np.ndarray:
    """(h, w, c) residual -> (h, w, c) in the coded colour space (gray stays gray)."""
    return res if res.shape[-1] == 1 else mcdct.to_ycocg(res)


def coefficients(res_levels: np.ndarray, units: np.ndarray) -> np.ndarray:
    """DCT coefficients (c, by, bx, 64), zigzag order, in units of each channel's step, of a residual (h, w, c)
    in 8-bit levels."""
    x = to_ycocg(res_levels.astype(np.float64))
    h, w, c = x.shape
    by, bx = grid(h, w)
    pad = np.pad(x, ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    blocks = pad.reshape(by, N, bx, N, c).transpose(4, 0, 2, 1, 3)
    d = mcdct._forward_matrix()
    coef = mcdct._separable(blocks, d, d.T).reshape(c, by, bx, N * N)[..., mcdct._zigzag()]
    return coef / (_per_position(units)[:, None, None, :] / STEP_UNIT)


def quantise(coef: np.ndarray, dead_zone: float = DEAD_ZONE, lam: float = RDO_LAMBDA, rdoq: float = 0.0,
             chroma: float = CHROMA_FACTOR, prices: str = "band", lookahead: int = 0) -> np.ndarray:
    q = mcdct.dead_zone_quantise(coef, dead_zone)
    if rdoq and prices == "ctx":
        q = rdoq_ctx.rdo_quantise(coef, q, rdoq, chroma, lookahead=lookahead)
    elif rdoq:
        q = rdo_quantise(coef, q, rdoq, chroma)
    if lam:
        mcdct2.drop_costly_blocks(coef, q, lam)  # per block and channel, for 1 or 3 channels
    return q


def _band_bits(q: np.ndarray, top: int, prior: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Estimated bits of each symbol value -top..top per (channel group, zig-zag position's band, whether the band
    is the block's last): -log2 of its frequency in ``q`` (``prior`` added to every count), the streams
    ``encode_symbols`` codes. Returns (table (2, N_BANDS, 2, 2 * top + 1), last band per (c, by, bx))."""
    last = mcdct2._last_bands(q)
    table = np.empty((2, N_BANDS, 2, 2 * top + 1))
    band = mcdct2._band_of_position()
    for g, chans in enumerate((slice(0, 1), slice(1, 3))):
        qg, lg = q[chans], last[chans]
        for k in range(N_BANDS):
            vals = qg[..., band == k]
            for is_last, mask in enumerate((lg > k + 1, lg == k + 1)):
                sel = vals[mask].ravel()
                counts = np.bincount(np.clip(sel, -top, top) + top, minlength=2 * top + 1) + prior
                table[g, k, is_last] = -np.log2(counts / counts.sum())
    return table, last


def cheapest(cands: list[np.ndarray], costs: list[np.ndarray]) -> np.ndarray:
    """Per element, the candidate value of least cost (the earlier candidate on ties): RDOQ's choice."""
    best, best_cost = cands[0].copy(), costs[0]
    for v, cost in zip(cands[1:], costs[1:]):
        better = cost < best_cost
        best[better] = v[better]
        best_cost = np.where(better, cost, best_cost)
    return best


def rdo_quantise(coef: np.ndarray, q: np.ndarray, lam: float, chroma: float = CHROMA_FACTOR,
                 passes: int = 2, truncate: bool = True, coef_factor: float | None = None,
                 prior: float = 1.0) -> np.ndarray:
    """RD-optimised levels (an encoder choice: any decoder reads them): per coefficient the level of plain rounding,
    one less toward zero, or zero, whichever costs least in weighted squared error + ``lam`` x estimated bits, the
    bits from the per-band statistics of the symbols as they stand (``_band_bits``, re-estimated ``passes``
    times; ``prior``: the count added to every value, 1 for a dense image residual, less for a sparse P frame's,
    whose streams hold too few symbols to outweigh 129 added counts). Errors in luma step^2: a YCoCg error costs Y 3,
    Co 2, Cg 3 in RGB, chroma steps ``chroma`` x luma. Also ``mcdct2.analyse``'s (video residual) quantiser."""
    coef_factor = RDOQ_COEF_FACTOR if coef_factor is None else coef_factor
    c = coef.shape[0]
    weight = np.array([3.0, 2.0 * chroma**2, 3.0 * chroma**2])[:c, None, None, None]
    band = mcdct2._band_of_position()
    top = 64
    # only coefficients that plain rounding makes non-zero have a choice (the rest stay 0): work on those alone
    flat = np.abs(coef).ravel()
    where = np.flatnonzero(flat >= 0.5)
    mag = flat[where]
    up = np.minimum(np.floor(mag + 0.5), MAX_SYMBOL)
    cands = [up, np.maximum(up - 1, 0), np.zeros_like(up)]
    w = np.broadcast_to(weight, coef.shape).ravel()[where]
    dist = [w * (mag - v) ** 2 for v in cands]
    sign = np.where(coef.ravel()[where] < 0, -1, 1)
    chan = where // (coef.size // c)
    pos = where % (N * N)
    group = np.minimum(chan, 1)
    beyond = [np.maximum(np.log2(np.maximum(v, 1.0)) * 2 - 2 * np.log2(top), 0) for v in cands]  # |v| > top
    for _ in range(passes):
        if not coef_factor:
            q = _truncate_bands(coef, q, weight, lam, top, prior)
            continue
        table, last = _band_bits(q, top, prior)
        is_last = (last.ravel()[where // (N * N)] == band[pos] + 1).astype(np.int64)
        row = ((group * N_BANDS + band[pos]) * 2 + is_last) * (2 * top + 1)
        table = table.ravel()
        best = cheapest(cands, [d + coef_factor * lam * (table[row + (np.clip(sign * v, -top, top) + top)
                                                              .astype(np.int64)] + extra)
                                for v, d, extra in zip(cands, dist, beyond)])
        q = np.zeros(coef.shape, np.int32)
        q.ravel()[where] = (sign * best).astype(np.int32)
        if truncate:
            q = _truncate_bands(coef, q, weight, lam, top, prior)
    return q


def _truncate_bands(coef: np.ndarray, q: np.ndarray, weight: np.ndarray, lam: float, top: int,
                    prior: float = 1.0) -> np.ndarray:
    """Per block and channel, the last band that minimises -(error removed) + lam x bits over the bands kept
    (the bands below the last in the not-last streams, the last in its own stream, plus the ``last`` symbol):
    a lone non-zero in a high band costs the zeros of every band below it too, which a per-coefficient
    decision does not see."""
    table, last = _band_bits(q, top, prior)
    band = mcdct2._band_of_position()
    c = q.shape[0]
    group = np.zeros(c, np.int64)
    group[1:] = 1
    idx = np.clip(q, -top, top).astype(np.int64) + top
    gain = weight * (coef**2 - (coef - q) ** 2)  # error each coded symbol removes
    g = group[:, None, None, None]
    bits_not = table[g, band, 0, idx]
    bits_last = table[g, band, 1, idx]
    nz = q != 0
    per_band = [np.s_[..., BANDS[k]:BANDS[k + 1]] for k in range(N_BANDS)]
    gain_b = np.stack([gain[sl].sum(-1) for sl in per_band], -1)  # (c, by, bx, bands)
    not_b = np.stack([bits_not[sl].sum(-1) for sl in per_band], -1)
    last_b = np.stack([bits_last[sl].sum(-1) for sl in per_band], -1)
    nz_b = np.stack([nz[sl].any(-1) for sl in per_band], -1)
    # the last symbol's bits per group, from its histogram over blocks
    last_bits = np.empty((c, N_BANDS + 1))
    for gi, chans in enumerate((slice(0, 1), slice(1, 3))):
        counts = np.bincount(last[chans].ravel(), minlength=N_BANDS + 1) + 1.0
        last_bits[chans] = -np.log2(counts / counts.sum())
    cum_gain = np.concatenate([np.zeros(gain_b.shape[:-1] + (1,)), np.cumsum(gain_b, -1)], -1)
    cum_not = np.concatenate([np.zeros(not_b.shape[:-1] + (1,)), np.cumsum(not_b, -1)], -1)
    cost = np.empty(gain_b.shape[:-1] + (N_BANDS + 1,))
    cost[..., 0] = lam * last_bits[:, 0][:, None, None]
    for k in range(1, N_BANDS + 1):  # keep bands 0..k-1, band k-1 the last (must hold a non-zero)
        ck = -cum_gain[..., k] + lam * (cum_not[..., k - 1] + last_b[..., k - 1] + last_bits[:, k][:, None, None])
        cost[..., k] = np.where(nz_b[..., k - 1] & (k <= last), ck, np.inf)
    keep = np.argmin(cost, axis=-1)  # new number of bands
    out = q.copy()
    out[band[None, None, None, :] >= keep[..., None]] = 0
    return out


@functools.lru_cache(maxsize=1)
def _inverse_matrices() -> tuple[np.ndarray, np.ndarray]:
    """The two passes of the 8x8 inverse as (64, 64) float32 matrices on a block's flat coefficients: the first
    takes zig-zag order to ``C @ T`` (rows: vertical frequency), the second ``A`` to ``T^t @ A`` in raster order.
    Why 64x64 instead of 8x8: one plain GEMM per pass over all blocks, with no gather or transposed copies in
    between (8x more multiply-adds, all by zeros, ~5x less time). Still exact: every product is an integer and
    each output sums the same eight non-zero products, all partial sums below 2^24 (see ``mcdct2``)."""
    t = T8.astype(np.float64)
    raster_to_zz = _unzigzag()  # zig-zag position of raster index r * 8 + c
    m1 = np.zeros((N * N, N * N))
    m2 = np.zeros((N * N, N * N))
    for r in range(N):
        for c in range(N):
            m1[raster_to_zz[r * N + c], r * N:(r + 1) * N] = t[c]  # a[r, j] = sum_c B[r, c] T[c, j]
        for i in range(N):
            m2[r * N + np.arange(N), i * N + np.arange(N)] = t[r, i]  # b[i, j] = sum_r T[r, i] a[r, j]
    return m1.astype(np.float32), m2.astype(np.float32)


def _round_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """floor(x / 2^shift + 1/2) in place (float32 integers: exact)."""
    x *= np.float32(2.0 ** -shift)
    x += np.float32(0.5)
    return np.floor(x, out=x)


def _inverse_channel(q: np.ndarray, per_position: np.ndarray) -> np.ndarray:
    """(by, bx, 64) symbols of one channel with its (64,) steps -> (by*8, bx*8) float32, integer 1/4 levels."""
    by, bx, _ = q.shape
    m1, m2 = _inverse_matrices()
    deq = q.reshape(-1, N * N).astype(np.float32)
    deq *= per_position.astype(np.float32)
    np.clip(deq, -COEF_CLAMP, COEF_CLAMP, out=deq)
    b = _round_shift(_round_shift(deq @ m1, STAGE1_SHIFT) @ m2, STAGE2_SHIFT)
    return b.reshape(by, bx, N, N).transpose(0, 2, 1, 3).reshape(by * N, bx * N)


def inverse_quarter(q: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(c, by, bx, 64) symbols -> (by*8, bx*8, c) residual in the image's channels, integer 1/4 levels (float32,
    exact: see ``mcdct2``)."""
    per = _per_position(units)
    ycc = [_inverse_channel(q[k], per[k]) for k in range(q.shape[0])]
    if len(ycc) == 1:
        return ycc[0][..., None]
    return np.stack(_rgb_from_ycocg(*ycc), axis=-1)


def _rgb_from_ycocg(y: np.ndarray, co: np.ndarray, cg: np.ndarray) -> list[np.ndarray]:
    """YCoCg planes in 1/4 levels -> R, G, B planes (integer sums: exact)."""
    t = y - cg
    return [t + co, y + cg, t - co]


def add(base: np.ndarray, q: np.ndarray, units: np.ndarray, strength: int, tx16: np.ndarray | None = None,
        filters: dict | None = None, cfl: np.ndarray | None = None) -> np.ndarray:
    """Decoded image: integer ``base`` (h, w, c) uint8/uint16 plus the residual, rounded and clipped; then the
    block edges deblocked (8-bit images, ``strength`` > 0); then the restoration ``filters`` (formats 3, 5 and 6,
    8-bit images; ``restore.apply``). The compiled kernels (``kernels.dct_residual``, ``kernels.restore``) where
    there are, else the numpy references: the same integers. ``tx16`` (formats 4 and 5): the (gy, gx) groups of
    2x2 blocks whose symbols are one 16x16 transform (``image_tx16``): added after the 8x8 blocks, with those
    zeroed. ``cfl`` (format 7's TOOL_CFL): the (2, bands) alphas of chroma from luma (``cfl_dequantised``)."""
    out = _add_deblocked(base, q, units, strength, tx16, cfl)
    if filters is not None and out.dtype == np.uint8:
        out = restore.apply(out, filters)
    return out


def _add_deblocked(base: np.ndarray, q: np.ndarray, units: np.ndarray, strength: int,
                   tx16: np.ndarray | None = None, cfl: np.ndarray | None = None) -> np.ndarray:
    if tx16 is not None:  # only groups that code something carry a flag (what the section can say)
        tx16 = tx16 & image_tx16.flag_contexts(q)[0]
    sel = None if tx16 is None or not tx16.any() else image_tx16.block_mask(tx16, *q.shape[1:3])
    coefs, inv_units = q, units
    if cfl is not None:  # the inverses take the dequantised coefficients, with steps of one sixteenth
        coefs, inv_units = cfl_dequantised(q, units, cfl, tx16), np.ones_like(units)
        if coefs.dtype == np.int32:  # the fast path's values are below 2^15: the kernels' int16, no second check
            coefs = coefs.astype(np.int16)
    q8 = coefs
    if sel is not None:  # the groups' symbols are not 8x8 blocks: the 8x8 pass adds nothing there
        q8 = coefs.copy()
        q8[:, sel] = 0
    out = dct_residual.inverse_add(base, q8, _per_position(inv_units), mcdct._zigzag(), T8, COEF_CLAMP,
                                   STAGE1_SHIFT, STAGE2_SHIFT, _level(base.dtype))
    if out is None:  # no compiled library (or a coefficient beyond int16): the numpy reference, the same integers
        out = _inverse_add_reference(base, q8, inv_units)
    if sel is not None:
        _add_groups(out, base, coefs, inv_units, tx16)
    if strength and base.dtype == np.uint8:
        coded = np.any(q != 0, axis=(0, 3))
        if sel is not None:
            coded |= sel  # a flagged group's residual covers all four of its blocks
        fast = dct_residual.deblock(out, coded, *deblock.thresholds(int(units[0, 0]), strength))
        if fast is not None:  # the compiled filter, on the image's own channels
            return fast
        c = base.shape[-1]
        rgb = out if c == 3 else np.repeat(out, 3, axis=-1)
        rgb = deblock.deblock(rgb, coded, int(units[0, 0]), strength)
        out = rgb if c == 3 else rgb[..., :1]
    return out


def _add_groups(out: np.ndarray, base: np.ndarray, q: np.ndarray, units: np.ndarray, tx16: np.ndarray) -> None:
    """Write the flagged 16x16 groups (``image_tx16``) into ``out``: the compiled kernel
    (``kernels.dct_residual.tx16_add``) where there is one, else the numpy reference (the same integers)."""
    if not dct_residual.tx16_add(out, base, q, _per_position(units), mcdct._zigzag(), image_tx16.t16(),
                                 image_tx16.COEF_CLAMP, image_tx16.SHIFT1, image_tx16.SHIFT2, tx16, _level(base.dtype)):
        _add_groups_reference(out, base, q, units, tx16)


def _add_groups_reference(out: np.ndarray, base: np.ndarray, q: np.ndarray, units: np.ndarray,
                          tx16: np.ndarray) -> None:
    """``_add_groups`` in numpy: base plus the groups' inverse (``image_tx16.inverse_groups``), rounded and
    clipped, in float64 (exact: integer 1/4 levels times 0.25 x level, plus an integer)."""
    h, w, c = base.shape
    gy, gx = tx16.shape
    per = _per_position(units).astype(np.float64)
    blocks = q[:, :2 * gy, :2 * gx].reshape(c, gy, 2, gx, 2, N * N).transpose(0, 1, 3, 2, 4, 5)[:, tx16]
    deq = np.clip(blocks * per[:, None, None, None, :], -image_tx16.COEF_CLAMP, image_tx16.COEF_CLAMP)
    n = deq.shape[1]
    c16 = deq[..., _unzigzag()].reshape(c, n, 2, 2, N, N).transpose(0, 1, 2, 4, 3, 5).reshape(c * n, 16, 16)
    planes = list(image_tx16.inverse_groups(c16).reshape(c, n, 16, 16))
    if c == 3:
        planes = _rgb_from_ycocg(*planes)
    res = np.zeros((gy, gx, 16, 16, c))
    res[tx16] = np.stack(planes, -1)
    res = res.transpose(0, 2, 1, 3, 4).reshape(gy * 16, gx * 16, c)[:h, :w]
    pix = np.repeat(np.repeat(tx16, 16, 0), 16, 1)[:h, :w]
    v = res[pix] * (0.25 * _level(base.dtype)) + base[:gy * 16, :gx * 16][pix]
    out[:gy * 16, :gx * 16][pix] = np.clip(np.rint(v), 0, np.iinfo(base.dtype).max)


def _inverse_add_reference(base: np.ndarray, q: np.ndarray, units: np.ndarray) -> np.ndarray:
    """``add`` before deblocking, in numpy: the reference of the compiled ``kernels.dct_residual.inverse_add``.
    Bands of ``BAND_ROWS`` block rows at a time, so the float temporaries stay small next to the image (a file may
    claim up to ``limits.MAX_PIXELS`` pixels). 8-bit: base + r / 4 is exact in float32 (the ``rint`` sees the same
    value as in float64); 16-bit images (level 257) need float64."""
    h, w, c = base.shape
    level = _level(base.dtype)
    top = float(np.iinfo(base.dtype).max)
    ftype = np.float32 if level == 1 else np.float64
    scale = ftype(0.25 * level)
    per = _per_position(units)
    out = np.empty_like(base)
    for r0 in range(0, q.shape[1], BAND_ROWS):
        r1 = min(r0 + BAND_ROWS, q.shape[1])
        y0, y1 = r0 * N, min(r1 * N, h)
        planes = [_inverse_channel(q[k, r0:r1], per[k]) for k in range(c)]
        if c == 3:
            planes = _rgb_from_ycocg(*planes)
        for k in range(c):
            v = planes[k][:y1 - y0, :w].astype(ftype, copy=False) * scale
            v += base[y0:y1, :, k]
            np.rint(v, out=v)
            np.clip(v, 0, top, out=v)
            out[y0:y1, :, k] = v
    return out


def best_strength(image: np.ndarray, base: np.ndarray, q: np.ndarray, units: np.ndarray,
                  candidates=DEBLOCK_CANDIDATES, tx16: np.ndarray | None = None, cfl: np.ndarray | None = None) -> int:
    """The deblocking strength of ``candidates`` whose decoded image is closest to ``image`` (squared error): an
    encoder choice, the section stores it (0 for 16-bit images, which are not deblocked)."""
    if image.dtype != np.uint8:
        return 0
    undeblocked = _add_deblocked(base, q, units, 0, tx16, cfl)
    coded = np.any(q != 0, axis=(0, 3))
    if tx16 is not None:
        coded |= image_tx16.block_mask(tx16 & image_tx16.flag_contexts(q)[0], *coded.shape)
    rgb = undeblocked if image.shape[-1] == 3 else np.repeat(undeblocked, 3, axis=-1)
    ref = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    ref = ref.astype(np.int32)
    errors = [int(((deblock.deblock(rgb, coded, int(units[0, 0]), s).astype(np.int32) - ref) ** 2).sum())
              for s in candidates]
    return int(candidates[int(np.argmin(errors))])


# -- chroma from luma (format 7's TOOL_CFL, session 26) ----------------------------------------------------------
@functools.lru_cache(maxsize=1)
def cfl_bands() -> np.ndarray:
    """(64,) band of each zig-zag position (``CFL_EDGES``): which alpha predicts it."""
    return (np.searchsorted(CFL_EDGES, np.arange(N * N), side="right") - 1).astype(np.int64)


def cfl_dequantised(q: np.ndarray, units: np.ndarray, alpha: np.ndarray,
                    tx16: np.ndarray | None = None) -> np.ndarray:
    """(3, by, bx, 64) int64 dequantised coefficients in 1/16 levels of symbols ``q`` with chroma from luma: each
    symbol times its step, clamped to its transform's bound (``COEF_CLAMP``, ``image_tx16.COEF_CLAMP`` in the
    flagged 16x16 groups ``tx16``), then Co and Cg plus (alpha x Y + 2^(S-1)) >> S (``alpha`` (2, bands) integers in
    1/2^S, ``CFL_SHIFT``; per zig-zag position its band's, ``cfl_bands``), clamped again. Integers throughout:
    the same on every machine. The encoder subtracts the same prediction from the chroma it quantises."""
    per = _per_position(units)
    a = np.asarray(alpha, np.int64)[..., cfl_bands()]
    qmax = int(np.abs(q).max(initial=0))
    top = qmax * int(per.max())  # bounds every |q x step|; a prediction adds at most (|a| top + 2^(S-1)) >> S
    if a.ndim == 2 and (top * ((1 << CFL_SHIFT) + int(np.abs(a).max(initial=0))) + (1 << CFL_SHIFT)
                        < COEF_CLAMP << CFL_SHIFT):
        # no clamp can act (every |value| stays below 2^15, the smaller bound): int32, only the chroma channels
        # whose alphas are not all zero (the decoder's fast path; the same integers as the general one below)
        deq = q.astype(np.int32) * per.astype(np.int32)[:, None, None, :]
        for ch in range(1, q.shape[0]):
            if a[ch - 1].any():
                deq[ch] += (a[ch - 1].astype(np.int32) * deq[0] + (1 << (CFL_SHIFT - 1))) >> CFL_SHIFT
        return deq
    deq = q.astype(np.int64) * per[:, None, None, :]
    lim = np.full(q.shape[1:3] + (1,), COEF_CLAMP, np.int64)
    if tx16 is not None and tx16.any():
        lim[image_tx16.block_mask(tx16, *q.shape[1:3])] = image_tx16.COEF_CLAMP
    np.clip(deq, -lim, lim, out=deq)
    if a.ndim == 2:  # per image (the format); (2, by, bx, bands) per block: the lab's ceiling (gaussian_dct_lab)
        a = a[:, None, None, :]
    deq[1:] += (a * deq[0] + (1 << (CFL_SHIFT - 1))) >> CFL_SHIFT
    np.clip(deq, -lim, lim, out=deq)
    return deq


def cfl_fit(raw: np.ndarray, q: np.ndarray, units: np.ndarray, tx16: np.ndarray | None = None,
            mode: str | None = None) -> np.ndarray | None:
    """The encoder's alphas (2, bands) for chroma coefficients ``raw`` (c, by, bx, 64) in levels over luma symbols
    ``q[0]``: per chroma channel the least-squares alpha over the coded luma coefficients (``mode`` "image": one
    for all bands, "band": one per band), rounded to 1/2^S; None where all are zero."""
    mode = CFL if mode is None else mode
    if mode == "off" or q.shape[0] != 3:
        return None
    y = cfl_dequantised(q[:1], units[:1], np.zeros((0, len(CFL_EDGES) - 1)), tx16)[0] / STEP_UNIT
    band = cfl_bands()
    groups = [np.arange(len(CFL_EDGES) - 1)] if mode == "image" else [[b] for b in range(len(CFL_EDGES) - 1)]
    alpha = np.zeros((2, len(CFL_EDGES) - 1), np.int64)
    for ch in (1, 2):
        for g in groups:
            sel = np.isin(band, g)
            yy, tt = y[..., sel], raw[ch][..., sel]
            den = float((yy * yy).sum())
            if den > 0:
                alpha[ch - 1, g] = int(np.clip(np.rint(float((yy * tt).sum()) / den * (1 << CFL_SHIFT)),
                                               -CFL_MAX, CFL_MAX))
    return alpha if alpha.any() else None


def _level(dtype) -> int:
    """Input levels per 8-bit level: 1 (uint8), 257 (uint16)."""
    return int(np.iinfo(dtype).max) // 255


def step_units(step: float, channels: int, chroma: float = CHROMA_FACTOR, dc: float = DC_FACTOR) -> np.ndarray:
    """(channels, 2) integer steps in 1/16 levels: [AC, DC] of Y (Co, Cg)."""
    factors = [1.0, chroma, chroma][:channels]
    return np.array([[int(np.clip(round(step * f * STEP_UNIT * g), 1, MAX_UNITS)) for g in (1.0, dc)]
                     for f in factors], np.int64)


def _per_position(units: np.ndarray) -> np.ndarray:
    """(c, 2) [AC, DC] steps -> (c, 64) per zigzag position (position 0 is DC)."""
    out = np.repeat(units[:, :1], N * N, axis=1)
    out[:, 0] = units[:, 1]
    return out


def raw_coefficients(image: np.ndarray, base: np.ndarray) -> np.ndarray:
    """DCT coefficients (c, by, bx, 64) of ``image - base`` in 8-bit levels (a step of 1): what every step's
    quantisation divides, computed once per image."""
    res = (image.astype(np.float64) - base.astype(np.float64)) / _level(image.dtype)
    return coefficients(res, np.full((image.shape[-1], 2), STEP_UNIT, np.int64))


def quantise_raw(raw: np.ndarray, step: float, chroma: float = CHROMA_FACTOR, dc: float = DC_FACTOR,
                 **kw) -> tuple[np.ndarray, np.ndarray]:
    units = step_units(step, raw.shape[0], chroma, dc)
    return quantise(raw / (_per_position(units)[:, None, None, :] / STEP_UNIT), chroma=chroma, **kw), units


def raw_coefficients16(image: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``raw_coefficients`` of 16x16 transforms over whole groups of 2x2 blocks, held as ``image_tx16`` lays them
    out in blocks (c, by, bx, 64; blocks outside whole groups zero)."""
    res = to_ycocg((image.astype(np.float64) - base.astype(np.float64)) / _level(image.dtype))
    return image_tx16.raw_coefficients(res, *grid(*image.shape[:2]))


def quantise_tx16(raw: np.ndarray, raw16: np.ndarray, step: float, chroma: float = CHROMA_FACTOR,
                  mu: float | None = None, requantise: bool | None = None, bias: float | None = None,
                  calibrate: bool | None = None, q8: np.ndarray | None = None,
                  **kw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(symbols, units, 16x16 group flags) at luma ``step``: both forms quantised as ``quantise_raw`` does
    (``kw``: rdoq, prices, ...), then per group the one of less weighted squared error + mu x lambda x estimated
    bits (``rdoq_ctx.block_bits``; lambda = the RDOQ's, in luma step^2). ``q8``: the plain 8x8 symbols at this
    step where the caller has them."""
    mu = image_tx16.CHOICE_MU if mu is None else mu
    units = step_units(step, raw.shape[0], chroma, kw.get("dc", DC_FACTOR))
    if q8 is None:
        q8, _ = quantise_raw(raw, step, chroma=chroma, **kw)
    q16, _ = quantise_raw(raw16, step, chroma=chroma, **kw)
    per = _per_position(units)[:, None, None, :] / STEP_UNIT
    weight = np.array([3.0, 2.0, 3.0])[:raw.shape[0], None, None]
    lam = mu * (kw.get("rdoq") or RDOQ_LAMBDA) * step**2

    calibrate = image_tx16.CHOICE_CALIBRATE if calibrate is None else calibrate

    def cost(q, r, groups=None):
        bits = rdoq_ctx.block_bits(q).sum(0)
        if calibrate:  # the per-block estimate's bias for this layout, from the coder's own models over the image
            bits *= 8.0 * estimate_bytes(q, groups=groups) / max(float(bits.sum()), 1.0)
        return (weight * ((r - q * per) ** 2).sum(-1)).sum(0) + lam * bits

    bias = image_tx16.CHOICE_BIAS if bias is None else bias
    # the 16x16 layout priced as coded: with TOOL_GROUPS every group flagged (its own contexts)
    g16 = (np.ones(image_tx16.groups(*q8.shape[1:3]), bool)
           if TX16_GROUP_COST and GROUP_CONTEXTS and RICH_MODEL else None)
    flags = image_tx16.choose(cost(q8, raw), cost(q16, raw16, g16) + lam * bias / 4)  # bias: bits per group
    sel = image_tx16.block_mask(flags, *q8.shape[1:3])
    if image_tx16.CHOICE_REQUANTISE if requantise is None else requantise:  # the chosen coefficients quantised together (RDOQ's class statistics of the mix)
        q, _ = quantise_raw(np.where(sel[None, :, :, None], raw16, raw), step, chroma=chroma, **kw)
    else:
        q = np.where(sel[None, :, :, None], q16, q8)
    return q, units, flags & image_tx16.flag_contexts(q)[0]


def encode_residual(image: np.ndarray, base: np.ndarray, raw: np.ndarray, raw16: np.ndarray | None, step: float,
                    guard: bool | None = None, restoration: bool = False, cfl: str | None = None,
                    **kw) -> tuple[bytes, np.ndarray | None]:
    """The encoder's ``dct`` section at luma ``step`` (``kw``: rdoq, prices, and ``quantise_tx16``'s choice
    settings): RDOQ'd symbols, per 16x16 group one transform or four where ``raw16`` is given (format 4 where a
    group takes one), the deblocking strength of least error. With ``guard`` (default ``TX16_GUARD``) the
    16x16 groups are kept only where the whole image's real bytes and error (RGB squared error + GUARD_LAMBDA x
    step^2 per bit) beat the plain 8x8 form's, so a choice from estimated bits never makes an image worse.
    With ``restoration`` (8-bit images) the restoration filters ``restore.choose`` finds on the chosen form's
    decoded image are added where they pay (formats 3 and 5; 6 where a channel's filters take cross-channel taps).
    ``cfl`` (default ``CFL``): chroma from luma (format 7's TOOL_CFL, ``_cfl_choice``), RGB images with format 7.
    Returns (section, the decoded image before the restoration filters where it was made, else None)."""
    cfl = CFL if cfl is None else cfl
    qkw = {k: v for k, v in kw.items() if k in _QUANTISE_KW}
    q8, units = quantise_raw(raw, step, **qkw)
    choice = (q8, units, best_strength(image, base, q8, units), None)
    rec = None
    if raw16 is not None:
        q, units16, flags = quantise_tx16(raw, raw16, step, q8=q8, **kw)
        if flags.any():
            tx = (q, units16, best_strength(image, base, q, units16, tx16=flags), flags)
            if not (TX16_GUARD if guard is None else guard):
                choice = tx
            else:
                lam = GUARD_LAMBDA * step**2 * 8  # per byte
                recs = [add(base, *choice), add(base, *tx)]
                sizes = [len(encode_section(*choice[:3])), len(encode_section(*tx[:3], tx16=flags))]
                err = [float(((r.astype(np.int64) - image) ** 2).sum()) / _level(image.dtype) ** 2 for r in recs]
                better = err[1] + lam * sizes[1] < err[0] + lam * sizes[0]
                choice, rec = (tx, recs[1]) if better else (choice, recs[0])
    q, units, strength, flags = choice
    alpha = None
    if cfl != "off" and q.shape[0] == 3:
        mix = raw if flags is None else np.where(image_tx16.block_mask(flags, *q.shape[1:3])[None, :, :, None],
                                                 raw16, raw)
        found = _cfl_choice(image, base, mix, q, units, strength, flags, step, qkw, cfl)
        if found is not None:
            q, strength, alpha, rec = found
    filters, cross = None, False
    if restoration and image.dtype == np.uint8:
        if rec is None:
            rec = add(base, q, units, strength, flags, cfl=alpha)
        filters, cross = restore.choose(image, rec, step) or (None, False)
    return encode_section(q, units, strength, filters=filters, tx16=flags, cross=cross, cfl=alpha), rec


def _cfl_choice(image, base, raw, q, units, strength, flags, step, qkw, mode):
    """Chroma from luma over the chosen form (``raw`` its coefficients, ``q`` its symbols): the alphas
    (``cfl_fit``), the chroma quantised again after the prediction is subtracted (luma kept), the deblocking
    strength again; with CFL_GUARD kept only where the section's real bytes and the image's
    error beat the form without it (as the 16x16 guard). (symbols, strength, alphas, decoded image) or None."""
    tx = None if flags is None else flags & image_tx16.flag_contexts(q)[0]
    alpha = cfl_fit(raw, q, units, tx, mode)
    if alpha is None:
        return None
    target = raw.copy()
    target[1:] -= (cfl_dequantised(q, units, alpha, tx)[1:] - cfl_dequantised(q, units, 0 * alpha, tx)[1:]) / STEP_UNIT
    qc, _ = quantise_raw(target, step, **qkw)
    qc[0] = q[0]
    sc = best_strength(image, base, qc, units, tx16=flags, cfl=alpha)
    rec = add(base, qc, units, sc, flags, cfl=alpha)
    if CFL_GUARD:
        lam = GUARD_LAMBDA * step**2 * 8  # per byte
        plain = add(base, q, units, strength, flags)
        sizes = [len(encode_section(q, units, strength, tx16=flags)),
                 len(encode_section(qc, units, sc, tx16=flags, cfl=alpha))]
        err = [float(((r.astype(np.int64) - image) ** 2).sum()) / _level(image.dtype) ** 2 for r in (plain, rec)]
        if err[1] + lam * sizes[1] >= err[0] + lam * sizes[0]:
            return None
    return qc, sc, alpha, rec


_QUANTISE_KW = ("chroma", "dc", "dead_zone", "lam", "rdoq", "prices", "lookahead")


def analyse(image: np.ndarray, base: np.ndarray, step: float, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Quantised symbols (c, by, bx, 64) int32 of ``image - base`` (both (h, w, c) of the same integer dtype) at
    luma ``step`` (8-bit levels), and the steps (c, 2) they are in. ``kw``: chroma, dc, dead_zone, lam."""
    return quantise_raw(raw_coefficients(image, base), step, **kw)


def estimate_bytes(q: np.ndarray, form: int | None = None, groups: np.ndarray | None = None) -> float:
    """Coded size of the symbols in ``form`` (default: what the encoder writes, ``RICH_MODEL``; signs raw): formats
    2-6 from ``coefcoder``'s own models, 7 from ``coefcoder7``'s (within a few bytes, cheaper than coding), format 1
    from its streams' histograms (``mcdct2.estimate_bytes``)."""
    if form is None:
        form = FORMAT_TOOLS if RICH_MODEL else FORMAT
    if form == 1:
        return mcdct2.estimate_bytes([_dense(q)])
    if form == FORMAT_TOOLS:  # ``groups``: the 16x16 group flags coded in the stream (TOOL_GROUPS)
        return coefcoder7.estimate_bytes(q, groups=groups)
    return coefcoder.estimate_bytes(q)


# -- symbols (format 1; format 2 is ``coefcoder``) ---------------------------------------------------------------
# Coded as ``mcdct2`` codes a P frame's residual (per block and channel the last band holding a non-zero, then the
# bands below it, each band split by whether it is the block's last). Measured on kodim03 over a 0.1 bpp Gaussian
# base at step 12 (31.3 kB of residual): coding every block's bands without "last" in activity contexts (own lower
# bands + neighbours' lower bands, band-major so the decoder knows them) cost +2.0 % with 5 contexts per band, and
# adding those contexts to the last-band coding changed -0.0 to +0.3 % (more blob headers than it saved): the
# last band already carries what the activity would tell.
def _dense(q: np.ndarray) -> np.ndarray:
    """(c, by, bx, 64) -> (3, by, bx, 64) for the symbol stream (gray: chroma all zero, ~30 bytes of empty blobs)."""
    if q.shape[0] == 3:
        return q
    return np.concatenate([q, np.zeros((2,) + q.shape[1:], q.dtype)])


def encode_symbols(q: np.ndarray) -> bytes:
    return mcdct2.encode_symbols([_dense(q).astype(np.int16)])


def decode_symbols(data: bytes, c: int, by: int, bx: int) -> np.ndarray:
    """(c, by, bx, 64) int16 symbols (|symbol| <= MAX_SYMBOL = 2^12)."""
    (sp,) = mcdct2.decode_symbols(data, 1, by * N, bx * N)
    flat = np.zeros((by * bx, 3, N * N), np.int16)
    flat[sp.index] = sp.coef
    q = flat.reshape(by, bx, 3, N * N).transpose(2, 0, 1, 3)
    if c == 1:
        if np.any(q[1:]):
            raise FormatError("dct residual of a gray image codes chroma")
        q = q[:1]
    return np.ascontiguousarray(q)


def encode_section(q: np.ndarray, units: np.ndarray, strength: int, form: int | None = None,
                   filters: bytes | None = None, tx16: np.ndarray | None = None, cross: bool = False,
                   tools: int | None = None, cfl: np.ndarray | None = None) -> bytes:
    """The ``dct`` section: format 2's header (format byte, steps, deblocking strength), then with ``tx16`` flags of
    which a group is set their stream (varint length + ANS payload, ``image_tx16``), then with ``filters``
    (``restore.encode``'s bytes) a varint length and the filters, then format 2's symbols. Formats: 3 filters,
    4 flags, 5 both, 6 (``cross``: the filters in their cross-channel form) format 5's layout, the flag stream
    empty where no group is set; 7 all of them in format 7's layout with ``tools`` (None: ``RICH_MODEL`` and
    ``SIGN_PREDICTION`` choose; ``form`` None: formats 2-6 where they choose neither tool); ``cfl`` the (2, bands)
    alphas of chroma from luma: format 7 with TOOL_CFL."""
    has_tx16 = tx16 is not None and bool(np.any(tx16 & image_tx16.flag_contexts(q)[0]))
    if cross and filters is None:
        raise ValueError("cross-channel form without filters")
    if cfl is not None and (form not in (None, FORMAT_TOOLS) or q.shape[0] != 3):
        raise ValueError("chroma from luma is format 7's, for three channels")
    if form is None or form == FORMAT_TOOLS:
        blob = _tools_section(q, units, strength, filters, tx16 if has_tx16 else None, cross, tools,
                              legacy=form is None, cfl=cfl)
        if blob is not None:
            return blob
        form = FORMAT
    if has_tx16 or filters is not None:
        form = FORMAT_CROSS if cross else {
            (False, True): FORMAT_RESTORE, (True, False): FORMAT_TX16, (True, True): FORMAT_TX16_RESTORE}[
            (has_tx16, filters is not None)]
    head = bytes([form]) + b"".join(varint(int(u)) for u in units.ravel()) + bytes([int(strength)])
    if has_tx16 or form == FORMAT_CROSS:
        flags = image_tx16.encode_flags(q, tx16) if has_tx16 else b""
        head += varint(len(flags)) + flags
    if filters is not None:
        head += varint(len(filters)) + filters
    return head + (encode_symbols(q) if form == 1 else coefcoder.encode(q))


def _tools_section(q: np.ndarray, units: np.ndarray, strength: int, filters: bytes | None,
                   tx16: np.ndarray | None, cross: bool, tools: int | None, legacy: bool,
                   cfl: np.ndarray | None = None) -> bytes | None:
    """Format 7 (see FORMAT_TOOLS) with ``tools``; None: the encoder's choice (TOOL_SIGNS under "auto" only where
    the sign stream and its bytes of layout are shorter than the raw signs), then None where ``legacy`` and the
    choice is no tool (formats 2-6 hold that in fewer bytes)."""
    auto = tools is None
    if auto:
        tools = (TOOL_RICH if RICH_MODEL else 0) | (TOOL_SIGNS if SIGN_PREDICTION != "never" else 0)
        tools |= TOOL_SIGNS2 if tools & TOOL_SIGNS and SIGN_FORM == 2 else 0
        tools |= TOOL_GROUPS if GROUP_CONTEXTS else 0
    if tx16 is None or not tools & TOOL_RICH:
        tools &= ~TOOL_GROUPS
    flags, mask = b"", None
    if tx16 is not None:
        tx16 = tx16 & image_tx16.flag_contexts(q)[0]
        flags = b"" if tools & TOOL_GROUPS else image_tx16.encode_flags(q, tx16)
        mask = image_tx16.block_mask(tx16, *q.shape[1:3])
    layout = varint(len(flags)) + flags + bytes([0 if filters is None else 2 if cross else 1])
    if filters is not None:
        layout += varint(len(filters)) + filters
    signs = b""
    if tools & TOOL_SIGNS:
        signs = signpred.encode(q, units, mask, 2 if tools & TOOL_SIGNS2 else 1)
        if auto and SIGN_PREDICTION == "auto":
            overhead = len(varint(len(signs)))
            if not tools & TOOL_RICH:  # against formats 2-6's layout
                old = (len(varint(len(flags))) + len(flags) if tx16 is not None or cross else 0)
                old += len(varint(len(filters))) + len(filters) if filters is not None else 0
                overhead += 1 + len(layout) - old
            if len(signs) + overhead >= np.count_nonzero(q) / 8.0:
                tools &= ~(TOOL_SIGNS | TOOL_SIGNS2)
    if cfl is not None:
        tools |= TOOL_CFL
        layout += np.asarray(cfl, np.int8).tobytes()  # (Co, Cg) x bands, two's complement
    elif not auto:
        tools &= ~TOOL_CFL
    if legacy and auto and not tools:
        return None
    head = bytes([FORMAT_TOOLS, tools]) + b"".join(varint(int(u)) for u in units.ravel()) + bytes([int(strength)])
    head += layout
    if tools & TOOL_SIGNS:
        head += varint(len(signs)) + signs
    if tools & TOOL_GROUPS:
        return head + coefcoder7.encode(q, signs=not tools & TOOL_SIGNS, groups=tx16)
    coder = coefcoder7 if tools & TOOL_RICH else coefcoder
    return head + coder.encode(q, signs=not tools & TOOL_SIGNS)


def decode_section(data: bytes, h: int, w: int, c: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """(symbols, units, deblock strength, 16x16 group flags (gy, gx) of formats 4-6, else None) of a ``dct``
    section (the restoration filters of formats 3, 5 and 6 validated, left out: the decoder reads them with
    ``decode_residual``); FormatError on anything malformed."""
    return decode_residual(data, h, w, c)[:4]


def decode_residual(data: bytes, h: int, w: int, c: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None,
                                                                  dict | None]:
    """(symbols, units, deblock strength, 16x16 group flags or None, restoration filters or None) of a ``dct``
    section; FormatError on anything malformed. The symbols, not the image: a section with chroma from luma
    (format 7's TOOL_CFL) also holds alphas that ``add`` needs, which ``decode_parts`` gives."""
    return decode_parts(data, h, w, c)[:5]


def decode_parts(data: bytes, h: int, w: int, c: int) -> tuple:
    """``decode_residual``'s five and the (2, bands) alphas of chroma from luma or None: ``add``'s arguments after
    the base; FormatError on anything malformed."""
    if c not in (1, 3):
        raise FormatError(f"dct residual codes 1 or 3 channels, the image has {c}")
    if len(data) < 1 or data[0] not in FORMATS:
        raise FormatError("dct residual: unknown format")
    pos, tools = 1, 0
    if data[0] == FORMAT_TOOLS:
        if len(data) < 2 or data[1] & ~TOOLS_KNOWN or (data[1] & TOOL_SIGNS2 and not data[1] & TOOL_SIGNS):
            raise FormatError("dct residual: tools byte is truncated or unknown")
        pos, tools = 2, data[1]
        if tools & TOOL_CFL and c != 3:
            raise FormatError("dct residual: chroma from luma in a gray image")
        if tools & TOOL_GROUPS and not tools & TOOL_RICH:
            raise FormatError("dct residual: group contexts without the rich model (tools byte)")
    units = []
    for _ in range(2 * c):
        u, pos = read_varint(data, pos, "dct residual header is truncated", 3)
        if not 1 <= u <= MAX_UNITS:
            raise FormatError(f"dct residual step {u} out of range")
        units.append(u)
    if pos >= len(data):
        raise FormatError("dct residual header is truncated")
    strength = data[pos]
    pos += 1
    if strength > deblock.MAX_STRENGTH:
        raise FormatError(f"dct residual deblocking strength {strength} out of range")
    flags = filters = None
    if data[0] in _WITH_TX16:
        n, pos = read_varint(data, pos, "dct residual: 16x16 flags are truncated", 5)
        if pos + n > len(data):
            raise FormatError("dct residual: 16x16 flags are truncated")
        if n and tools & TOOL_GROUPS:
            raise FormatError("dct residual: a 16x16 flag stream with the flags in the symbols")
        flags, pos = (data[pos:pos + n] if n or data[0] < FORMAT_CROSS else None), pos + n
    filter_form = {FORMAT_RESTORE: 1, FORMAT_TX16_RESTORE: 1, FORMAT_CROSS: 2}.get(data[0], 0)
    if data[0] == FORMAT_TOOLS:
        if pos >= len(data) or data[pos] > 2:
            raise FormatError("dct residual: restoration filter form is truncated or unknown")
        filter_form, pos = data[pos], pos + 1
    if filter_form:
        size, pos = read_varint(data, pos, "dct residual: restoration filters are truncated", 3)
        if size > len(data) - pos:
            raise FormatError("dct residual: restoration filters are truncated")
        filters = restore.decode(data[pos:pos + size], c, filter_form == 2)
        pos += size
    cfl = None
    if tools & TOOL_CFL:
        n = 2 * (len(CFL_EDGES) - 1)
        if pos + n > len(data):
            raise FormatError("dct residual: chroma-from-luma alphas are truncated")
        cfl = np.frombuffer(data[pos:pos + n], np.int8).astype(np.int64).reshape(2, -1)
        if np.abs(cfl).max() > CFL_MAX:
            raise FormatError(f"dct residual: chroma-from-luma alpha out of range (|a| <= {CFL_MAX})")
        pos += n
    by, bx = grid(h, w)
    signs = None
    if tools & TOOL_SIGNS:
        n, pos = read_varint(data, pos, "dct residual: sign stream is truncated", 5)
        if n > len(data) - pos:
            raise FormatError("dct residual: sign stream is truncated")
        signs, pos = data[pos:pos + n], pos + n
    if data[0] == 1:
        q = decode_symbols(data[pos:], c, by, bx)
    elif tools & TOOL_GROUPS:  # the group flags come with the symbols
        q, flags = coefcoder7.decode(data[pos:], c, by, bx, signs=signs is None, groups=True)
        flags = flags if flags.any() else None
    else:  # with TOOL_SIGNS the magnitudes
        q = (coefcoder7 if tools & TOOL_RICH else coefcoder).decode(data[pos:], c, by, bx, signs=signs is None)
    if flags is not None and not tools & TOOL_GROUPS:
        flags = image_tx16.decode_flags(flags, q)
    units = np.array(units, np.int64).reshape(c, 2)
    if signs is not None:
        q = signpred.decode(signs, q, units, None if flags is None else image_tx16.block_mask(flags, by, bx),
                            2 if tools & TOOL_SIGNS2 else 1)
    return q, units, int(strength), flags, filters, cfl


def code_residual(image: np.ndarray, base: np.ndarray, step: float, variant: str = "imgdct", **kw):
    """(section bytes, decoded image) of ``image`` over ``base`` at luma ``step``: the closed loop, for the oracle
    and the encoder's step search."""
    q, units = analyse(image, base, step, **kw)
    strength = DEBLOCK_STRENGTH if image.dtype == np.uint8 else 0
    blob = encode_section(q, units, strength)
    return blob, add(base, q, units, strength)
