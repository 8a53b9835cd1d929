"""Distortion and rate metrics: PSNR, MSE, max/relative error, MS-SSIM, bpp, Bjøntegaard deltas.

Everything takes numpy arrays in the ``Signal`` layout (channel-last; a 2-D array is a gray image) and returns a
Python float. Conventions follow CONTRACT 2 in DESIGN.md:

* PSNR peak: the full range of the integer dtype (255 for uint8, 65535 for uint16, ``max - min`` of the dtype for
  other integers, matching ``signal.default_value_range``); for float data the finite value range ``max - min`` of
  the *reference*, unless ``peak`` is given. Computed in float64. Identical inputs give ``inf``.
* Positions where the reference is NaN (masked scientific fields) are left out of every error metric.
* bpp = bytes * 8 / pixels, with pixels = H * W (coordinates only, never channels).
* BD-rate: Bjøntegaard, log-rate, cubic fit of log(rate) against PSNR, over the overlapping PSNR interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .errors import InputError

__all__ = [
    "data_peak",
    "mse",
    "psnr",
    "max_abs_error",
    "relative_max_error",
    "ms_ssim",
    "bpp",
    "bd_rate",
    "bd_psnr",
]


# ---------------------------------------------------------------------------------------------------------------
# pointwise metrics
# ---------------------------------------------------------------------------------------------------------------
def _pair(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64, restricted to positions where the reference is finite."""
    ref = np.asarray(ref)
    test = np.asarray(test)
    if ref.shape != test.shape:
        raise InputError(f"shape mismatch: reference {ref.shape} vs test {test.shape}")
    if ref.size == 0:
        raise InputError("cannot measure an empty array")
    r = ref.astype(np.float64, copy=False)
    t = test.astype(np.float64, copy=False)
    if np.issubdtype(ref.dtype, np.floating):
        mask = np.isfinite(r)
        if not mask.all():
            if not mask.any():
                raise InputError("reference has no finite values")
            r, t = r[mask], t[mask]
    return r, t


def data_peak(ref: np.ndarray) -> float:
    """PSNR peak implied by an array: the dtype's full range for integers, the finite value range for floats."""
    ref = np.asarray(ref)
    if np.issubdtype(ref.dtype, np.integer):
        info = np.iinfo(ref.dtype)
        return float(info.max) - float(info.min)
    if ref.dtype == np.bool_:
        return 1.0
    finite = ref[np.isfinite(ref)]
    if finite.size == 0:
        raise InputError("reference has no finite values")
    return float(finite.max()) - float(finite.min())


def mse(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error in float64 (NaN positions of the reference excluded)."""
    r, t = _pair(ref, test)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean((r - t) ** 2))


def psnr(ref: np.ndarray, test: np.ndarray, peak: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical inputs, ``-inf`` if ``test`` has inf/NaN values."""
    if peak is None:
        peak = data_peak(ref)
    peak = float(peak)
    if not peak > 0:
        raise InputError(f"PSNR peak must be positive, got {peak} (constant float reference? pass peak=)")
    err = mse(ref, test)
    if not math.isfinite(err):
        return -math.inf
    if err == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / err)


def max_abs_error(ref: np.ndarray, test: np.ndarray) -> float:
    """Largest absolute difference (the quantity an absolute error bound promises to keep)."""
    r, t = _pair(ref, test)
    with np.errstate(invalid="ignore"):
        d = np.abs(r - t)
    return float(np.nan_to_num(d, nan=np.inf).max())


def relative_max_error(ref: np.ndarray, test: np.ndarray) -> float:
    """``max_abs_error`` divided by the reference's value range (``data_peak``)."""
    peak = data_peak(ref)
    if not peak > 0:
        raise InputError("relative error is undefined for a constant reference")
    return max_abs_error(ref, test) / peak


# ---------------------------------------------------------------------------------------------------------------
# MS-SSIM
# ---------------------------------------------------------------------------------------------------------------
_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, the weights pytorch-msssim uses
_WIN = 11


def _scale_sizes(side: int, levels: int) -> list[int]:
    """Smaller side at each scale, with pytorch-msssim's ceil-padding 2x average pooling."""
    sizes = [side]
    for _ in range(levels - 1):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _ms_ssim_plan(side: int) -> tuple[int, int]:
    """(levels, window) for an image whose smaller side is ``side``.

    Standard MS-SSIM (5 scales, 11-tap Gaussian window, sigma 1.5) needs the coarsest scale to be at least as wide as
    the window, i.e. a smaller side of >= 161 px. Below that we keep the window and drop the coarsest scales (their
    weights are removed and the rest renormalised to sum to 1): fewer scales changes the metric less than a shrunken
    window would. Below 11 px only single-scale SSIM remains, with the window cut to the largest odd size that fits.
    """
    if side < 3:
        raise InputError(f"image too small for MS-SSIM: smaller side is {side} px (need at least 3)")
    if side < _WIN:
        return 1, side if side % 2 else side - 1
    levels = 5
    while _scale_sizes(side, levels)[-1] < _WIN:
        levels -= 1
    return levels, _WIN


def _ms_ssim_levels(x, y, data_range: float, levels: int, win_size: int) -> float:
    """MS-SSIM with ``levels`` scales, built from pytorch-msssim's per-scale SSIM (same pooling, same relu)."""
    import torch
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    weights = torch.tensor(_MS_WEIGHTS[:levels], dtype=x.dtype)
    if levels < len(_MS_WEIGHTS):  # the kept scales share the whole weight (the 5 standard ones sum to 1.0001)
        weights = weights / weights.sum()
    win = _fspecial_gauss_1d(win_size, 1.5).repeat([x.shape[1], 1, 1, 1])
    mcs = []
    for i in range(levels):
        ssim_c, cs = _ssim(x, y, win=win, data_range=data_range, size_average=False)
        if i < levels - 1:
            mcs.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stack = torch.stack(mcs + [torch.relu(ssim_c)], dim=0)  # (levels, N, C)
    return float(torch.prod(stack ** weights.view(-1, 1, 1), dim=0).mean())


def ms_ssim(ref: np.ndarray, test: np.ndarray, data_range: float | None = None) -> float:
    """Multi-scale SSIM (pytorch-msssim) of a channel-last image ``(H, W)`` or ``(H, W, C)``; channels averaged.

    ``data_range`` defaults to ``data_peak(ref)`` (255 for uint8, 65535 for uint16, value range for floats).
    Images with a smaller side >= 161 px get standard 5-scale MS-SSIM; smaller ones get fewer scales (see
    ``_ms_ssim_plan``), so values for tiny test images are comparable with each other but not with published
    5-scale figures. NaNs are not allowed here (a masked field has no meaningful SSIM).
    """
    import torch
    from pytorch_msssim import ms_ssim as _pm_ms_ssim

    ref = np.asarray(ref)
    test = np.asarray(test)
    if ref.shape != test.shape:
        raise InputError(f"shape mismatch: reference {ref.shape} vs test {test.shape}")
    if ref.ndim == 2:
        ref, test = ref[..., None], test[..., None]
    if ref.ndim != 3:
        raise InputError(f"MS-SSIM needs an image (H, W) or (H, W, C), got shape {ref.shape}")
    if data_range is None:
        data_range = data_peak(ref)
    if not data_range > 0:
        raise InputError("MS-SSIM data range must be positive (constant float image? pass data_range=)")
    levels, win = _ms_ssim_plan(min(ref.shape[:2]))
    # float32 is 4x faster than float64 here (0.7 s vs 3 s on a Kodak image) and agrees to ~1e-6. Dividing by the
    # data range first leaves SSIM unchanged (its constants scale with the range) and keeps the numbers near 1.
    scale = 1.0 / float(data_range)
    x = torch.from_numpy((ref.astype(np.float64) * scale).astype(np.float32).transpose(2, 0, 1).copy())[None]
    y = torch.from_numpy((test.astype(np.float64) * scale).astype(np.float32).transpose(2, 0, 1).copy())[None]
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise InputError("MS-SSIM needs finite values")
    with torch.no_grad():
        if levels == 5:
            return float(_pm_ms_ssim(x, y, data_range=1.0, win_size=win))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pytorch-msssim warns when a side is shorter than the window
            return _ms_ssim_levels(x, y, 1.0, levels, win)


# ---------------------------------------------------------------------------------------------------------------
# rate
# ---------------------------------------------------------------------------------------------------------------
def bpp(num_bytes: int, num_pixels: int) -> float:
    """Bits per pixel: whole-file bytes * 8 / (H * W)."""
    if num_pixels <= 0:
        raise InputError(f"number of pixels must be positive, got {num_pixels}")
    if num_bytes < 0:
        raise InputError(f"number of bytes must be >= 0, got {num_bytes}")
    return num_bytes * 8.0 / num_pixels


# ---------------------------------------------------------------------------------------------------------------
# Bjøntegaard deltas
# ---------------------------------------------------------------------------------------------------------------
Curve = Any  # list of (bpp, psnr) pairs | list of {"bpp", "psnr"} dicts | {"bpp": [...], "psnr": [...]}


def _curve_arrays(curve: Curve, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(rate, psnr) float arrays from any accepted curve form, checked for use in a log-rate fit."""
    if isinstance(curve, Mapping):
        try:
            rate, dist = list(curve["bpp"]), list(curve["psnr"])
        except KeyError as e:
            raise InputError(f"curve {label}: dict needs keys 'bpp' and 'psnr'") from e
    elif isinstance(curve, Iterable):
        rate, dist = [], []
        for p in curve:
            if isinstance(p, Mapping):
                if "bpp" not in p or "psnr" not in p:
                    raise InputError(f"curve {label}: point {p!r} lacks 'bpp' or 'psnr'")
                rate.append(p["bpp"])
                dist.append(p["psnr"])
            elif not isinstance(p, (str, bytes)) and hasattr(p, "__len__") and len(p) == 2:
                rate.append(p[0])
                dist.append(p[1])
            else:
                raise InputError(f"curve {label}: points must be (bpp, psnr) pairs or dicts, got {p!r}")
    else:
        raise InputError(f"curve {label}: expected a list of points or a dict, got {type(curve).__name__}")
    r = np.asarray(rate, dtype=np.float64)
    d = np.asarray(dist, dtype=np.float64)
    if r.shape != d.shape:
        raise InputError(f"curve {label}: {r.size} rates but {d.size} PSNR values")
    if not (np.isfinite(r).all() and np.isfinite(d).all()):
        raise InputError(f"curve {label}: rates and PSNRs must be finite (drop lossless points with inf PSNR)")
    if (r <= 0).any():
        raise InputError(f"curve {label}: rates must be positive for a log-rate fit")
    if np.unique(d).size < 3 or np.unique(r).size < 3:
        raise InputError(f"curve {label}: needs at least 3 distinct points, got {np.unique(d).size}")
    return r, d


def _fit(x: np.ndarray, y: np.ndarray):
    # Cubic as Bjøntegaard specifies; with only 3 points a quadratic (the highest degree they determine).
    # Polynomial.fit rescales x to [-1, 1], which keeps the fit well conditioned; integ() undoes the scaling.
    deg = min(3, np.unique(x).size - 1)
    return np.polynomial.Polynomial.fit(x, y, deg)


def _mean_over(poly, lo: float, hi: float) -> float:
    integ = poly.integ()
    return float((integ(hi) - integ(lo)) / (hi - lo))


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    lo = max(a.min(), b.min())
    hi = min(a.max(), b.max())
    if not hi > lo:
        raise InputError(
            f"curves do not overlap in {what}: [{a.min():.4g}, {a.max():.4g}] vs [{b.min():.4g}, {b.max():.4g}]"
        )
    return float(lo), float(hi)


def bd_rate(curve_a: Curve, curve_b: Curve) -> float:
    """Bjøntegaard delta rate of ``curve_b`` relative to ``curve_a``, in percent (negative: b needs fewer bits).

    log(rate) is fitted as a cubic polynomial of PSNR for each curve (quadratic when a curve has only 3 points),
    both fits are averaged over the PSNR interval the curves share, and the mean log-rate difference is turned back
    into a ratio. Raises ``InputError`` (a ``ValueError``) for fewer than 3 points, non-finite or non-positive
    values, or curves whose PSNR ranges do not overlap: a silent NaN would too easily end up in a results table.
    """
    ra, da = _curve_arrays(curve_a, "a")
    rb, db = _curve_arrays(curve_b, "b")
    lo, hi = _overlap(da, db, "PSNR")
    fa = _fit(da, np.log(ra))
    fb = _fit(db, np.log(rb))
    diff = _mean_over(fb, lo, hi) - _mean_over(fa, lo, hi)
    return (math.exp(diff) - 1.0) * 100.0


def bd_psnr(curve_a: Curve, curve_b: Curve) -> float:
    """Bjøntegaard delta PSNR (dB) of ``curve_b`` relative to ``curve_a`` (positive: b is better at equal rate).

    PSNR is fitted as a cubic polynomial of log(rate) and averaged over the shared log-rate interval. Same input
    rules and errors as ``bd_rate``.
    """
    ra, da = _curve_arrays(curve_a, "a")
    rb, db = _curve_arrays(curve_b, "b")
    la, lb = np.log(ra), np.log(rb)
    lo, hi = _overlap(la, lb, "log-rate")
    fa = _fit(la, da)
    fb = _fit(lb, db)
    return _mean_over(fb, lo, hi) - _mean_over(fa, lo, hi)
