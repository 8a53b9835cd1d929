"""Motion-compensated GOP coder (the Cool-chic-video idea): the first frame of a GOP is coded by the image path
(an overfitted image model, ``codec.compress``), every later frame is predicted by warping the previous *decoded*
frame with a coded block motion field, and the prediction error is coded as a residual.

Motion: OpenCV's DIS optical flow from each source frame to the previous source frame (open loop, so the motion is
known, and its bytes counted, before the intra frame is fitted), averaged over ``block`` x ``block`` blocks and
quantised to 1/2 pixel; then (session 20, ``mcmotion``) each block's vector is chosen within 2 half pels of
that one, or as its median predictor, by prediction error + lambda x bits. The decoder interpolates the block
field bilinearly to a dense flow and warps with ``cv2.remap`` (bilinear, border replicated). Symbols are coded
as differences to the co-located vector of the previous frame, with inrcodec's integer coder.

Residual (``residual``, default ``dct``: ``mcdct``; ``pyramid``: ``mcresidual``): frame k is the warp of decoded
frame k-1 plus the decoded residual; the encoder runs that same loop on its own output (closed loop), so encoder
and decoder frames are bit-identical and errors do not drift.

Temporal quality allocation (config ``frame_steps``, session 18): each predicted frame has its own residual step,
finer early in the GOP, whose errors every later prediction inherits (``frame_step_multipliers``). The GOP is 24
frames below ``LONG_GOP_BPP`` (an intra frame is dear at low rates), else 12 (``gop_for``).

Per-block steps (config ``block_steps``, session 19): within each predicted frame, 8x8 blocks that later frames
predict from get finer steps and blocks soon covered or leaving the picture coarser ones, from weights the decoder
derives from the decoded motion alone (``blocktree``, x264's mb-tree idea; no bits).

Rate control on the real coded size: the motion bytes are spent first (the block size is the finest whose motion
takes <= ``MOTION_SHARE`` of the GOP), then ``INTRA_SHARE`` of the rest goes to the intra frame (the image codec
lands it by bisection on its real size), and the residuals get what is left: their quantisation step is searched
(bisection) on the coded size of the closed loop.

Files written before the residual (``residual`` "" in the config) are short bidirectional GOPs: each predicted
frame blends the forward warp with a backward warp from the next GOP's intra frame; they still decode.

The GOP is stored as a complete ``.inrc`` (model ``mcvideo``) with sections ``intra`` (an image ``.inrc``),
``motion`` and ``residual``. It is not continuous in time or space: ``--fps`` / ``--size`` are refused for it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass

import numpy as np

from ..container import Container, read_container, write_container
from ..entropy import decode_ints, encode_ints
from ..errors import FormatError, InputError
from . import blocktree, deblock, gaussian_dct, mcdct, mcdct2, mcmotion, mcorder, mcresidual

# residual coders of the predicted frames, by the name stored in the config (same interface: analyse(res, step),
# synthesize(symbols, step, h, w), encode_symbols(per_frame), decode_symbols(data, frames, h, w))
RESIDUALS = {mcdct.NAME: mcdct, mcdct2.NAME: mcdct2, mcresidual.NAME: mcresidual}
STEP_UNIT = 16  # the config holds the residual step as an integer number of 1/16 levels

NAME = "mcvideo"
# With the residual, measured on the shared clip at 0.05 bpp (24 frames of 640x360, intra share 0.3):
# GOP 6 31.1 dB, 12 31.8 dB, 24 31.6 dB (without a residual, bidirectional GOPs of 6 were best: 29.7 dB).
DEFAULT_GOP = 12
# GOP length by rate (session 18, 640x360, intra fits of 300 steps, bench_video_residual --codec-runs): on 24 frames
# GOP 24 / 12 gave 28.61 / 27.97 dB at 0.02 bpp, 32.67 / 32.57 at 0.05, 35.47 / 35.62 at 0.1; on 48 frames GOP
# 48 / 24 gave 28.63 / 29.21 at 0.02 and 33.16 / 33.89 at 0.05. Below LONG_GOP_BPP an intra frame is too dear.
LONG_GOP = 24
LONG_GOP_BPP = 0.07
MV_SCALE = 2  # half-pixel vectors (quarter-pixel: +0.1 dB of prediction for +20 % motion bytes on the shared clip)
MAX_MV = 512  # |vector| in half pixels (256 px)
# The intra frame's share of a residual-coded GOP's bytes after motion and headers (the residuals get the rest);
# measured at GOP 12, 0.05 bpp: 0.5 31.5 dB, 0.3 31.8 dB, 0.2 31.9 dB; another run: 0.12 31.6 dB, 0.2 32.0 dB.
INTRA_SHARE = 0.2
DEFAULT_RESIDUAL_STEP = 4  # levels, when neither a byte target nor a PSNR target is given
MAX_RESIDUAL_STEP = 512  # levels: a coarser step codes (nearly) nothing
# "dct" measured against "pyramid" on the shared clip: +4 dB on the predicted frames at equal bytes; "dct2" is the
# same coefficients coded up to each block's last non-zero band, decoded only where coded (docs/video.md)
DEFAULT_RESIDUAL = "dct2"
SEARCH_FRAMES = 4
FINAL_TRIES = 5
# the settling stops once the residual lands within [LAND_FRACTION, 1] of its budget, aiming at AIM_FRACTION
# (0.93 / 0.97 before session 18 left 1.5-3 % of the file's budget unspent)
LAND_FRACTION = 0.96
AIM_FRACTION = 0.98
RESIDUAL_SEARCH = 7  # bisection trials of the residual step (1 .. 512 levels: 9 octaves -> ~1/14 octave)
# session 21: the step search is a secant in log size / log step from the rate's expected step, stopping within
# [LAND_FRACTION, 1] of the budget (False: the bisection before it, for comparisons)
SECANT_SEARCH = True
MOTION_SHARE = 0.15  # most of a GOP's bytes the motion may take; coarser blocks are chosen until it fits
# (with the "med" motion form, 24 frames at 0.05 bpp: 0.35 / 0.15 / 0.08 -> 32.18 / 32.34 / 31.83 dB)
BLOCKS = (16, 32, 64)
# Temporal quality allocation (the principle of x264's mb-tree and HEVC's low-delay QP cascade): the error a
# predicted frame keeps is inherited by every later prediction in the GOP, a fraction PROPAGATION of it per frame,
# so predicted frame k of n weighs w_k = 1 + p + ... + p^(n-1-k); minimising the weighted error at a given rate
# (D ~ step^2, R ~ -log step) gives step_k ~ w_k^-ALLOCATION (x264's mb-tree uses w^-1/3). Measured: docs/video.md.
PROPAGATION = 0.7
ALLOCATION = 0.33
# Per-block steps from the decoded motion (config ``block_steps`` = [strength in 1/100, rho in 1/256]; blocktree.py):
# within each predicted frame, block b's step is the frame's step x (w_b / mean w)^-strength in quarter octaves,
# w_b = 1 + what later frames inherit from it along the coded vectors (a fraction rho per frame). 0: off.
# Measured on the predicted frames (bench_video_residual --block-steps, 24 frames, BD-rate of the residual bytes
# against the per-frame steps alone) on the shared clip / a 640x360 crop of it at frame 150 / the generated shapes:
# 0.33:0.7 -0.7 / -2.6 / -1.9 %, 0.5:0.7 -0.6 / -3.2 / -2.0 %, 0.2:0.7 -0.5 / -1.8 / -1.2 %, 0.33:0.5 -0.5 / -1.9 /
# -2.1 %, 0.33:0.9 -0.3 / -3.6 / +0.5 %; kept on the principle: x264's strength 1/3 and the frames' own 0.7.
# Encoder-known weights (x264's 1 - inter/intra cost, a coded 3-level map per 32 px) did not win: -0.1 / +0.4 / -0.4 %.
BLOCK_STRENGTH = 0.33
BLOCK_PROPAGATION = 0.7
# GOP structure the encoder writes (mcorder): "" the forward P chain, "hier" hierarchical B-frames. Measured on 24
# frames of the shared clip at 640x360, intra fits of 300 steps (docs/video.md, session 19): hier M = 2 / 4 / 8 vs
# the P chain at 0.02 / 0.05 / 0.1 bpp: +0.12 / +0.10 / +0.15 dB (M 2), +0.12 / -0.06 / +0.03 (M 4),
# +0.22 / -0.19 / -0.07 (M 8)
DEFAULT_STRUCTURE = "hier"
DEFAULT_MINI_GOP = 2
# Rate-constrained motion (session 20, ``mcmotion``; encoder only): lambda scale of the vector choice, 0: DIS vectors.
# 24 frames of the shared clip at 640x360, 300-step intra fits, BD-rate over 0.02 / 0.05 / 0.1 bpp against the DIS
# vectors: scale 0.3 / 1 / 3 -15.5 / -15.1 / -15.9 % (the search around DIS gains, the scale hardly matters)
MOTION_RD = 1.0
# The intra frame's image model when the caller names none (session 20; not models.default_model("image"), the image
# kind's own choice): ``gaussian+dct`` (Gaussians at 40 % of the bytes + an 8x8 DCT residual) where the intra frame
# gets at least INTRA_DCT_BPP, else ``gaussian``; with no byte target (--psnr), ``gaussian`` as before. Measured with
# 300-step intra fits, share 0.2, 24 frames at 640x360 (docs/video.md, session 20): the intra frame alone gains
# 0.5 / 2.2 / 3.0 dB at 0.08 / 0.2 / 0.4 bpp, but the whole shared clip only -0.29 / +0.04 / -0.00 / +0.17 dB at
# 0.02 / 0.05 / 0.1 / 0.2 bpp (intra frames at ~0.08 / 0.21 / 0.23 / 0.46 bpp), a crop of the full-size clip -0.07 /
# +0.19 / +0.50 / +0.64 dB: the prediction of the next frames is capped by the motion (~29 dB even from the source
# frame), so a better intra frame adds little to them, and at ~0.08 bpp its DCT detail predicts slightly worse.
# The "dct2" residual's chroma step / luma step in 1/16 that the encoder writes (GOP config ``chroma``; session 21):
# 32 (2.0) before. RGB PSNR counts chroma errors in full, and the image residual found 1.5 best (image_dct).
# Measured on the predicted frames with RDOQ (bench_video_residual.py --variants, 12 frames, BD-rate of the residual
# bytes against 2.0; shared clip / crop): 1.5 -1.4 / -2.5 %, 1.25 -1.9 / -2.3 %, 1.0 -2.1 / -2.1 %.
CHROMA = 24
CHROMA_RANGE = (8, 64)

# Session 21: the intra fits' steps when neither --steps nor --time-budget is given (video_codec caps them at 40 s
# per megapixel of the GOP). Before, the fit filled those seconds: ~615 s wall for 100 frames at 640x480 on 2 idle
# cores, whatever the load, a file that depended on the machine's speed, and RD that fell under load.
DEFAULT_STEPS = 3000

INTRA_MODEL_LOW = "gaussian"
INTRA_MODEL_HIGH = "gaussian+dct"
INTRA_DCT_BPP = 0.15


@dataclass
class MCConfig:
    frames: int
    block: int = 16
    image_model: str = "gaussian"
    bidirectional: bool = False  # blend with the backward prediction from the next GOP's intra frame
    residual: str = ""  # coder of the predicted frames' residual (RESIDUALS), "" for none
    residual_step: int = 0  # its quantisation step in 1/STEP_UNIT levels
    deblock: int = 0  # in-loop deblocking strength of the "dct2" residual's block edges (0: off; deblock.py)
    motion: str = "temporal"  # how the motion vectors are predicted before coding (MOTION_FORMS)
    # per predicted frame, its own residual step in 1/STEP_UNIT levels (temporal quality allocation); empty: every
    # frame uses ``residual_step`` (the forms before session 18)
    frame_steps: list = dataclasses.field(default_factory=list)
    # [strength in 1/100, rho in 1/blocktree.RHO_UNIT]: per-block steps derived from the motion (empty: off, the
    # forms before session 19)
    block_steps: list = dataclasses.field(default_factory=list)
    # coding order and references inside the GOP (session 19, ``mcorder``): "" the forward P chain, "hier"
    # hierarchical B-frames in mini-GOPs of ``mini_gop`` frames
    structure: str = ""
    mini_gop: int = 0
    b_block: int = 0  # the B frames' motion block ("hier")
    # the "dct2" residual's chroma step / luma step in 1/16 (session 21); 0: 2.0, the forms before it
    chroma: int = 0

    def validate(self) -> None:
        if not (isinstance(self.frames, int) and 1 <= self.frames <= 1024
                and type(self.block) is int and self.block in (8, 16, 32, 64)  # 16.0 == 16: float counts later
                and isinstance(self.image_model, str) and isinstance(self.bidirectional, bool)):
            raise FormatError("mcvideo config out of range")
        if not (isinstance(self.residual, str) and (self.residual == "" or self.residual in RESIDUALS)
                and type(self.residual_step) is int and 0 <= self.residual_step <= MAX_RESIDUAL_STEP * STEP_UNIT
                and (self.residual_step > 0) == bool(self.residual)
                and not (self.residual and self.bidirectional)
                and type(self.deblock) is int and 0 <= self.deblock <= deblock.MAX_STRENGTH
                and (self.deblock == 0 or self.residual == mcdct2.NAME)
                and isinstance(self.motion, str) and self.motion in MOTION_FORMS):
            raise FormatError("mcvideo residual config out of range")
        fs = self.frame_steps
        if not (isinstance(fs, list) and (not fs or (self.residual and len(fs) == self.frames - 1
                                                     and all(type(v) is int and 1 <= v <= MAX_RESIDUAL_STEP * STEP_UNIT
                                                             for v in fs)))):
            raise FormatError("mcvideo frame steps out of range")
        bs = self.block_steps
        if not (isinstance(bs, list) and (not bs or (self.residual == mcdct2.NAME and len(bs) == 2
                                                     and all(type(v) is int for v in bs)
                                                     and 1 <= bs[0] <= 100 and 0 <= bs[1] < blocktree.RHO_UNIT))):
            raise FormatError("mcvideo block steps out of range")
        if not (isinstance(self.structure, str) and self.structure in mcorder.STRUCTURES
                and type(self.mini_gop) is int
                and (self.mini_gop in mcorder.MINI_GOPS if self.structure else self.mini_gop == 0)
                and type(self.b_block) is int and (self.b_block in (8, 16, 32, 64) if self.structure
                                                   else self.b_block == 0)
                and (not self.structure or self.residual == mcdct2.NAME)):
            raise FormatError("mcvideo GOP structure out of range")
        if not (type(self.chroma) is int and (self.chroma == 0 or (self.residual == mcdct2.NAME
                                                                   and CHROMA_RANGE[0] <= self.chroma
                                                                   <= CHROMA_RANGE[1]))):
            raise FormatError("mcvideo chroma step out of range")

    @property
    def step(self) -> float | np.ndarray:
        """The residual step in levels: one for the GOP, or one per predicted frame."""
        if self.frame_steps:
            return np.array(self.frame_steps, np.float64) / STEP_UNIT
        return self.residual_step / STEP_UNIT

    def frame_steps_with_blocks(self, vectors: np.ndarray, h: int, w: int):
        """The step of each predicted frame as the residual coder takes it: ``step`` without ``block_steps``,
        else a list of (by, bx) integer arrays of per-block luma steps in 1/STEP_UNIT levels."""
        if not self.block_steps:
            return self.step
        units = self.frame_steps or [self.residual_step] * (self.frames - 1)
        return block_step_units(vectors, self.block, h, w, units, *self.block_steps)


def coder_for(cfg: MCConfig):
    """The residual coder of a GOP: the module named by ``residual``, or ``mcdct2.Coder`` with the GOP's chroma
    step ratio."""
    return mcdct2.Coder(cfg.chroma) if cfg.chroma else RESIDUALS[cfg.residual]


def gop_for(bpp: float | None) -> int:
    """The GOP length the encoder uses at a rate (bits per pixel of the whole file)."""
    return LONG_GOP if bpp is not None and bpp < LONG_GOP_BPP else DEFAULT_GOP


def intra_model_for(intra_bpp: float | None) -> str:
    """The image model the encoder fits to a GOP's first frame at ``intra_bpp`` (bits per pixel of that frame)."""
    return INTRA_MODEL_HIGH if intra_bpp is not None and intra_bpp >= INTRA_DCT_BPP else INTRA_MODEL_LOW


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def dense_flows(frames: np.ndarray) -> list[np.ndarray]:
    """DIS flow of each frame to the previous one: frame k ~ frame k-1 sampled at x + flow(x)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = []
    prev = _gray(frames[0])
    for k in range(1, len(frames)):
        cur = _gray(frames[k])
        flows.append(dis.calc(cur, prev, None))
        prev = cur
    return flows


def motion_fields(frames: np.ndarray, blocks) -> dict[int, np.ndarray]:
    """``block_motion`` of every block size in ``blocks``, each dense flow reduced as soon as it is computed (a
    GOP of 48 frames at 1280x720 would otherwise hold 350 MB of float32 flows)."""
    import cv2

    h, w = frames.shape[1:3]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = {b: np.zeros((len(frames) - 1, -(-h // b), -(-w // b), 2), np.int32) for b in blocks}
    prev = _gray(frames[0])
    for k in range(1, len(frames)):
        cur = _gray(frames[k])
        flow = dis.calc(cur, prev, None)
        for b in blocks:
            out[b][k - 1] = block_motion([flow], b, h, w)[0]
        prev = cur
    return out


def block_motion(flows: list[np.ndarray], block: int, h: int, w: int) -> np.ndarray:
    """(n-1, by, bx, 2) integer vectors (dx, dy) in 1/MV_SCALE pixels: the mean flow of each block."""
    by, bx = -(-h // block), -(-w // block)
    out = np.zeros((len(flows), by, bx, 2), np.int32)
    for k, flow in enumerate(flows):
        pad = np.pad(flow, ((0, by * block - h), (0, bx * block - w), (0, 0)), mode="edge")
        mean = pad.reshape(by, block, bx, block, 2).mean(axis=(1, 3))
        out[k] = np.clip(np.rint(mean * MV_SCALE), -MAX_MV, MAX_MV)
    return out


def warp(prev: np.ndarray, vectors: np.ndarray, block: int) -> np.ndarray:
    """The previous decoded frame sampled along the block field, interpolated bilinearly between block centres."""
    import cv2

    h, w = prev.shape[:2]
    by, bx = vectors.shape[:2]
    # Resizing the (by, bx) field by exactly ``block`` puts source sample i at pixel centre (i + 0.5) * block - 0.5,
    # the block's centre; the crop drops the padding of the last row/column of blocks.
    field = vectors.astype(np.float32) / MV_SCALE
    dense = cv2.resize(field, (bx * block, by * block), interpolation=cv2.INTER_LINEAR)[:h, :w]
    ys, xs = _pixel_grid(h, w)
    return cv2.remap(prev, xs + dense[..., 0], ys + dense[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ys, xs


MOTION_FORMS = ("temporal", "med")  # how vectors are predicted before coding (the config's ``motion``)
MOTION_FORM = "med"  # what the encoder writes


def _med(left: np.ndarray, top: np.ndarray, top_left: np.ndarray) -> np.ndarray:
    """LOCO-I's median predictor: median(left, top, left + top - top_left), always between left and top."""
    grad = left + top - top_left
    return np.maximum(np.minimum(left, top), np.minimum(np.maximum(left, top), grad))


def _med_prediction(v: np.ndarray) -> np.ndarray:
    """Each vector's causal prediction from its own frame's field (raster order): 0 at the first block, the left
    one along the first row, the top one down the first column, else ``_med`` of left, top and top-left."""
    p = np.zeros_like(v)
    p[:, 0, 1:] = v[:, 0, :-1]
    p[:, 1:, 0] = v[:, :-1, 0]
    p[:, 1:, 1:] = _med(v[:, 1:, :-1], v[:, :-1, 1:], v[:, :-1, :-1])
    return p


def encode_motion(vectors: np.ndarray, form: str = "med") -> bytes:
    """``temporal``: differences to the co-located vector of the previous frame (the first form); ``med``: to
    the spatial median prediction within the frame (measured on the shared clip at 640x360, 48 frames: 25 / 38 /
    51 % fewer bytes at blocks of 64 / 32 / 16: DIS vectors are smoother in space than in time)."""
    if vectors.size == 0:
        return b""
    v = vectors.astype(np.int64)
    if form == "temporal":
        deltas = np.diff(v, axis=0, prepend=np.zeros_like(v[:1]))
    else:
        deltas = v - _med_prediction(v)
    return encode_ints(deltas.ravel())


def decode_motion(data: bytes, shape: tuple[int, ...], form: str = "med") -> np.ndarray:
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, np.int32)
    deltas = decode_ints(data, int(np.prod(shape))).reshape(shape).astype(np.int64)
    if form == "temporal":
        vectors = np.cumsum(deltas, axis=0)
    else:  # causal: block by block in raster order, all frames at once (each step stays within its neighbours'
        # range plus one delta, so int64 cannot overflow before the range check below)
        vectors = np.zeros_like(deltas)
        _, by, bx, _ = shape
        for y in range(by):
            for x in range(bx):
                if y and x:
                    p = _med(vectors[:, y, x - 1], vectors[:, y - 1, x], vectors[:, y - 1, x - 1])
                elif x:
                    p = vectors[:, y, x - 1]
                elif y:
                    p = vectors[:, y - 1, x]
                else:
                    p = 0
                vectors[:, y, x] = deltas[:, y, x] + p
    if np.abs(vectors).max(initial=0) > MAX_MV:
        raise FormatError("motion vector out of range")
    return vectors.astype(np.int32)


def predict(intra: np.ndarray, vectors: np.ndarray, block: int, next_intra: np.ndarray | None = None) -> np.ndarray:
    """Decoded GOP: the intra frame, then each frame warped from the previous decoded one. With ``next_intra`` (the
    first frame of the next GOP, decoded) ``vectors`` holds one more field, the motion of that frame to the GOP's
    last one; frame j is then also predicted backwards from ``next_intra``, warping along the negated vectors of
    frame j+1 (motion is locally smooth in time, so no backward field is coded), and the two predictions are
    blended in proportion to their distances (measured on the shared clip, GOP of 4 from true intra frames, block
    32: 29.9 -> 33.3 dB over the predicted frames)."""
    frames = [intra]
    forward = vectors if next_intra is None else vectors[:-1]
    for v in forward:
        frames.append(warp(frames[-1], v, block))
    if next_intra is None:
        return np.stack(frames)
    n = len(frames)
    back = [next_intra]
    for j in range(n - 1, 0, -1):  # frame j from frame j+1, along -(vector of frame j+1 towards j)
        back.append(warp(back[-1], -vectors[j], block))
    back = back[::-1]  # back[j - 1] predicts frame j, j = 1..n-1
    out = [intra]
    for j in range(1, n):
        w_fwd = (n - j) / n
        blend = w_fwd * frames[j].astype(np.float32) + (1 - w_fwd) * back[j - 1].astype(np.float32)
        out.append(np.clip(np.rint(blend), 0, 255).astype(np.uint8))
    return np.stack(out)


def closed_loop(intra: np.ndarray, frames: np.ndarray, vectors: np.ndarray, block: int, coder, step: float,
                deblock: int = 0) -> tuple[np.ndarray, list]:
    """Encoder side of a residual-coded GOP: each frame is predicted by warping the previous *decoded* frame, its
    residual is quantised (``coder.analyse``) and added. Returns the decoded frames (exactly what ``reconstruct``
    gives from the symbols) and the residual symbols of frames 1..n-1. With ``vectors`` a ``mcorder.HierMotion``:
    hierarchical B-frames (``mcorder.closed_loop``)."""
    if isinstance(vectors, mcorder.HierMotion):
        return mcorder.closed_loop(intra, frames, vectors, coder, _per_frame(step, len(frames) - 1), deblock)
    decoded = [intra]
    symbols = []
    steps = _per_frame(step, len(frames) - 1)
    for k in range(1, len(frames)):
        pred = warp(decoded[-1], vectors[k - 1], block)
        z, res = coder.analyse(frames[k].astype(np.float32) - pred, steps[k - 1])
        decoded.append(_add(coder, pred, z, steps[k - 1], res, deblock))
        symbols.append(z)
    return np.stack(decoded), symbols


def _per_frame(step, count: int) -> list:
    """``step`` (one for all, or one per predicted frame) as a list of ``count`` floats; a list of per-block step
    arrays (``block_step_units``) is kept as it is."""
    if isinstance(step, list) and step and np.ndim(step[0]) == 2:
        if len(step) < count:
            raise ValueError(f"{len(step)} residual step maps for {count} predicted frames")
        return step[:count]
    if np.ndim(step) == 0:
        return [float(step)] * count
    if len(step) < count:
        raise ValueError(f"{len(step)} residual steps for {count} predicted frames")
    return [float(s) for s in step[:count]]


def block_step_units(vectors: np.ndarray, block: int, h: int, w: int, frame_units: list, strength_percent: int,
                     rho: int) -> list[np.ndarray]:
    """Per predicted frame, the (by, bx) luma steps in 1/STEP_UNIT levels of its 8x8 residual blocks: the frame's
    step (``frame_units``) scaled by the block's weight in the later predictions of the GOP (``blocktree``), from
    the decoded vectors only (no bits). Integer arithmetic: identical in the encoder and the decoder."""
    gy, gx = mcdct.grid(h, w)
    frames, position = _tree_frames(vectors, block, gy, gx)
    weights = blocktree.propagate(frames, gy, gx, mcdct.N, rho)
    return [blocktree.block_units(u, blocktree.step_offsets(weights[p], strength_percent))
            for u, p in zip(frame_units, position)]


def _tree_frames(vectors, block: int, gy: int, gx: int) -> tuple[list, list[int]]:
    """``blocktree``'s description of a GOP (frames in coding order, vectors on its 8-px grid) and, for each
    predicted frame in display order, its place in that list. A hierarchical GOP's B frames pass their weight to
    both references evenly: their modes are chosen in the closed loop after the anchors' steps are fixed."""
    if not isinstance(vectors, mcorder.HierMotion):
        return blocktree.p_chain(vectors, block, mcdct.N, gy, gx), list(range(1, len(vectors) + 1))
    coded = vectors.frames()
    place = {0: 0} | {f.frame: i for i, f in enumerate(coded, 1)}
    frames = [blocktree.CodedFrame(())] + [
        blocktree.CodedFrame(tuple(place[r] for r in f.refs),
                             tuple(blocktree.grid_vectors(v, f.block, mcdct.N, gy, gx) for v in f.vectors))
        for f in coded]
    return frames, [place[k] for k in range(1, vectors.n)]


def reconstruct(intra: np.ndarray, vectors: np.ndarray, block: int, coder, step: float, symbols: list,
                deblock: int = 0) -> np.ndarray:
    """Decoder side of ``closed_loop``."""
    if isinstance(vectors, mcorder.HierMotion):
        return mcorder.reconstruct(intra, vectors, coder, _per_frame(step, len(symbols)), symbols, deblock)
    decoded = [intra]
    for v, z, s in zip(vectors, symbols, _per_frame(step, len(symbols))):
        pred = warp(decoded[-1], v, block)
        decoded.append(_add(coder, pred, z, s, deblock=deblock))
    return np.stack(decoded)


def _add(coder, pred: np.ndarray, symbols, step: float, residual: np.ndarray | None = None,
         deblock: int = 0) -> np.ndarray:
    """Prediction plus decoded residual (then the in-loop deblocking): the coder's own ``add`` where it has one
    (it adds only where it codes)."""
    if hasattr(coder, "add"):
        return coder.add(pred, symbols, step, deblock)
    h, w = pred.shape[:2]
    return mcresidual.apply(pred, coder.synthesize(symbols, step, h, w) if residual is None else residual)


def _config_dict(cfg: MCConfig) -> dict:
    """The stored config: without ``frame_steps`` / ``block_steps`` / ``structure`` / ``mini_gop`` / ``b_block`` /
    ``chroma`` when empty (the forms before them, byte for byte)."""
    optional = ("frame_steps", "block_steps", "structure", "mini_gop", "b_block", "chroma")
    return {k: v for k, v in cfg.__dict__.items() if not (k in optional and not v)}


def frame_step_multipliers(count: int, allocation: float = ALLOCATION, propagation: float = PROPAGATION
                           ) -> np.ndarray:
    """Each predicted frame's step relative to the GOP's base step (geometric mean 1, so the base step codes
    about the bytes a uniform step would): w_k^-allocation, w_k the frame's weight in the later predictions."""
    if count <= 0:
        return np.ones(0)
    later = count - np.arange(count)  # the frame itself and the predicted frames after it
    w = later.astype(np.float64) if propagation >= 1 else (1 - propagation ** later) / (1 - propagation)
    m = w ** -float(allocation)
    return m / np.exp(np.mean(np.log(m)))


def frame_steps_for(base: int, multipliers: np.ndarray) -> list[int]:
    """Integer per-frame steps (1/STEP_UNIT levels) of a base step."""
    return [int(min(max(round(base * m), 1), MAX_RESIDUAL_STEP * STEP_UNIT)) for m in multipliers]


def _residual_step_for(window: np.ndarray, intra: np.ndarray, vectors: np.ndarray, block: int, coder,
                       budget: float | None, psnr: float | None, deblock: int = 0, run_steps=None
                       ) -> tuple[int, float]:
    """The residual's step (in 1/STEP_UNIT levels) whose coded residual, estimated on a prefix of the closed loop,
    about fills ``budget`` bytes, else one aimed at ``psnr``; and the exponent alpha of size ~ step^-alpha seen
    on the way (the settling's first move). ``run_steps(base)``: what the closed loop runs with at a base step
    (default: that step for every frame)."""
    unit = STEP_UNIT
    if budget is None:
        if psnr is None:
            return DEFAULT_RESIDUAL_STEP * unit, 1.0
        # a uniform quantiser of step s leaves an error of about s^2 / 12
        return int(np.clip(round(unit * 255.0 * np.sqrt(12.0) * 10 ** (-psnr / 20)), 1,
                           MAX_RESIDUAL_STEP * unit)), 1.0

    # The search runs the closed loop over the first SEARCH_FRAMES predicted frames only and scales their size
    # to the GOP (the loop's prefix is exact; later frames cost about the same): half the encoder's time at GOP 12.
    k = mcorder.prefix_frames(vectors, min(len(window) - 1, SEARCH_FRAMES))
    scale = (len(window) - 1) / max(k, 1)

    @functools.lru_cache(maxsize=None)
    def size(step: int) -> float:
        run = step / unit if run_steps is None else run_steps(step)
        _, syms = closed_loop(intra, window[:k + 1], vectors[:k], block, coder, run, deblock)
        return scale * coder.estimate_bytes(syms)

    top = MAX_RESIDUAL_STEP * unit
    if not SECANT_SEARCH:
        lo, hi = unit, top  # steps of 1 .. MAX levels
        if size(hi) > budget:
            return hi, 1.0
        for _ in range(RESIDUAL_SEARCH):  # geometric bisection on the estimated size: hi always fits
            if hi <= lo + 1:
                break
            mid = int(round(np.sqrt(lo * hi)))
            mid = min(max(mid, lo + 1), hi - 1)
            if size(mid) <= budget:
                hi = mid
            else:
                lo = mid
        return hi, 1.0
    # Session 21: a secant search in log size / log step from the step the rate predicts (mcmotion's power law),
    # stopping once the estimate lands within [LAND_FRACTION, 1] of the budget: the settling on the whole GOP's
    # real size corrects the rest, so resolving the prefix's estimate to 1/14 octave (8 bisection trials) bought
    # nothing. lo: the coarsest step known to be over the budget, hi: the finest known to fit.
    n_pred = len(window) - 1
    h, w = window.shape[1:3]
    alpha = -1.0 / mcmotion.STEP_SLOPE  # size ~ step^-alpha
    step = int(np.clip(round(unit * mcmotion.expected_step(8.0 * budget / (n_pred * h * w))), unit, top))
    lo, hi, fits, last = unit - 1, top, False, None
    for _ in range(RESIDUAL_SEARCH):
        est = size(step)
        if last is not None and est > 0 and last[1] > 0 and est != last[1] and step != last[0]:
            alpha = float(np.clip(np.log(est / last[1]) / np.log(last[0] / step), 0.3, 3.0))
        last = (step, est)
        if est <= budget:
            hi, fits = step, True
            if est >= LAND_FRACTION * budget or step <= unit:
                break
        else:
            lo = step
            if step >= top:
                return top, alpha
        if hi - lo <= 1:
            break
        nxt = step * (max(est, 1e-9) / (AIM_FRACTION * budget)) ** (1.0 / alpha)
        nxt = int(round(nxt))
        if not lo < nxt < hi:  # outside the bracket: its geometric middle
            nxt = int(round(np.sqrt(max(lo, unit) * hi)))
        step = min(max(nxt, lo + 1), hi - 1)
    if not fits and size(top) > budget:
        return top, alpha
    return hi, alpha


def _settle_step(step: int, size: int, aim: float, last: tuple[int, int] | None, alpha: float = 1.0) -> float:
    """The next residual step of the final settling on the whole GOP's real size: size ~ step^-alpha, alpha from
    the last two tries (1 before there are two), moved by 1/32 octave (at least one unit) to 1 octave. The prefix the step search ran on can
    misjudge the whole GOP by ~25 % (later frames costing more), which fixed 1/8-octave moves could not make up
    within FINAL_TRIES (a GOP landed at 79 % of its budget)."""
    if last is not None and last[0] != step and last[1] > 0 and size > 0 and last[1] != size:
        alpha = float(np.clip(np.log(size / last[1]) / np.log(last[0] / step), 0.3, 3.0))
    octaves = float(np.clip(np.log2(aim / size) / alpha, -1.0, 1.0))  # > 0: too small, go finer
    if abs(octaves) < 1 / 32:
        octaves = 1 / 32 if octaves >= 0 else -1 / 32
    # at least one step unit, so that a move always changes the step
    return min(np.floor(step / 2**octaves), step - 1) if octaves > 0 else max(np.ceil(step / 2**octaves), step + 1)


def _residual_search_seconds(window: np.ndarray, vectors: np.ndarray, block: int, coder, deblock: int) -> float:
    """Wall seconds the residual's step search will take (so that it fits inside the GOP's time budget): one
    closed-loop frame at a fine step (an upper bound on a frame's cost) timed now, under the machine's present
    load, times the frames the search runs (SEARCH_FRAMES per bisection trial, then about half of FINAL_TRIES
    whole-GOP loops plus the coding of the chosen one)."""
    t0 = time.perf_counter()
    k = mcorder.prefix_frames(vectors, 1)
    _, syms = closed_loop(window[0], window[:k + 1], vectors[:k], block, coder, DEFAULT_RESIDUAL_STEP, deblock)
    coder.estimate_bytes(syms)
    per_frame = (time.perf_counter() - t0) / k
    frames = SEARCH_FRAMES * (RESIDUAL_SEARCH + 1) + (len(window) - 1) * (FINAL_TRIES / 2 + 1)
    return per_frame * frames


def encode_gop(window: np.ndarray, target_bytes: float | None, *, psnr: float | None = None,
               time_budget: float | None = None, steps: int | None = None, seed: int = 0,
               image_model: str | None = None, block: int | None = None,
               next_frame: np.ndarray | None = None, residual: str | None = None,
               intra_share: float | None = None, motion_share: float | None = None,
               allocation: float | None = None, propagation: float | None = None,
               block_strength: float | None = None, block_propagation: float | None = None,
               structure: str | None = None, mini_gop: int | None = None,
               motion_rd: float | None = None, chroma: int | None = None, report: dict | None = None) -> bytes:
    """One GOP ((n, H, W, 3) uint8) as a complete ``.inrc`` of model ``mcvideo``.

    ``residual`` (a name in RESIDUALS, default ``DEFAULT_RESIDUAL``; "" for none): forward prediction with a
    coded residual per predicted frame; the GOP's bytes go to
    motion first, then ``intra_share`` of the rest to the intra frame, and the residuals get what the intra frame
    left (on the real coded sizes); ``allocation`` (default ``ALLOCATION``, 0: one step for all, the form before
    session 18) and ``propagation`` shape the per-frame steps (``frame_step_multipliers``); ``block_strength``
    (default ``BLOCK_STRENGTH``; 0: off) and ``block_propagation`` the per-block steps (``block_step_units``);
    ``structure`` (default ``DEFAULT_STRUCTURE``; "hier", with the residual ``dct2``, codes hierarchical B-frames
    in mini-GOPs of ``mini_gop``: ``mcorder``; "" the forward P chain). Without a residual, ``next_frame`` (the
    first frame of the next GOP) makes the GOP bidirectional: the motion of that frame to this GOP's last one is
    coded too, and no residual is coded. ``motion_rd`` (default ``MOTION_RD``; 0: the DIS vectors as they are)
    scales the lambda of the rate-constrained motion choice (``mcmotion``; with a residual and a byte target).
    ``chroma`` (default ``CHROMA``; 0: the form before session 21, 2.0) the "dct2" residual's chroma step / luma step
    in 1/16. ``report`` (a dict) receives the intra fit's ``fit_steps``."""
    from ..codec import compress, decompress
    from ..signal import Signal

    started = time.perf_counter()
    n, h, w = window.shape[:3]
    chosen_model = image_model  # None: by the intra frame's rate (intra_model_for), once its share is known
    image_model = image_model or INTRA_MODEL_HIGH  # the longer name while the header is measured: never under it
    residual = (DEFAULT_RESIDUAL if residual is None else residual) if n > 1 else ""
    if residual and residual not in RESIDUALS:
        raise InputError(f"unknown mcvideo residual {residual!r}; choose {', '.join(RESIDUALS)} or ''")
    bidirectional = next_frame is not None and n > 1 and not residual
    share = INTRA_SHARE if intra_share is None else float(intra_share)
    if not 0.05 <= share <= 1.0:
        raise InputError(f"intra_share must be in [0.05, 1], got {share}")
    structure = (DEFAULT_STRUCTURE if structure is None else structure) if residual == mcdct2.NAME and n > 2 else ""
    mini_gop = (mini_gop or DEFAULT_MINI_GOP) if structure else 0
    if structure not in mcorder.STRUCTURES or (structure and mini_gop not in mcorder.MINI_GOPS):
        raise InputError(f"unknown mcvideo structure {structure!r} / mini-GOP {mini_gop}: "
                         f"choose {mcorder.NAME!r} with a mini-GOP in {mcorder.MINI_GOPS}, or ''")
    sizes = [block] if block else list(BLOCKS)
    if structure:
        fields = mcorder.motion_fields(window, mini_gop, sizes)
    else:
        fields = motion_fields(np.concatenate([window, next_frame[None]]) if bidirectional else window, sizes)
    rd_scale = (MOTION_RD if motion_rd is None else float(motion_rd)) if residual and target_bytes else 0.0
    for block in sizes:  # coarser blocks until the motion is a minor share of the bytes
        if structure:
            vectors = mcorder.hier_motion(fields, n, mini_gop, block, mcorder.b_block_for(block))
        else:
            vectors = fields[block]
        motion = mcorder.encode_motion(vectors) if structure else encode_motion(vectors, MOTION_FORM)
        cap = None if target_bytes is None else (motion_share or MOTION_SHARE) * target_bytes
        # session 20: each vector chosen on prediction error + lambda x its bits (not where even that cannot fit)
        if rd_scale and (len(motion) <= mcmotion.REACH * cap or block == sizes[-1]):
            vectors = mcmotion.refine_motion(window, vectors, block, _expected_steps(
                target_bytes, intra_share, n, h, w, mini_gop if structure else 0, allocation, propagation), rd_scale)
            motion = mcorder.encode_motion(vectors) if structure else encode_motion(vectors, MOTION_FORM)
        if cap is None or len(motion) <= cap:
            break
    # the largest step the config may hold, so that the measured header is not below the real one
    allocation = (ALLOCATION if allocation is None else float(allocation)) if residual else 0.0
    top = MAX_RESIDUAL_STEP * STEP_UNIT
    if chroma and not CHROMA_RANGE[0] <= chroma <= CHROMA_RANGE[1]:
        raise InputError(f"mcvideo chroma must be 0 or in {list(CHROMA_RANGE)} (1/16 of the luma step), got {chroma}")
    cfg = MCConfig(n, block, image_model, bidirectional, residual, top if residual else 0,
                   deblock.DEFAULT_STRENGTH if residual == mcdct2.NAME else 0, MOTION_FORM,
                   # varied stand-ins: the header is deflated, and identical values would compress below real ones
                   [top - (i * 7919) % (top // 2) for i in range(n - 1)] if allocation else [],
                   structure=structure, mini_gop=mini_gop, b_block=vectors.b_block if structure else 0,
                   chroma=(CHROMA if chroma is None else int(chroma)) if residual == mcdct2.NAME else 0)
    block_strength = (BLOCK_STRENGTH if block_strength is None else float(block_strength)
                      ) if residual == mcdct2.NAME else 0.0
    if block_strength:
        rho = BLOCK_PROPAGATION if block_propagation is None else float(block_propagation)
        cfg.block_steps = [int(np.clip(round(100 * block_strength), 1, 100)),
                           int(np.clip(round(blocktree.RHO_UNIT * rho), 0, blocktree.RHO_UNIT - 1))]
    desc = {"kind": "video", "shape": [n, h, w, 3], "dtype": "uint8", "range": [0.0, 255.0], "meta": {}}
    sections = {"intra": b"", "motion": motion}
    if residual:
        sections["residual"] = b""
    overhead = len(write_container(Container(desc, NAME, _config_dict(cfg), sections)))
    intra_bpp = None
    if target_bytes is not None:
        intra_bytes = (target_bytes - overhead) * (share if residual else 1.0)
        if intra_bytes < 64:
            raise InputError(f"{target_bytes:.0f} bytes per GOP leave nothing for the intra frame after "
                             f"{overhead} bytes of motion and headers: raise the rate")
        intra_bpp = 8.0 * intra_bytes / (h * w)
    intra_time = time_budget
    if residual and time_budget is not None:  # the intra frame gets what the motion and the residual search leave
        intra_time = max(0.3 * time_budget, time_budget - (time.perf_counter() - started)
                         - _residual_search_seconds(window, vectors, block, coder_for(cfg), cfg.deblock))
    cfg.image_model = image_model = chosen_model or intra_model_for(intra_bpp)
    frame0 = Signal(np.ascontiguousarray(window[0]), kind="image", value_range=(0.0, 255.0))
    with gaussian_dct.mse_base():  # the residual-priced base is not measured on intra frames
        r = compress(frame0, image_model, bpp=intra_bpp, psnr=psnr, time_budget=intra_time, steps=steps, seed=seed)
    if report is not None:
        report["fit_steps"] = r.report.get("fit_steps")
    sections["intra"] = r.data
    if residual:
        intra = decompress(r.data).data
        budget = None if target_bytes is None else target_bytes - overhead - len(r.data) - 8  # length fields
        coder = mcorder.WithModes(coder_for(cfg)) if structure else coder_for(cfg)
        p = PROPAGATION if propagation is None else float(propagation)
        mult = (mcorder.frame_step_multipliers(n, mini_gop, allocation, p) if structure
                else frame_step_multipliers(n - 1, allocation, p))

        def steps_of(base: int):  # (what the config stores, what the closed loop runs with)
            ints = frame_steps_for(base, mult) if allocation else []
            if cfg.block_steps:
                return ints, block_step_units(vectors, block, h, w, ints or [base] * (n - 1), *cfg.block_steps)
            if not allocation:
                return [], base / STEP_UNIT
            return ints, np.array(ints, np.float64) / STEP_UNIT

        # the search runs a uniform step on a prefix: with multipliers of geometric mean 1 it codes about the bytes
        # of the whole GOP at that base step (the settling below corrects the rest on the real size)
        cfg.residual_step, alpha = _residual_step_for(window, intra, vectors, block, coder, budget, psnr,
                                                      cfg.deblock, (lambda b: steps_of(b)[1]) if cfg.block_steps
                                                      else None)
        # The search ran on estimated sizes of a prefix: settle on the real size of the whole GOP, moving the step
        # by 1/8 octave (coarser while over the budget, finer while well under it), a few full loops at most.
        # Once a step over the budget and one under it are known, later tries stay strictly between them (a
        # first move past the budget used to end the settling: a GOP of 24 frames landed at 77 % of its share).
        step, best, last, over = cfg.residual_step, None, None, None
        for _ in range(FINAL_TRIES):
            _, syms = closed_loop(intra, window, vectors, block, coder, steps_of(step)[1], cfg.deblock)
            blob = coder.encode_symbols(syms)
            if budget is None:
                best = (step, blob)
                break
            if len(blob) <= budget:
                if best is None or len(blob) > len(best[1]):
                    best = (step, blob)
                if len(blob) >= LAND_FRACTION * budget or step <= STEP_UNIT:
                    break
            else:
                over = step if over is None else max(over, step)
                if step >= top:
                    break
            step, last = _settle_step(step, len(blob), AIM_FRACTION * budget, last, alpha), (step, len(blob))
            if over is not None and best is not None:  # over < best[0]: the steps in between are untried
                if best[0] - over <= 1:
                    break
                if not over < step < best[0]:
                    step = int(round(np.sqrt(over * best[0])))
                step = min(max(step, over + 1), best[0] - 1)
            step = int(min(max(step, STEP_UNIT), top))
        if best is None:  # still over after the tries: the coarsest step (codes nearly nothing)
            _, syms = closed_loop(intra, window, vectors, block, coder, steps_of(top)[1], cfg.deblock)
            best = (top, coder.encode_symbols(syms))
        cfg.residual_step, sections["residual"] = best
        cfg.frame_steps = steps_of(cfg.residual_step)[0]
    return write_container(Container(desc, NAME, _config_dict(cfg), sections))


def _expected_steps(target_bytes: float, intra_share, n: int, h: int, w: int, mini_gop: int, allocation,
                    propagation) -> np.ndarray:
    """Each predicted frame's expected luma residual step (levels), before the intra frame and the step search:
    ``mcmotion.expected_step`` of the bits per predicted pixel the residuals will about get, times the frame's
    multiplier (as ``encode_gop`` sets them)."""
    share = INTRA_SHARE if intra_share is None else float(intra_share)
    res_bpp = 8.0 * target_bytes * (1 - share) * (1 - MOTION_SHARE) / (max(n - 1, 1) * h * w)
    a = ALLOCATION if allocation is None else float(allocation)
    p = PROPAGATION if propagation is None else float(propagation)
    mult = (mcorder.frame_step_multipliers(n, mini_gop, a, p) if mini_gop else frame_step_multipliers(n - 1, a, p))
    return mcmotion.expected_step(res_bpp) * mult


def _intra(c: Container, cache: dict | None) -> np.ndarray:
    from ..codec import decompress

    blob = c.sections["intra"]
    if cache is not None and blob in cache:
        return cache[blob]
    if list(read_container(blob).signal["shape"]) != list(c.signal["shape"][1:]):  # before rendering it
        raise FormatError("mcvideo intra frame has another size than its GOP")
    intra = decompress(blob).data
    if cache is not None:
        cache.clear()  # only the latest intra frame is needed again (by the next GOP)
        cache[blob] = intra
    return intra


def _parse(data: bytes) -> tuple[Container, MCConfig]:
    c = read_container(data)
    if c.model != NAME:
        raise FormatError(f"GOP is not an {NAME} GOP (model {c.model!r})")
    fields = set(MCConfig.__dataclass_fields__)
    if set(c.config) - fields:
        raise FormatError(f"unknown mcvideo config keys {sorted(set(c.config) - fields)}")
    try:
        cfg = MCConfig(**c.config)
    except TypeError as exc:
        raise FormatError(f"invalid mcvideo config: {exc}") from None
    cfg.validate()
    shape = c.signal["shape"]
    if len(shape) != 4 or shape[3] != 3 or c.signal["dtype"] != "uint8":
        raise FormatError(f"mcvideo GOP of shape {shape} {c.signal['dtype']}: expected (frames, H, W, 3) uint8")
    n = shape[0]
    if n != cfg.frames or "intra" not in c.sections or "motion" not in c.sections:
        raise FormatError("mcvideo GOP is missing sections or has an inconsistent frame count")
    if bool(cfg.residual) != ("residual" in c.sections):
        raise FormatError("mcvideo GOP's residual section does not match its config")
    return c, cfg


def decode_gop(data: bytes, next_gop: bytes | None = None, cache: dict | None = None) -> np.ndarray:
    """Frames of a GOP; ``next_gop`` (the next part's bytes) gives a bidirectional GOP its backward prediction
    (the last GOP of a clip, or a GOP whose next part is missing, is predicted forwards only)."""
    c, cfg = _parse(data)
    n, h, w = c.signal["shape"][:3]
    intra = _intra(c, cache)
    if intra.shape != (h, w, 3) or intra.dtype != np.uint8:
        raise FormatError(f"intra frame decodes to {intra.shape} {intra.dtype}, expected {(h, w, 3)} uint8")
    by, bx = -(-h // cfg.block), -(-w // cfg.block)
    if cfg.structure:  # hierarchical B-frames: motion of both directions, modes in front of the residual
        vectors = mcorder.decode_motion(c.sections["motion"], n, cfg.mini_gop, cfg.block, cfg.b_block, h, w)
        coder = coder_for(cfg)
        symbols = mcorder.WithModes(coder).decode_symbols(c.sections["residual"], n - 1, h, w, vectors)
        return reconstruct(intra, vectors, cfg.block, coder, cfg.frame_steps_with_blocks(vectors, h, w), symbols,
                           cfg.deblock)
    fields = n if cfg.bidirectional and n > 1 else n - 1
    vectors = decode_motion(c.sections["motion"], (fields, by, bx, 2), cfg.motion)
    if cfg.residual:
        coder = coder_for(cfg)
        symbols = coder.decode_symbols(c.sections["residual"], n - 1, h, w)
        return reconstruct(intra, vectors, cfg.block, coder, cfg.frame_steps_with_blocks(vectors, h, w), symbols,
                           cfg.deblock)
    next_intra = None
    if fields == n and next_gop is None:
        vectors = vectors[:-1]  # no next GOP (a file cut after this part): forward prediction only
    if fields == n and next_gop is not None:
        nc, _ = _parse(next_gop)
        if list(nc.signal["shape"][1:]) != [h, w, 3]:
            raise FormatError("next GOP has another frame size")
        next_intra = _intra(nc, cache)
    return predict(intra, vectors, cfg.block, next_intra)
