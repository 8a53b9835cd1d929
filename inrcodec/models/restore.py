"""Restoration filters after ``gaussian+dct``'s residual and deblocking: VVC's ALF idea, classified Wiener filters.

Why (issue 13, session 23; benchmarks/README.md "Classified restoration filters"): what the DCT residual leaves
(ringing, blur of edges it coded coarsely) differs by the local structure; one least-squares filter per channel
gained -0.5 to -1 % BD-rate (session 21), a filter per class of local structure gains -2.5 % per base on the lab's
cached bases of kodim01/03/05/07 (-1.4 to -3.6 %), -2.6 % end to end at medium (-2.1 to -2.9 % per image), for
~7 CPU-ms of decoding a Kodak image and ~0.3 CPU-s per encode of the byte search.

Classes, per 4x4 block, from the *decoded* image (the decoder has it): on the luma proxy ``L = (R + 2G + B + 2) >> 2``
(gray: the plane) the sums over the block of |2L - two neighbours| vertically (V), horizontally (H) and along both
diagonals (D0, D1), edges replicated; activity ``V + H`` in ``n_act`` levels at thresholds the stream carries (the
encoder takes quantiles of the image's activity); direction (``n_dir`` 5) by VVC's ratio test: texture where
max/min <= 2 for both pairs, else the pair of larger ratio (compared by cross-multiplication, integers) and the
larger of it: 1 V > H, 2 H >= V, 3 D0 > D1, 4 D1 >= D0. Class = direction x n_act + activity.

Filter, per channel and class (classes share filters through a map the stream carries): a point-symmetric,
DC-preserving diamond (``SHAPES``: 7x7, 12 taps, or 5x5, 6 taps) on the channel's own decoded plane:
``out = clip(x + ((sum_k c_k (x[p + o_k] + x[p - o_k] - 2 x[p]) + 2^(shift-1)) >> shift), 0, 255)``, edges
replicated, every output from the unfiltered image; integer coefficients, int32 sums (< 2^24), an arithmetic shift:
the same integers on every machine (``kernels.restore``, compiled; ``apply_reference`` here, numpy).

Encoder (``fit``): per channel least squares per class (float), greedy merging of classes into filters by
SSE + lambda x bits (lambda from the residual's luma step, ``LAMBDA`` x step^2 per bit), coefficients rounded to
integers; then the decision on the real error after integer filtering: a filter whose pixels do not gain more
than its bits are worth is switched off (zeros), and a channel whose filters all are off codes none.

Stream (inside the ``dct`` section, format 3, ``image_dct``): byte shape, byte shift, byte n_act, byte n_dir,
``n_act - 1`` varint thresholds (non-decreasing), per channel a byte: its number of filters (0: none); then a varint
length and the ``encode_ints`` blob of every filter's coefficients (channel by channel, filter by filter, tap by
tap), then (where a channel has 2 or more filters) the ``encode_ints`` blob of those channels' class maps. 8-bit
images only (16-bit ones write format 2, no filter).

Cross-channel taps (session 24, CC-ALF's idea; the ``dct`` section's format 6, the cross form of this stream): a
byte per channel after the counts, its number of cross offsets n (0-6); its filters then have (channels - 1) x n more
taps, the other channels' second differences along the 5x5 diamond's first n offsets (DC-free like the own taps).
The encoder tries 0, 2 and 4 per channel on one Gram matrix of all three planes' own taps and keeps the count of
least merged cost. Gain (benchmarks/README.md "cross-channel taps"): -1.1 % BD-rate per base in the lab over its
whole step range, but -0.4 % at 0.15-1.2 bpp (the taps pay mostly at fine steps, -2.0 % above 1.2 bpp).
"""

from __future__ import annotations

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..errors import FormatError

# one offset of each symmetric pair (as the compiled kernel's table)
SHAPES = (
    ((0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0)),
    ((0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0), (1, 2), (2, 1), (2, -1), (1, -2), (0, 3), (3, 0)),
)
BLOCK = 4
N_DIRS = (1, 5)
MAX_ACT = 16
MIN_SHIFT, MAX_SHIFT = 1, 12
COEF_MAX = 1023  # |coefficient|: 12 x 1023 x 1020 < 2^24, int32 sums
MAX_THRESHOLD = 1 << 15  # activity of a block <= 16 pixels x 2 x 510
# Encoder choices (the stream carries them), measured in the lab (benchmarks/gdct_restore_lab.py, BD-rate vs no
# filter; "k01 env": kodim01's envelope over 3 bases, "3 images": kodim01/03/07 over 0.2 bpp bases):
SHAPE = 1  # 7x7; 5x5: -1.75 % vs -2.01 % (k01 env); a 9x9 diamond: -2.20 vs -2.30 % (3 images), 2x the fit's CPU
SHIFT = 8  # 1/128 with |c| <= 127: -1.88 % (k01 env)
N_ACT = 5  # 3 / 8 levels: -1.98 % (k01 env) / -2.09 vs -2.04 % (4 images' envelope)
N_DIR = 5  # one direction: -2.3 vs -3.4 % (kodim07, 0.2 bpp base, 3 steps: gdct_restore_lab_smoke_*)
LAMBDA = 0.3  # SSE (8-bit levels^2, one channel) per bit = LAMBDA x luma step^2; 0.1 / 1.0: -2.06 / -1.68 % (k01 env)
COEF_BITS = 5.0  # the merging's estimate of a coefficient's bits
# Cross-channel taps (CC-ALF's idea, session 24; the ``dct`` section's format 6): a channel's filter may add the other
# channels' second differences x[p + o] + x[p - o] - 2 x[p] along the first n offsets of the 5x5 diamond (DC-free:
# they cannot shift the mean), n per channel in the stream; the encoder tries 0, 2, ... CROSS offsets and keeps per
# channel the count of least merged cost (SSE + lambda x bits).
MAX_CROSS = len(SHAPES[0])
CROSS = 4  # 0, 2 or 4 tried per channel; 2 only: -3.48 vs -3.58 % per base (lab, 12 bases), ~0.1 CPU-s less per fit


def _luma(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.int32)
    if x.shape[-1] == 1:
        return x[..., 0]
    return (x[..., 0] + 2 * x[..., 1] + x[..., 2] + 2) >> 2


def block_stats(img: np.ndarray) -> tuple[np.ndarray, ...]:
    """(V, H, D0, D1): sums of the luma proxy's absolute second differences over each 4x4 block (by, bx), int64,
    over the block's pixels inside the image, edges replicated."""
    lum = _luma(img)
    h, w = lum.shape
    p = np.pad(lum, 1, mode="edge")
    c = 2 * lum
    lap = (np.abs(c - p[:-2, 1:-1] - p[2:, 1:-1]), np.abs(c - p[1:-1, :-2] - p[1:-1, 2:]),
           np.abs(c - p[:-2, :-2] - p[2:, 2:]), np.abs(c - p[:-2, 2:] - p[2:, :-2]))
    by, bx = -(-h // BLOCK), -(-w // BLOCK)
    out = []
    for a in lap:
        a = np.pad(a, ((0, by * BLOCK - h), (0, bx * BLOCK - w)))  # zeros: only pixels inside count
        out.append(a.reshape(by, BLOCK, bx, BLOCK).sum((1, 3), dtype=np.int64))
    return tuple(out)


def activity(img: np.ndarray) -> np.ndarray:
    v, h, _, _ = block_stats(img)
    return v + h


def classify(img: np.ndarray, thresholds, n_act: int, n_dir: int) -> np.ndarray:
    """Class of each 4x4 block (by, bx) int64 in [0, n_act x n_dir)."""
    v, h, d0, d1 = block_stats(img)
    a = np.searchsorted(np.asarray(thresholds, np.int64), v + h, side="right")
    if n_dir == 1:
        return a
    hv_max, hv_min = np.maximum(v, h), np.minimum(v, h)
    dg_max, dg_min = np.maximum(d0, d1), np.minimum(d0, d1)
    texture = (hv_max <= 2 * hv_min) & (dg_max <= 2 * dg_min)
    hv_wins = hv_max * dg_min > dg_max * hv_min
    d = np.where(texture, 0, np.where(hv_wins, np.where(v > h, 1, 2), np.where(d0 > d1, 3, 4)))
    return d * n_act + a


def _pixel_classes(cls: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.repeat(np.repeat(cls, BLOCK, 0), BLOCK, 1)[:h, :w]


def _features(x: np.ndarray, shape: int) -> np.ndarray:
    """(h, w) int32 plane -> (taps, h, w) int32: x[p + o] + x[p - o] - 2 x[p] per offset, edges replicated."""
    offs = SHAPES[shape]
    r = max(max(abs(a), abs(b)) for a, b in offs)
    pad = np.pad(x, r, mode="edge")
    h, w = x.shape
    out = np.empty((len(offs), h, w), np.int32)
    for k, (dy, dx) in enumerate(offs):
        np.add(pad[r + dy:r + dy + h, r + dx:r + dx + w], pad[r - dy:r - dy + h, r - dx:r - dx + w], out=out[k])
        out[k] -= 2 * x
    return out


def _channel_features(img: np.ndarray, ch: int, shape: int, n_cross: int) -> np.ndarray:
    """Features of channel ``ch`` of ``img`` (h, w, c): its own diamond's, then per other channel (in channel order)
    the second differences along the first ``n_cross`` offsets of the 5x5 diamond; (taps, h, w) int32."""
    planes = [img[..., k].astype(np.int32) for k in range(img.shape[-1])]
    f = [_features(planes[ch], shape)]
    if n_cross:
        f += [_features(planes[k], 0)[:n_cross] for k in range(len(planes)) if k != ch]
    return np.concatenate(f) if len(f) > 1 else f[0]


def _filter_plane(x: np.ndarray, per_class: np.ndarray, pcls: np.ndarray, f: np.ndarray, shift: int) -> np.ndarray:
    """One channel (h, w) int32 through the filter of each pixel's class (per_class (n_cls, taps) int) over its
    features ``f`` (taps, h, w) int32 (``_channel_features``)."""
    acc = np.zeros(x.shape, np.int32)
    coef = per_class.astype(np.int32)[pcls]  # (h, w, taps)
    for k in range(f.shape[0]):
        acc += f[k] * coef[..., k]
    return np.clip(x + ((acc + (1 << (shift - 1))) >> shift), 0, 255)


def apply_reference(img: np.ndarray, params: dict) -> np.ndarray:
    """The decoder's filtering in numpy (the compiled kernel's reference): ``img`` (h, w, c) uint8 -> a new array."""
    h, w, c = img.shape
    pcls = _pixel_classes(classify(img, params["thresholds"], params["n_act"], params["n_dir"]), h, w)
    out = img.copy()
    for ch in range(c):
        per_class = per_class_coefs(params, ch, c)
        if per_class.any():
            f = _channel_features(img, ch, params["shape"], n_cross(params, ch))
            out[..., ch] = _filter_plane(img[..., ch].astype(np.int32), per_class, pcls, f, params["shift"])
    return out


def n_cross(params: dict, ch: int) -> int:
    """Cross-channel offsets of channel ``ch``'s filters (0 in formats 3 and 5)."""
    cross = params.get("cross")
    return int(cross[ch]) if cross else 0


def n_taps(params: dict, ch: int, channels: int) -> int:
    return len(SHAPES[params["shape"]]) + (channels - 1) * n_cross(params, ch)


def per_class_coefs(params: dict, ch: int, channels: int) -> np.ndarray:
    """(n_cls, taps) coefficients of channel ``ch`` per class (zeros where the channel codes no filter)."""
    n_cls = params["n_act"] * params["n_dir"]
    taps = n_taps(params, ch, channels)
    coefs, mapping = params["coefs"][ch], params["maps"][ch]
    if len(coefs) == 0:
        return np.zeros((n_cls, taps), np.int64)
    return np.asarray(coefs, np.int64)[mapping]


def apply(img: np.ndarray, params: dict) -> np.ndarray:
    """The decoder's filtering: the compiled kernel where there is one, else ``apply_reference`` (same integers)."""
    from ..kernels import restore as kernel

    out = kernel.apply(img, params)
    return apply_reference(img, params) if out is None else out


# -- encoder ---------------------------------------------------------------------------------------------------
def _class_order(cls: np.ndarray, n_cls: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixel order grouping the classes, start of each class in it): one sort for every channel's statistics."""
    return np.argsort(cls, kind="stable"), np.concatenate([[0], np.cumsum(np.bincount(cls, minlength=n_cls))])


def _class_stats(f: np.ndarray, t: np.ndarray, order: np.ndarray, starts: np.ndarray):
    """Per class: A = F F^t (taps, taps), b = F t (m, taps), e = t.t (m,), of integer features f (taps, n) and m
    targets t (m, n), the pixels grouped by ``_class_order``."""
    fs, ts = f[:, order], t[:, order]  # gathered as integers, made float per class (in cache)
    n_cls, taps, m = len(starts) - 1, f.shape[0], t.shape[0]
    A, b, e = np.zeros((n_cls, taps, taps)), np.zeros((n_cls, m, taps)), np.zeros((n_cls, m))
    for k in range(n_cls):
        fk = fs[:, starts[k]:starts[k + 1]].astype(np.float64)
        tk = ts[:, starts[k]:starts[k + 1]].astype(np.float64)
        A[k], b[k], e[k] = fk @ fk.T, tk @ fk.T, np.einsum("ij,ij->i", tk, tk)
    return A, b, e


def _solve(A: np.ndarray, b: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(least-squares residual energy, coefficients) of stacked groups (ridge 1e-6 of the trace: flat classes)."""
    eye = np.eye(A.shape[-1])
    reg = (1e-6 * np.trace(A, axis1=-2, axis2=-1) + 1e-9)[..., None, None] * eye
    c = np.linalg.solve(A + reg, b[..., None])[..., 0]
    return e - np.einsum("...i,...i->...", b, c), c


def _merge(A: np.ndarray, b: np.ndarray, e: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """(class -> filter map, its cost) minimising SSE + lam x estimated bits, by greedy merging of the pair that
    costs least. The merged pairs' SSE are kept between steps: a merge re-solves only the new group's pairs (the
    same choices as re-solving all, a quarter of the solves)."""
    n_cls, taps = b.shape
    members = [[k] for k in range(n_cls)]
    GA, Gb, Ge = A.copy(), b.copy(), e.copy()
    sse = _solve(A, b, e)[0]
    ii, jj = np.triu_indices(n_cls, 1)
    pair = np.full((n_cls, n_cls), np.inf)  # SSE of groups i < j merged (slots of the groups alive)
    pair[ii, jj] = _solve(GA[ii] + GA[jj], Gb[ii] + Gb[jj], Ge[ii] + Ge[jj])[0]
    alive = list(range(n_cls))
    best_cost, best = None, None
    while True:
        n = len(alive)
        cost = sum(sse[g] for g in alive) + lam * (n * taps * COEF_BITS + (n_cls * np.log2(n) if n > 1 else 0.0))
        if best_cost is None or cost < best_cost:
            best_cost, best = cost, [list(members[g]) for g in alive]
        if n == 1:
            break
        m = int(np.argmin(pair - sse[:, None] - sse[None, :]))
        i, j = divmod(m, n_cls)
        members[i] += members[j]
        GA[i] += GA[j]
        Gb[i] += Gb[j]
        Ge[i] += Ge[j]
        sse[i] = pair[i, j]
        alive.remove(j)
        pair[j, :] = pair[:, j] = np.inf
        others = np.array([k for k in alive if k != i], np.int64)
        if len(others):
            lo, hi = np.minimum(others, i), np.maximum(others, i)
            pair[lo, hi] = _solve(GA[i] + GA[others], Gb[i] + Gb[others], Ge[i] + Ge[others])[0]
    mapping = np.zeros(n_cls, np.int64)
    for g, group in enumerate(best):
        mapping[group] = g
    return mapping, float(best_cost)


def fit(original: np.ndarray, decoded: np.ndarray, step: float, shape: int | None = None, shift: int | None = None,
        n_act: int | None = None, n_dir: int | None = None, lam: float | None = None,
        cross: int | None = None) -> dict | None:
    """The filters for ``decoded`` (h, w, c) uint8 towards ``original``, or None where none pays. ``step``: the
    residual's luma step (8-bit levels), which sets lambda (``lam`` x step^2 per bit). ``cross``: the cross-channel
    offsets tried per channel (3 channels; 0, 2, ... ``cross``, the count of least merged cost kept). Unset
    arguments: the module's constants (SHAPE, SHIFT, N_ACT, N_DIR, LAMBDA, CROSS) as they are at the call."""
    shape = SHAPE if shape is None else int(shape)
    shift = SHIFT if shift is None else int(shift)
    n_act = N_ACT if n_act is None else int(n_act)
    n_dir = N_DIR if n_dir is None else int(n_dir)
    lam = LAMBDA if lam is None else lam
    h, w, c = decoded.shape
    cross = min(CROSS if cross is None else int(cross), MAX_CROSS, len(SHAPES[shape])) if c == 3 else 0
    n_cls = n_act * n_dir
    own = len(SHAPES[shape])
    qs = np.linspace(0.0, 1.0, n_act + 1)[1:-1]
    thresholds = [int(min(t, MAX_THRESHOLD)) for t in np.quantile(activity(decoded), qs)] if n_act > 1 else []
    params = {"shape": shape, "shift": shift, "n_act": n_act, "n_dir": n_dir, "thresholds": thresholds,
              "coefs": [], "maps": [], "cross": []}
    pcls = _pixel_classes(classify(decoded, thresholds, n_act, n_dir), h, w)
    flat = pcls.ravel()
    order, starts = _class_order(flat, n_cls)
    lam_bits = lam * step * step
    planes = [decoded[..., k].astype(np.int32) for k in range(c)]
    refs = [original[..., k].astype(np.int64) for k in range(c)]
    own_f = [_features(x, shape) for x in planes]
    targets = np.stack([(r - x).ravel() for r, x in zip(refs, planes)])
    if cross:
        # the cross taps along the 5x5 diamond's first offsets are the other planes' own first taps (SHAPES[1]
        # begins with SHAPES[0]): one Gram matrix of every plane's own taps serves every channel and candidate
        stats = _class_stats(np.concatenate(own_f).reshape(c * own, -1), targets, order, starts)
    for ch in range(c):
        if cross:
            A, b, e = stats[0], stats[1][:, ch], stats[2][:, ch]
        else:
            A, b, e = _class_stats(own_f[ch].reshape(own, -1), targets[ch:ch + 1], order, starts)
            b, e = b[:, 0], e[:, 0]
        best = None
        for n_x in range(0, cross + 1, 2):  # none, H + V, + the diagonals, ...: the cheapest form that pays
            # the taps in ``_channel_features``'s order: the channel's own, then the others' first n_x
            sub = np.concatenate([ch * own + np.arange(own)]
                                 + [k * own + np.arange(n_x) for k in range(c) if k != ch]) if cross else np.arange(own)
            As, bs = A[:, sub[:, None], sub[None, :]], b[:, sub]
            mapping, cost = _merge(As, bs, e, lam_bits)
            if best is None or cost < best[0]:
                best = (cost, n_x, sub, As, bs, mapping)
        _, n_x, sub, A, b, mapping = best
        n = int(mapping.max()) + 1
        coefs = np.zeros((n, len(sub)), np.int64)
        for g in range(n):
            sel = mapping == g
            coefs[g] = np.clip(np.rint(_solve(A[sel].sum(0), b[sel].sum(0), e[sel].sum())[1] * (1 << shift)),
                               -COEF_MAX, COEF_MAX)
        params["coefs"].append(coefs)
        params["maps"].append(mapping)
        params["cross"].append(n_x)
    # the decision on the real error after the integer filters (the decoder's, every channel in one call): a filter
    # that does not pay for its bits is off
    out = apply(decoded, params).astype(np.int64)
    for ch in range(c):
        coefs, mapping, ref, x = params["coefs"][ch], params["maps"][ch], refs[ch], planes[ch]
        n = len(coefs)
        gain = np.bincount(mapping[flat], weights=((ref - x) ** 2 - (ref - out[..., ch]) ** 2).ravel(), minlength=n)
        bits = (2 * np.log2(np.abs(coefs) + 1) + 1).sum(1)
        coefs[gain <= lam_bits * bits] = 0
        if not coefs.any():
            coefs, mapping, params["cross"][ch] = np.zeros((0, own), np.int64), np.zeros(n_cls, np.int64), 0
        elif n > 1:  # renumber the filters left, dropping unused ones
            used, mapping = np.unique(mapping, return_inverse=True)
            coefs = coefs[used]
        params["coefs"][ch], params["maps"][ch] = coefs, mapping.astype(np.int64)
    if not any(len(cf) for cf in params["coefs"]):
        return None
    if not any(params["cross"]):
        del params["cross"]  # format 3 / 5's form
    return params


def choose(original: np.ndarray, decoded: np.ndarray, step: float, **kw) -> tuple[bytes, bool] | None:
    """(``encode``'s bytes of the filters ``fit`` finds, whether they are the cross-channel form (format 6)), or None
    where they do not pay for their bytes on the real error of the decoder's integer filtering (``lam`` x step^2
    per bit)."""
    params = fit(original, decoded, step, **kw)
    if params is None:
        return None
    blob, cross = encode(params), "cross" in params
    out = apply(decoded, decode(blob, decoded.shape[-1], cross))
    ref = original.astype(np.int64)
    gain = int(((ref - decoded) ** 2).sum()) - int(((ref - out) ** 2).sum())
    lam = LAMBDA if kw.get("lam") is None else kw["lam"]
    return (blob, cross) if gain > lam * step * step * 8 * (len(blob) + 1) else None


# -- stream ----------------------------------------------------------------------------------------------------
def encode(params: dict) -> bytes:
    """The filters' stream; with ``params["cross"]`` the cross-channel form (a byte per channel after the counts)."""
    head = bytes([params["shape"], params["shift"], params["n_act"], params["n_dir"]])
    head += b"".join(varint(int(t)) for t in params["thresholds"])
    head += bytes([len(cf) for cf in params["coefs"]])
    if "cross" in params:
        head += bytes([int(n) for n in params["cross"]])
    coefs = np.concatenate([np.asarray(cf, np.int64).ravel() for cf in params["coefs"]])
    blob = encode_ints(coefs)
    out = head + varint(len(blob)) + blob
    maps = [m for cf, m in zip(params["coefs"], params["maps"]) if len(cf) > 1]
    if maps:
        out += encode_ints(np.concatenate(maps))
    return out


def decode(data: bytes, channels: int, cross_form: bool = False) -> dict:
    """Filters of ``encode``'s stream for an image of ``channels`` channels (``cross_form``: the stream carries the
    cross-channel offsets per channel, the ``dct`` section's format 6); FormatError on anything malformed."""
    if len(data) < 4:
        raise FormatError("restoration filters: header is truncated")
    shape, shift, n_act, n_dir = data[0], data[1], data[2], data[3]
    if shape >= len(SHAPES) or not MIN_SHIFT <= shift <= MAX_SHIFT or not 1 <= n_act <= MAX_ACT or n_dir not in N_DIRS:
        raise FormatError("restoration filters: bad shape, shift or class counts")
    pos, thresholds = 4, []
    for _ in range(n_act - 1):
        t, pos = read_varint(data, pos, "restoration filters: thresholds are truncated", 3)
        if t > MAX_THRESHOLD or (thresholds and t < thresholds[-1]):
            raise FormatError("restoration filters: bad activity thresholds")
        thresholds.append(t)
    n_cls, own = n_act * n_dir, len(SHAPES[shape])
    if pos + channels * (2 if cross_form else 1) > len(data):
        raise FormatError("restoration filters: header is truncated")
    counts = list(data[pos:pos + channels])
    pos += channels
    if any(n > n_cls for n in counts) or not any(counts):
        raise FormatError("restoration filters: bad number of filters")
    cross = [0] * channels
    if cross_form:
        cross = list(data[pos:pos + channels])
        pos += channels
        # canonical: offsets only on channels with filters, of a colour image, and on one at least (else format 3/5)
        if (any(n > MAX_CROSS or (n and (not k or channels == 1)) for n, k in zip(cross, counts))
                or not any(cross)):
            raise FormatError("restoration filters: bad cross-channel offsets")
    taps = [own + (channels - 1) * n for n in cross]
    size, pos = read_varint(data, pos, "restoration filters: truncated", 3)
    if pos + size > len(data):
        raise FormatError("restoration filters: coefficients are truncated")
    coefs = decode_ints(data[pos:pos + size], sum(n * t for n, t in zip(counts, taps))).astype(np.int64)
    pos += size
    if coefs.size and int(np.abs(coefs).max()) > COEF_MAX:
        raise FormatError("restoration filters: coefficient out of range")
    multi = [n for n in counts if n > 1]
    if multi:
        maps = decode_ints(data[pos:], len(multi) * n_cls).astype(np.int64).reshape(len(multi), n_cls)
    elif pos != len(data):
        raise FormatError("restoration filters: trailing bytes")
    params = {"shape": int(shape), "shift": int(shift), "n_act": int(n_act), "n_dir": int(n_dir),
              "thresholds": thresholds, "coefs": [], "maps": []}
    if cross_form:
        params["cross"] = cross
    k = m = 0
    for n, t in zip(counts, taps):
        params["coefs"].append(coefs[k:k + n * t].reshape(n, t))
        k += n * t
        if n > 1:
            mp = maps[m]
            m += 1
            if mp.min() < 0 or mp.max() >= n:
                raise FormatError("restoration filters: class map names a missing filter")
        else:
            mp = np.zeros(n_cls, np.int64)
        params["maps"].append(mp)
    return params
