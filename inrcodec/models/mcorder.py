"""Hierarchical bidirectional prediction inside an ``mcvideo`` GOP (config ``structure: "hier"``, ``mini_gop`` M).

Coding order and reference graph (``coding_order``), HEVC's random-access pattern inside one GOP: frame 0 is the
intra frame; every M-th frame, and the GOP's last frame, is an *anchor* P-coded from the previous anchor; the frames
between two anchors are B-frames coded in hierarchical order (the midpoint from the two anchors, then the quarter
points from their nearest decoded neighbours, ...). No frame refers outside its GOP, so GOPs stay independent
(random access, parallel decode).

B-frame prediction: per motion block a mode (``FORWARD``, ``BACKWARD`` or ``BI``, the rounded average of both
warps), chosen by the encoder on the real prediction error of the block plus lambda x its estimated bits. Each B
frame has two coded block fields (DIS flow to each reference). The modes are entropy-coded per context, the context
being how well the two vectors of the block agree (a block moving smoothly in time has a backward vector close to
the negated, distance-scaled forward one: there the average is nearly always best; where they disagree, an
occlusion or a failed flow, one side usually wins). The context comes from the motion alone, so the decoder reads
every mode before predicting any frame.

Temporal quality allocation (``frame_step_multipliers``): a frame's weight is 1 plus p times the weights of the
frames that predict from it (each B-frame gives half of its weight to each reference), so the anchors (on which
everything rests) get finer steps and the last level of B-frames (referenced by nothing) the coarsest, the
principle of HEVC's hierarchical QP offsets and of x264's ``b_pyramid`` with mb-tree.

``CodedFrame`` (``frames_of``) is the one small description, per coded frame, of its references and its per-block
vectors and modes, for both structures (the P chain as well): per-block tools (steps, weights) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..errors import FormatError

NAME = "hier"
STRUCTURES = ("", NAME)  # "" : the forward P chain (files before session 19)
MINI_GOPS = (2, 4, 8)
FORWARD, BACKWARD, BI = 0, 1, 2
# Mode decision: SSE of the block's prediction (RGB, levels^2) + MODE_LAMBDA x luma step^2 x estimated bits.
# (~ the slope dD/dR of a uniform quantiser, 2 ln2 x step^2 / 12 per value, over three channels)
MODE_LAMBDA = 0.35
MODE_BITS = np.array([2.0, 2.0, 0.5])  # FORWARD, BACKWARD, BI: the average is the usual choice
# B frames' motion blocks are B_BLOCK_SCALE x the anchors' (at most 64): a B frame codes two fields, and its
# bi-prediction averages out some of a coarser field's error (measured: docs/video.md)
B_BLOCK_SCALE = 2
CONTEXT_EDGES = (1, 4)  # |backward + scaled forward| (L1, half pels): <= 1, <= 4, more -> contexts 0, 1, 2


@dataclass(frozen=True)
class FrameRefs:
    frame: int  # display index in the GOP
    refs: tuple  # (forward,) for a P frame, (forward, backward) for a B frame
    depth: int  # 0 for anchors, 1 for the midpoints between anchors, ...

    @property
    def is_b(self) -> bool:
        return len(self.refs) == 2


def coding_order(n: int, mini_gop: int) -> list[FrameRefs]:
    """The predicted frames 1..n-1 of a GOP of ``n`` in coding order with their references."""
    anchors = list(range(0, n, mini_gop))
    if anchors[-1] != n - 1:
        anchors.append(n - 1)
    out: list[FrameRefs] = []

    def between(a: int, b: int, depth: int) -> None:
        if b - a < 2:
            return
        m = (a + b) // 2
        out.append(FrameRefs(m, (a, b), depth))
        between(a, m, depth + 1)
        between(m, b, depth + 1)

    for a, b in zip(anchors, anchors[1:]):
        out.append(FrameRefs(b, (a,), 0))
        between(a, b, 1)
    return out


def b_count(n: int, mini_gop: int) -> int:
    return sum(f.is_b for f in coding_order(n, mini_gop))


def field_count(n: int, mini_gop: int) -> int:
    """Block fields in the motion section: one per predicted frame, plus the backward one of each B frame."""
    return max(n - 1, 0) + b_count(n, mini_gop)


def b_block_for(block: int) -> int:
    """The B frames' motion block for the anchors' ``block`` (what the encoder writes: B_BLOCK_SCALE x, <= 64)."""
    return min(block * B_BLOCK_SCALE, 64)


@dataclass
class CodedFrame:
    """One predicted frame as coded: its references (display indices), one (by, bx, 2) block field per reference
    (vectors in 1/MV_SCALE pixels: the frame ~ the reference sampled at x + v), and for a B frame its (by, bx)
    modes (FORWARD / BACKWARD / BI; None for a P frame, which is FORWARD everywhere)."""

    frame: int
    refs: tuple
    vectors: tuple
    block: int
    modes: np.ndarray | None = None


@dataclass
class HierMotion:
    """The motion of a hierarchical GOP: the anchors' fields (blocks of ``block``) in coding order, the forward and
    backward fields of its B frames (blocks of ``b_block``) in coding order, and (once the closed loop chose them,
    or decoded) the B frames' modes (per ``b_block`` block)."""

    n: int
    mini_gop: int
    block: int
    b_block: int
    anchors: np.ndarray  # (P, by, bx, 2)
    forward: np.ndarray  # (B, by', bx', 2)
    backward: np.ndarray  # (B, by', bx', 2)
    modes: np.ndarray | None = None  # (B, by', bx') int

    @property
    def plan(self) -> list[FrameRefs]:
        return coding_order(self.n, self.mini_gop)

    def __len__(self) -> int:
        return self.n - 1

    def prefix_frames(self, k: int) -> int:
        """The smallest prefix of >= k predicted frames that is a GOP of its own (whole mini-GOPs)."""
        return min(self.n - 1, -(-k // self.mini_gop) * self.mini_gop)

    def __getitem__(self, s: slice) -> HierMotion:
        """``motion[:k]``: the motion of frames 0..k, k a ``prefix_frames`` value (its plan is the full plan's)."""
        k = s.stop
        if not (isinstance(s, slice) and s.start is None and s.step is None and k == self.prefix_frames(k)):
            raise ValueError(f"no hierarchical prefix of {k} frames")
        plan = self.plan  # the prefix's frames come first in each kind's coding order
        keep_p = sum(1 for f in plan if not f.is_b and f.frame <= k)
        keep_b = sum(1 for f in plan if f.is_b and f.frame < k)
        return HierMotion(k + 1, self.mini_gop, self.block, self.b_block, self.anchors[:keep_p],
                          self.forward[:keep_b], self.backward[:keep_b],
                          None if self.modes is None else self.modes[:keep_b])

    def frames(self) -> list[CodedFrame]:
        out, p, b = [], 0, 0
        for f in self.plan:
            if f.is_b:
                modes = None if self.modes is None else self.modes[b]
                out.append(CodedFrame(f.frame, f.refs, (self.forward[b], self.backward[b]), self.b_block, modes))
                b += 1
            else:
                out.append(CodedFrame(f.frame, f.refs, (self.anchors[p],), self.block))
                p += 1
        return out


def prefix_frames(vectors, k: int) -> int:
    """A prefix of >= k predicted frames the closed loop can run alone (the P chain: exactly k)."""
    return vectors.prefix_frames(k) if isinstance(vectors, HierMotion) else k


def frames_of(vectors, block: int) -> list[CodedFrame]:
    """Every predicted frame of a GOP, in coding order, with its references, vectors and modes (both structures)."""
    if isinstance(vectors, HierMotion):
        return vectors.frames()
    return [CodedFrame(k + 1, (k,), (v,), block) for k, v in enumerate(vectors)]


# -- motion: estimation and coding ----------------------------------------------------------------------------------

def motion_fields(window: np.ndarray, mini_gop: int, blocks) -> dict[tuple[str, int], np.ndarray]:
    """DIS flow of each predicted frame to each of its references (open loop, on the source frames), reduced at
    once to the block fields of every size in ``blocks``: keys ("P", b) anchors, ("F", b) / ("B", b) the B frames'
    forward / backward fields, each in coding order (``hier_motion`` picks one HierMotion out of them)."""
    import cv2

    from .mcvideo import _gray, block_motion

    n, h, w = window.shape[:3]
    plan = coding_order(n, mini_gop)
    nb = sum(f.is_b for f in plan)
    blocks = sorted(set(blocks) | {b_block_for(b) for b in blocks})
    out = {}
    for b in blocks:
        grid = (-(-h // b), -(-w // b), 2)
        out["P", b] = np.zeros((n - 1 - nb,) + grid, np.int32)
        out["F", b] = np.zeros((nb,) + grid, np.int32)
        out["B", b] = np.zeros((nb,) + grid, np.int32)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [_gray(f) for f in window]
    p = j = 0
    for f in plan:
        for r, ref in enumerate(f.refs):
            flow = dis.calc(gray[f.frame], gray[ref], None)
            kind, i = ("P", p) if not f.is_b else (("F", "B")[r], j)
            for b in blocks:
                out[kind, b][i] = block_motion([flow], b, h, w)[0]
        p += not f.is_b
        j += f.is_b
    return out


def hier_motion(fields: dict, n: int, mini_gop: int, block: int, b_block: int) -> HierMotion:
    return HierMotion(n, mini_gop, block, b_block, fields["P", block], fields["F", b_block], fields["B", b_block])


def _b_distances(n: int, mini_gop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each B frame (coding order): its index among the predicted frames, its distance to each reference."""
    plan = coding_order(n, mini_gop)
    idx = [i for i, f in enumerate(plan) if f.is_b]
    df = np.array([plan[i].frame - plan[i].refs[0] for i in idx], np.int64)
    db = np.array([plan[i].refs[1] - plan[i].frame for i in idx], np.int64)
    return np.array(idx, np.int64), df, db


def _backward_prediction(forward: np.ndarray, n: int, mini_gop: int) -> np.ndarray:
    """Each B frame's backward field predicted as its forward one negated and scaled by the distances (constant
    velocity): v_b ~ -v_f x d_b / d_f, rounded half away from zero (integer arithmetic: exact everywhere)."""
    idx, df, db = _b_distances(n, mini_gop)
    if len(idx) == 0:
        return np.zeros((0,) + forward.shape[1:], np.int64)
    num = -forward.astype(np.int64) * db[:, None, None, None]
    d = df[:, None, None, None]
    return np.sign(num) * ((np.abs(num) * 2 + d) // (2 * d))


def encode_motion(motion: HierMotion) -> bytes:
    """Forward fields, then backward fields, each by the P chain's spatial median prediction. (Coding a backward
    field as its difference to the negated, distance-scaled forward one took 1.2-2.2x the bytes on the shared
    clip, 24 frames at 640x360: two DIS fields of different frame pairs differ by more than one field's spatial
    median residual.)"""
    from .mcvideo import encode_motion as encode_fields

    anchors = encode_fields(motion.anchors, "med")
    forward = encode_fields(motion.forward, "med")
    return varint(len(anchors)) + anchors + varint(len(forward)) + forward + encode_fields(motion.backward, "med")


def decode_motion(data: bytes, n: int, mini_gop: int, block: int, b_block: int, h: int, w: int) -> HierMotion:
    from .mcvideo import decode_motion as decode_fields

    nb = b_count(n, mini_gop)
    pos, blobs = 0, []
    for _ in range(2):
        size, pos = read_varint(data, pos, "motion section is truncated or has a bad length", 5)
        if pos + size > len(data):
            raise FormatError("motion section is truncated")
        blobs.append(data[pos:pos + size])
        pos += size
    blobs.append(data[pos:])
    fields = []
    for blob, count, b in zip(blobs, (n - 1 - nb, nb, nb), (block, b_block, b_block)):
        if count == 0 and blob:
            raise FormatError("motion section has trailing bytes")
        fields.append(decode_fields(blob, (count, -(-h // b), -(-w // b), 2), "med"))
    return HierMotion(n, mini_gop, block, b_block, *fields)


# -- modes ----------------------------------------------------------------------------------------------------------

def mode_contexts(motion: HierMotion) -> np.ndarray:
    """(B, by, bx) context of each B block's mode: how far its backward vector is from the scaled negated forward
    one (0: they agree within a half pel, 1: within 4 half pels, 2: more)."""
    if len(motion.backward) == 0:
        return np.zeros(motion.backward.shape[:3], np.int64)
    pred = _backward_prediction(motion.forward, motion.n, motion.mini_gop)
    gap = np.abs(motion.backward.astype(np.int64) - pred).sum(axis=-1)
    return np.searchsorted(np.array(CONTEXT_EDGES), gap, side="left")


def encode_modes(modes: np.ndarray, motion: HierMotion) -> bytes:
    ctx = mode_contexts(motion)
    out = bytearray()
    for c in range(len(CONTEXT_EDGES) + 1):
        blob = encode_ints(modes[ctx == c].astype(np.int64))
        out += varint(len(blob)) + blob
    return bytes(out)


def decode_modes(data: bytes, motion: HierMotion) -> tuple[np.ndarray, int]:
    """The B frames' modes and the bytes they took at the start of ``data``."""
    ctx = mode_contexts(motion)
    modes = np.zeros(ctx.shape, np.int8)
    pos = 0
    for c in range(len(CONTEXT_EDGES) + 1):
        size, pos = read_varint(data, pos, "mode stream is truncated or has a bad length", 5)
        if pos + size > len(data):
            raise FormatError("mode stream is truncated")
        mask = ctx == c
        vals = decode_ints(data[pos:pos + size], int(mask.sum()))
        if vals.size and (vals.min() < 0 or vals.max() > BI):
            raise FormatError("B-frame block mode out of range")
        modes[mask] = vals
        pos += size
    return modes, pos


class LoopSymbols(list):
    """The residual symbols of a hierarchical closed loop (display order, frames 1..n-1) with the motion and the
    modes it chose, so that the coder wrapper below codes both."""

    motion: HierMotion


class WithModes:
    """A residual coder whose section also carries the B frames' modes in front (so that the encoder's budget on
    the residual section counts them); everything else is the wrapped coder's."""

    def __init__(self, coder):
        self.coder = coder

    def __getattr__(self, name):
        return getattr(self.coder, name)

    def encode_symbols(self, syms: LoopSymbols) -> bytes:
        modes = encode_modes(syms.motion.modes, syms.motion)
        return varint(len(modes)) + modes + self.coder.encode_symbols(list(syms))

    def estimate_bytes(self, syms: LoopSymbols) -> float:
        return len(encode_modes(syms.motion.modes, syms.motion)) + 2 + self.coder.estimate_bytes(list(syms))

    def decode_symbols(self, data: bytes, frames: int, h: int, w: int, motion: HierMotion) -> list:
        size, pos = read_varint(data, 0, "residual section is truncated or has a bad length", 5)
        if pos + size > len(data):
            raise FormatError("residual section is truncated")
        motion.modes, used = decode_modes(data[pos:pos + size], motion)
        if used != size:
            raise FormatError("mode stream has trailing bytes")
        return self.coder.decode_symbols(data[pos + size:], frames, h, w)


# -- prediction and the closed loop ---------------------------------------------------------------------------------

def _block_sums(err: np.ndarray, block: int, by: int, bx: int) -> np.ndarray:
    h, w = err.shape[:2]
    pad = np.pad(err, ((0, by * block - h), (0, bx * block - w)))
    return pad.reshape(by, block, bx, block).sum(axis=(1, 3))


def choose_modes(source: np.ndarray, fwd: np.ndarray, bwd: np.ndarray, avg: np.ndarray, block: int,
                 luma_step: float) -> np.ndarray:
    """Per block, the mode of least prediction SSE + MODE_LAMBDA x step^2 x its estimated bits."""
    by, bx = -(-source.shape[0] // block), -(-source.shape[1] // block)
    src = source.astype(np.float32)
    cost = np.stack([_block_sums(((src - p.astype(np.float32)) ** 2).sum(axis=-1), block, by, bx)
                     for p in (fwd, bwd, avg)])
    cost += (MODE_LAMBDA * luma_step ** 2 * MODE_BITS)[:, None, None]
    return np.argmin(cost, axis=0).astype(np.int8)


def _average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a + b + 1) >> 1 per uint8 value, without widening: (a | b) - ((a ^ b) >> 1) (0.4 ms at 640x480)."""
    return (a | b) - ((a ^ b) >> 1)


def blend(fwd: np.ndarray, bwd: np.ndarray, avg: np.ndarray, modes: np.ndarray, block: int) -> np.ndarray:
    """The B frame's prediction: ``avg`` (written in place) with the one-sided blocks copied in. A loop over those
    blocks (a minority) instead of a per-pixel select: 8 ms -> well under 1 ms per frame at 640x480."""
    out = avg
    for y, x in zip(*np.nonzero(modes != BI)):
        src = fwd if modes[y, x] == FORWARD else bwd
        out[y * block:(y + 1) * block, x * block:(x + 1) * block] = src[y * block:(y + 1) * block,
                                                                        x * block:(x + 1) * block]
    return out


def _b_predictions(decoded: list, f: CodedFrame):
    from .mcvideo import warp

    fwd = warp(decoded[f.refs[0]], f.vectors[0], f.block)
    bwd = warp(decoded[f.refs[1]], f.vectors[1], f.block)
    return fwd, bwd, _average(fwd, bwd)


def _luma_step(step) -> float:
    """The luma step in levels that prices a mode's bits: the frame's step, or the mean of its per-block steps (in
    1/16 levels)."""
    from .mcdct import step_units

    return float(np.mean(step)) / 16.0 if np.ndim(step) == 2 else float(step_units(step)[0]) / 16.0


def closed_loop(intra: np.ndarray, frames: np.ndarray, motion: HierMotion, coder, steps: list[float],
                deblock: int) -> tuple[np.ndarray, LoopSymbols]:
    """Encoder side: each predicted frame in coding order from its decoded references (B frames: the modes chosen
    here on the source), its residual quantised and added; ``steps`` per predicted frame in display order."""
    from .mcvideo import _add, warp

    n = len(frames)
    decoded: list = [intra] + [None] * (n - 1)
    syms = LoopSymbols([None] * (n - 1))
    modes = []
    for f in motion.frames():
        k, s = f.frame, steps[f.frame - 1]
        if len(f.refs) == 1:
            pred = warp(decoded[f.refs[0]], f.vectors[0], f.block)
        else:
            fwd, bwd, avg = _b_predictions(decoded, f)
            m = choose_modes(frames[k], fwd, bwd, avg, f.block, _luma_step(s))
            modes.append(m)
            pred = blend(fwd, bwd, avg, m, f.block)
        z, res = coder.analyse(frames[k].astype(np.float32) - pred, s)
        decoded[k] = _add(coder, pred, z, s, res, deblock)
        syms[k - 1] = z
    motion.modes = np.stack(modes) if modes else np.zeros(motion.backward.shape[:3], np.int8)
    syms.motion = motion
    return np.stack(decoded), syms


def reconstruct(intra: np.ndarray, motion: HierMotion, coder, steps: list[float], symbols: list,
                deblock: int) -> np.ndarray:
    """Decoder side of ``closed_loop`` (the modes are the decoded ones in ``motion``)."""
    from .mcvideo import _add, warp

    decoded: list = [intra] + [None] * motion.n
    decoded = decoded[:motion.n]
    for f in motion.frames():
        s = steps[f.frame - 1]
        if len(f.refs) == 1:
            pred = warp(decoded[f.refs[0]], f.vectors[0], f.block)
        else:
            fwd, bwd, avg = _b_predictions(decoded, f)
            pred = blend(fwd, bwd, avg, f.modes, f.block)
        decoded[f.frame] = _add(coder, pred, symbols[f.frame - 1], s, deblock=deblock)
    return np.stack(decoded)


# -- temporal quality allocation ------------------------------------------------------------------------------------

def frame_weights(n: int, mini_gop: int, propagation: float) -> np.ndarray:
    """Weight of each predicted frame (display order, frames 1..n-1): 1 + p x the weights of the frames predicted
    from it, a B frame passing half of its weight to each of its two references (reverse coding order)."""
    w = np.ones(n)
    for f in reversed(coding_order(n, mini_gop)):
        for r in f.refs:
            w[r] += propagation * w[f.frame] / len(f.refs)
    return w[1:]


def frame_step_multipliers(n: int, mini_gop: int, allocation: float, propagation: float) -> np.ndarray:
    """Per predicted frame (display order), its step relative to the GOP's base step: w^-allocation, geometric
    mean 1 (as ``mcvideo.frame_step_multipliers`` for the P chain, whose weights these reproduce for M = 1)."""
    if n <= 1:
        return np.ones(0)
    m = frame_weights(n, mini_gop, propagation) ** -float(allocation)
    return m / np.exp(np.mean(np.log(m)))
