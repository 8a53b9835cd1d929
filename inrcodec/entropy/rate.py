"""Differentiable rate proxies for training: the bits the coder's parametric models (QuantizedLaplace,
QuantizedGaussian: a continuous density integrated over the unit bin around each integer) would spend on x.

Both work in the log domain on the tail side of the distribution (|x - mean|), so far-tail symbols keep a finite,
informative gradient instead of underflowing to log(0).
"""

from __future__ import annotations

import math

import torch

# The coder cannot give a symbol less than about 2**-24 of the mass (24-bit fixed point), so a proxy that charges
# more than this for one symbol only misleads the optimiser.
MAX_BITS_PER_SYMBOL = 24.0
_MIN_SCALE = 1e-6
_LN2 = math.log(2.0)


def _prep(x, scale, mean):
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device).clamp_min(_MIN_SCALE)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    return (x - mean).abs(), scale


def _finish(log_p: torch.Tensor, reduce: bool) -> torch.Tensor:
    bits = (-log_p / _LN2).clamp(min=0.0)
    # cap the value at what the coder really spends, but keep the uncapped gradient: with a hard clamp, symbols far
    # out in the tail (e.g. while a learned scale is still far too small) would stop pulling the scale up
    bits = bits - (bits - MAX_BITS_PER_SYMBOL).clamp(min=0.0).detach()
    return bits.sum() if reduce else bits


def laplace_rate_bits(x: torch.Tensor, scale, mean=0.0, reduce: bool = True) -> torch.Tensor:
    """Sum over x of -log2(CDF(x + 1/2) - CDF(x - 1/2)) for a Laplace(mean, scale); ``reduce=False`` gives
    per-element bits. x need not be integer (use with ``fake_quant``)."""
    d, b = _prep(x, scale, mean)
    lo, hi = d - 0.5, d + 0.5  # the bin on the upper side of the mean (symmetry)
    # bin entirely in the tail (d >= 1/2): P = 1/2 exp(-lo/b) (1 - exp(-1/b))
    lo_t = lo.clamp(min=0.0)
    log_tail = math.log(0.5) - lo_t / b + torch.log(-torch.expm1(-1.0 / b))
    # bin straddling the mean (d < 1/2): P = 1 - 1/2 exp(lo/b) - 1/2 exp(-hi/b) = -1/2 (expm1(lo/b) + expm1(-hi/b))
    lo_c = lo.clamp(max=0.0)
    p_centre = -0.5 * (torch.expm1(lo_c / b) + torch.expm1(-hi / b))
    log_centre = torch.log(p_centre.clamp(min=1e-30))
    return _finish(torch.where(lo >= 0, log_tail, log_centre), reduce)


def gaussian_rate_bits(x: torch.Tensor, scale, mean=0.0, reduce: bool = True) -> torch.Tensor:
    """Sum over x of -log2(Phi((x - mean + 1/2)/s) - Phi((x - mean - 1/2)/s)); ``scale`` is the std s."""
    d, s = _prep(x, scale, mean)
    # upper-side bin mirrored to the lower tail: P = Phi(a) - Phi(c), c = -(d + 1/2)/s < a = -(d - 1/2)/s
    a = -(d - 0.5) / s
    c = -(d + 0.5) / s
    la, lc = torch.special.log_ndtr(a), torch.special.log_ndtr(c)
    log_p = la + torch.log((-torch.expm1(lc - la)).clamp(min=1e-30))
    return _finish(log_p, reduce)
