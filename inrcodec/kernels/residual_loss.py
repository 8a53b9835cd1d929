"""Compiled residual-pricing loss of the ``gaussian+dct`` base (``cuda/residual_loss_cpu.cpp``): value and gradient
of ``models.residual_loss.residual_rd_loss`` (plus, optionally, a weighted MSE) in one pass over the 8x8 blocks,
float32. Reference: the torch forms in ``models/residual_loss.py`` (tests/test_residual_loss_kernel.py holds the
kernel to them). Without the compiled library ``loss_and_grad`` returns None and the caller runs the torch form.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import torch

from . import _loader
from .dct_residual import _threads


@functools.lru_cache(maxsize=1)
def _matrix() -> np.ndarray:
    from ..models.mcdct import _forward_matrix

    return np.ascontiguousarray(_forward_matrix(), dtype=np.float32)


def loss_and_grad(pred: torch.Tensor, ref: torch.Tensor, steps: list[float], weights: list[float], coded0: float,
                  klog: float, scale: float, norm: float,
                  mse_weight: float) -> tuple[float, float, torch.Tensor] | None:
    """(sum of J over the coefficients, sum of squared errors of ``ref - pred``, d loss / d pred) for (h, w, c)
    float32 images, the loss being ``norm * sum J + mse_weight * mean squared error``; None where the kernel
    cannot run (no library, another dtype or channel count)."""
    lib = _loader.cpu_library()
    if lib is None or pred.dtype != torch.float32 or ref.dtype != torch.float32 or pred.dim() != 3:
        return None
    h, w, c = pred.shape
    if c not in (1, 3) or ref.shape != pred.shape or pred.device.type != "cpu" or min(h, w) < 1:
        return None
    p = pred.detach().contiguous()
    r = ref.detach().contiguous()
    grad = torch.empty_like(p)
    st = np.asarray(steps, dtype=np.float32)
    wt = np.asarray(weights, dtype=np.float32)
    out = np.zeros(2, dtype=np.float64)
    vp = ctypes.c_void_p
    rc = lib.gr_residual_loss_cpu(vp(p.data_ptr()), vp(r.data_ptr()), vp(grad.data_ptr()), h, w, c,
                                  vp(_matrix().ctypes.data), vp(st.ctypes.data), vp(wt.ctypes.data),
                                  ctypes.c_float(coded0), ctypes.c_float(klog), ctypes.c_float(scale),
                                  ctypes.c_float(norm), ctypes.c_float(mse_weight), vp(out.ctypes.data),
                                  _threads(h * w))
    return (float(out[0]), float(out[1]), grad) if rc == 0 else None
