"""Experiment (issue 13, session 23): ALF-like classified restoration filters after the deblocking, for the lab
(``gdct_restore_lab.py``). numpy, float fitting, integer application.

Classes per 4x4 block from the decoded image's luma proxy ``L = (R + 2G + B + 2) >> 2`` (gray: the plane):
sums over the block of |2L - neighbours| along vertical, horizontal and the two diagonals (VVC's Laplacians);
activity = V + H in ``N_ACT`` levels at thresholds sent in the stream (the encoder takes quantiles), direction in
5 (none / horizontal / vertical / diagonal / anti-diagonal by VVC's ratio test). Per channel, a point-symmetric
DC-preserving diamond filter (``_restoration.SHAPES``) per merged group of classes: least squares per class, greedy
merging by SSE + lambda x bits, coefficients in 1/2^shift, a group whose integer filter does not lower the real
error is switched off.
"""

from __future__ import annotations

import numpy as np

import _restoration as r1
from inrcodec.entropy import encode_ints
from inrcodec.entropy._bytes import varint

N_DIR = 5
BLOCK = 4
# a 9x9 diamond (20 taps) as shape 2, for the lab only
if len(r1.SHAPES) == 2:
    r1.SHAPES = r1.SHAPES + (r1.SHAPES[1] + ((0, 4), (4, 0), (1, 3), (3, 1), (3, -1), (1, -3), (2, 2), (2, -2)),)


def luma(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.int32)
    if x.shape[-1] == 1:
        return x[..., 0]
    return (x[..., 0] + 2 * x[..., 1] + x[..., 2] + 2) >> 2


def block_stats(img: np.ndarray):
    """(V, H, D0, D1) sums per 4x4 block (by, bx) int64."""
    lum = luma(img)
    h, w = lum.shape
    p = np.pad(lum, 1, mode="edge")
    c = 2 * lum
    v = np.abs(c - p[:-2, 1:-1] - p[2:, 1:-1])
    hh = np.abs(c - p[1:-1, :-2] - p[1:-1, 2:])
    d0 = np.abs(c - p[:-2, :-2] - p[2:, 2:])
    d1 = np.abs(c - p[:-2, 2:] - p[2:, :-2])
    by, bx = -(-h // BLOCK), -(-w // BLOCK)
    out = []
    for a in (v, hh, d0, d1):
        a = np.pad(a, ((0, by * BLOCK - h), (0, bx * BLOCK - w)), mode="edge")
        out.append(a.reshape(by, BLOCK, bx, BLOCK).sum((1, 3)).astype(np.int64))
    return out


def direction(v, hh, d0, d1):
    hv_max, hv_min = np.maximum(v, hh), np.minimum(v, hh)
    dg_max, dg_min = np.maximum(d0, d1), np.minimum(d0, d1)
    # VVC: texture where both ratios <= 2; else the larger ratio picks hv or diagonal (cross-multiplied: integers)
    tex = (hv_max <= 2 * hv_min) & (dg_max <= 2 * dg_min)
    hv_wins = hv_max * dg_min > dg_max * hv_min
    d = np.where(hv_wins, np.where(v > hh, 1, 2), np.where(d0 > d1, 3, 4))
    return np.where(tex, 0, d)


def classify(img: np.ndarray, thresholds=None, n_act: int = 5, n_dir: int = N_DIR):
    """(class per 4x4 block (by, bx) int, thresholds used)."""
    v, hh, d0, d1 = block_stats(img)
    act = v + hh
    if thresholds is None:
        qs = np.linspace(0, 1, n_act + 1)[1:-1]
        thresholds = [int(t) for t in np.quantile(act, qs)]
    a = np.searchsorted(np.asarray(thresholds), act, side="right")
    d = direction(v, hh, d0, d1) if n_dir == N_DIR else np.zeros_like(act)
    return d * n_act + a, thresholds


def pixel_classes(cls: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.repeat(np.repeat(cls, BLOCK, 0), BLOCK, 1)[:h, :w]


def _class_stats(f: np.ndarray, t: np.ndarray, cls: np.ndarray, n_cls: int):
    """Per class (A (taps, taps), b (taps,), e, count) of features f (taps, n) float64 and target t (n,)."""
    order = np.argsort(cls, kind="stable")
    counts = np.bincount(cls, minlength=n_cls)
    starts = np.concatenate([[0], np.cumsum(counts)])
    fs, ts = f[:, order], t[order]
    taps = f.shape[0]
    A = np.zeros((n_cls, taps, taps))
    b = np.zeros((n_cls, taps))
    e = np.zeros(n_cls)
    for k in range(n_cls):
        s0, s1 = starts[k], starts[k + 1]
        if s1 > s0:
            fk = fs[:, s0:s1]
            A[k] = fk @ fk.T
            b[k] = fk @ ts[s0:s1]
            e[k] = ts[s0:s1] @ ts[s0:s1]
    return A, b, e, counts


def _sse(A, b, e):
    """Least-squares residual energy of stacked groups."""
    taps = A.shape[-1]
    reg = 1e-6 * np.trace(A, axis1=-2, axis2=-1)[..., None, None] * np.eye(taps) + 1e-9 * np.eye(taps)
    c = np.linalg.solve(A + reg, b[..., None])[..., 0]
    return e - np.einsum("...i,...i->...", b, c), c


def merge(A, b, e, lam_bits: float, coef_bits: float, n_cls: int):
    """Greedy merging of classes (any pair): returns (group of each class, number of groups) minimising
    SSE + lam_bits x (groups x taps x coef_bits + classes x log2(groups))."""
    taps = A.shape[-1]
    groups = [[k] for k in range(n_cls) if A[k].trace() > 0 or e[k] > 0]
    GA = [A[g[0]].copy() for g in groups]
    Gb = [b[g[0]].copy() for g in groups]
    Ge = [e[g[0]] for g in groups]
    sse_g = list(_sse(np.array(GA), np.array(Gb), np.array(Ge))[0])
    best = None
    history = []
    while True:
        n = len(groups)
        cost = sum(sse_g) + lam_bits * (n * taps * coef_bits + (n_cls * np.log2(n) if n > 1 else 0))
        history.append((n, cost))
        if best is None or cost < best[0]:
            best = (cost, [list(g) for g in groups])
        if n == 1:
            break
        ii, jj = np.triu_indices(n, 1)
        a2 = np.array(GA)[ii] + np.array(GA)[jj]
        b2 = np.array(Gb)[ii] + np.array(Gb)[jj]
        e2 = np.array(Ge)[ii] + np.array(Ge)[jj]
        s2 = _sse(a2, b2, e2)[0]
        inc = s2 - np.array(sse_g)[ii] - np.array(sse_g)[jj]
        m = int(np.argmin(inc))
        i, j = int(ii[m]), int(jj[m])
        groups[i] += groups[j]
        GA[i], Gb[i], Ge[i], sse_g[i] = a2[m], b2[m], e2[m], s2[m]
        for lst in (groups, GA, Gb, Ge, sse_g):
            del lst[j]
    mapping = np.zeros(n_cls, np.int64)
    for gi, g in enumerate(best[1]):
        mapping[g] = gi
    return mapping, len(best[1])


def _feat(x: np.ndarray, shape: int, clip: int = 0) -> np.ndarray:
    """Second differences, or with ``clip`` VVC's nonlinear form: clip(x[p+o] - x[p]) + clip(x[p-o] - x[p])."""
    if not clip:
        return r1._features(x, shape)
    offs = r1.SHAPES[shape]
    r = max(max(abs(a), abs(b)) for a, b in offs)
    pad = np.pad(x, r, mode="edge")
    h, w = x.shape
    out = np.empty((len(offs), h, w), np.int32)
    for k, (dy, dx) in enumerate(offs):
        out[k] = (np.clip(pad[r + dy:r + dy + h, r + dx:r + dx + w] - x, -clip, clip)
                  + np.clip(pad[r - dy:r - dy + h, r - dx:r - dx + w] - x, -clip, clip))
    return out


def _cross(decoded: np.ndarray, ch: int, n: int) -> np.ndarray | None:
    """CC-ALF-like taps: the other channels' second differences along the first ``n`` offsets (0: none)."""
    if not n or decoded.shape[-1] == 1:
        return None
    others = [decoded[..., k].astype(np.int32) for k in range(decoded.shape[-1]) if k != ch]
    return np.concatenate([r1._features(o, 0)[:n] for o in others])


def _apply_plane(x: np.ndarray, coefs: np.ndarray, shape: int, pcls: np.ndarray, mapping: np.ndarray,
                 shift: int, clip: int = 0, cross: np.ndarray | None = None) -> np.ndarray:
    f = _feat(x, shape, clip)  # (taps, h, w) int32
    if cross is not None:
        f = np.concatenate([f, cross])
    per_pixel = coefs[mapping[pcls]]  # (h, w, taps)
    acc = np.einsum("khw,hwk->hw", f.astype(np.int64), per_pixel.astype(np.int64))
    return np.clip(x + ((acc + (1 << (shift - 1))) >> shift), 0, 255)


def fit(original: np.ndarray, decoded: np.ndarray, step: float, shape: int = 1, n_act: int = 5, n_dir: int = N_DIR,
        lam: float = 0.3, coef_bits: float = 5.0, shift: int = 8, cmax: int = 255, clip: int = 0, ctu: int = 0,
        cross: int = 0, **_):
    """Classified filters per channel. lam: SSE per bit = lam x step^2 (the residual's RD slope, roughly)."""
    h, w, c = decoded.shape
    n_cls = n_act * (n_dir if n_dir == N_DIR else 1)
    cls, thr = classify(decoded, None, n_act, n_dir)
    pcls = pixel_classes(cls, h, w)
    flat_cls = pcls.ravel()
    taps = len(r1.SHAPES[shape])
    out = {"shape": shape, "thresholds": thr, "n_act": n_act, "n_dir": n_dir, "shift": shift, "channels": [],
           "clip": clip, "ctu": ctu, "cross": cross}
    lam_bits = lam * step * step
    for ch in range(c):
        x = decoded[..., ch].astype(np.int32)
        xc = _cross(decoded, ch, cross)
        f = _feat(x, shape, clip)
        if xc is not None:
            f = np.concatenate([f, xc])
        taps = f.shape[0]
        f = f.reshape(taps, -1).astype(np.float64)
        t = original[..., ch].astype(np.float64).ravel() - x.ravel()
        ref = original[..., ch].astype(np.int64)
        err_old = (ref - x) ** 2
        mask = None
        for it in range(2 if ctu else 1):
            sel = slice(None) if mask is None else mask.ravel()
            A, b, e, counts = _class_stats(f[:, sel], t[sel], flat_cls[sel], n_cls)
            mapping, n = merge(A, b, e, lam_bits, coef_bits, n_cls)
            coefs = np.zeros((n, taps), np.int64)
            for g in range(n):
                gs = mapping == g
                cg = _sse(A[gs].sum(0), b[gs].sum(0), e[gs].sum())[1]
                coefs[g] = np.clip(np.rint(cg * (1 << shift)), -cmax, cmax)
            # the decision on the real error after integer filtering: a group that does not pay is switched off
            y = _apply_plane(x, coefs, shape, pcls, mapping, shift, clip, xc)
            err_new = (ref - y) ** 2
            dgain = err_old - err_new
            gpix = mapping[pcls]
            w_ = dgain if mask is None else dgain * mask
            gain = np.bincount(gpix.ravel(), weights=w_.ravel(), minlength=n)
            nz_bits = np.array([np.sum(np.log2(np.abs(coefs[g]) + 1) * 2 + 1) for g in range(n)])
            for g in range(n):
                if gain[g] <= lam_bits * nz_bits[g]:
                    coefs[g] = 0
            flags = None
            if ctu:  # per CTU on/off where the filter loses (or gains less than the flag's bit)
                y = _apply_plane(x, coefs, shape, pcls, mapping, shift, clip, xc)
                dgain = err_old - (ref - y) ** 2
                cy, cx = -(-h // ctu), -(-w // ctu)
                pad = np.pad(dgain, ((0, cy * ctu - h), (0, cx * ctu - w)))
                cg_ = pad.reshape(cy, ctu, cx, ctu).sum((1, 3))
                flags = cg_ > lam_bits
                mask = np.repeat(np.repeat(flags, ctu, 0), ctu, 1)[:h, :w]
        if not coefs.any():
            n, mapping, coefs = 1, np.zeros(n_cls, np.int64), np.zeros((1, taps), np.int64)
        taps = len(r1.SHAPES[shape])
        out["channels"].append({"mapping": mapping, "coefs": coefs, "flags": flags})
    return out


def apply(decoded: np.ndarray, params: dict) -> np.ndarray:
    h, w, c = decoded.shape
    cls, _ = classify(decoded, params["thresholds"], params["n_act"], params["n_dir"])
    pcls = pixel_classes(cls, h, w)
    out = decoded.copy()
    for ch, p in enumerate(params["channels"]):
        if p["coefs"].any():
            y = _apply_plane(decoded[..., ch].astype(np.int32), p["coefs"], params["shape"], pcls,
                             p["mapping"], params["shift"], params.get("clip", 0),
                             _cross(decoded, ch, params.get("cross", 0)))
            if p.get("flags") is not None:
                ctu = params["ctu"]
                on = np.repeat(np.repeat(p["flags"], ctu, 0), ctu, 1)[:h, :w]
                y = np.where(on, y, decoded[..., ch])
            out[..., ch] = y
    return out


def encode(params: dict) -> bytes:
    head = bytes([1, params["shape"], params["n_act"], params["n_dir"], params["shift"]])
    head += b"".join(varint(int(t)) for t in params["thresholds"])
    body = b""
    coefs, maps = [], []
    for p in params["channels"]:
        n = p["coefs"].shape[0] if p["coefs"].any() else 0
        body += bytes([n])
        if n and p.get("flags") is not None and not p["flags"].all():  # a presence byte, then one bit per CTU
            body += bytes([1]) + np.packbits(p["flags"].ravel()).tobytes()
        elif n and p.get("flags") is not None:
            body += bytes([0])
        if n:
            coefs.append(p["coefs"].ravel())
            if n > 1:
                maps.append(p["mapping"])
    if coefs:
        body += encode_ints(np.concatenate(coefs))
    if maps:
        body += encode_ints(np.concatenate(maps))
    return head + body
