"""Differentiable rasterisation of 2D Gaussians by accumulated summation (GaussianImage, ECCV 2024).

    I(p) = sum_i c_i * exp(-q_i(p) / 2),   q_i(p) = d^T Sigma_i^{-1} d,   d = p - mu_i,

summed over the Gaussians whose 3-sigma ellipse (q <= 9) contains the pixel centre p = (x + 0.5, y + 0.5).

Conventions (all backends):
  * ``means`` (N, 2): (x, y) in pixel units of the output grid, origin at the image's top-left corner, so pixel
    (row y, column x) has its centre at (x + 0.5, y + 0.5).
  * ``chol`` (N, 3): (l11, l21, l22), Sigma = L L^T + 1e-4 I with L = [[l11, 0], [l21, l22]] in pixels. Any real
    values are allowed; the epsilon keeps l11 = 0 or l22 = 0 well defined (no clamping, smooth gradients).
  * ``colors`` (N, C): any C >= 1 (no opacity: the accumulated-sum model folds it into the colour).
  * A Gaussian with a non-finite mean or factor contributes nothing and gets zero gradients.
  * Output (H, W, C) float32, differentiable w.r.t. means, chol and colors.

Backends: "torch" (``rasterize_torch``, the reference and fallback), "cpu" (C++/OpenMP kernel), "cuda" (CUDA
kernel), "auto" (cuda for CUDA tensors, cpu for CPU float32 tensors, torch when no kernel is available or the
dtype is not float32), and "gsplat": gsplat's ``rasterize_to_pixels``, which alpha-composites front to back
(index order) instead of summing -- a different image model, see ``rasterize_alpha_torch``.

The cutoff, the covariance epsilon and the exact order of the float32 operations that decide it are shared with
cuda/gaussian_raster_math.h, so the kernels enumerate exactly the same (Gaussian, pixel) pairs as the reference
and differ from it only by float rounding of exp() and of the order of summation.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.utils.checkpoint
from torch import Tensor

from . import _loader

# Mirrors of the constants in cuda/gaussian_raster_math.h (a test parses the header and compares).
TILE = 16
QMAX = 9.0  # 3-sigma ellipse: weight >= exp(-4.5) ~ 0.011 inside, exactly 0 outside
COV_EPS = 1.0e-4  # added to the diagonal of Sigma, in pixel^2
BBOX_REL = 1.0009765625  # bbox extent = sqrt(QMAX * var) * BBOX_REL + BBOX_ABS
BBOX_ABS = 0.015625
CUDA_MAX_CHANNELS = 4  # the CUDA kernel is templated on C <= 4; wider colours are rendered in channel groups
ALPHA_MIN = 1.0 / 255.0  # alpha-blended variant (gsplat's rules)
ALPHA_MAX = 0.999
T_MIN = 1e-4

Backend = Literal["auto", "torch", "cpu", "cuda", "gsplat"]
BACKENDS = ("auto", "torch", "cpu", "cuda", "gsplat")


# ----------------------------------------------------------------------------------------------------------------
# torch reference


def _const(v: float, like: Tensor) -> Tensor:
    # Constants as 0-d tensors of the working dtype: float32 math then matches the C++ `1.0e-4f` etc. exactly.
    return torch.tensor(v, dtype=like.dtype, device=like.device)


def gaussian_setup(means: Tensor, chol: Tensor, height: int, width: int) -> dict[str, Tensor]:
    """Per-Gaussian conic, bbox and validity, with the float operations of ``gr_setup`` in the header."""
    mx, my = means[:, 0], means[:, 1]
    l11, l21, l22 = chol[:, 0], chol[:, 1], chol[:, 2]
    eps, qmax = _const(COV_EPS, chol), _const(QMAX, chol)
    s11 = l11 * l11 + eps
    s12 = l11 * l21
    t = l21 * l21 + l22 * l22
    s22 = t + eps
    p = l11 * l22
    det = p * p + eps * (s11 + t)
    A = s22 / det
    B = -(s12 / det)
    C = s11 / det
    with torch.no_grad():
        rel, ab, half = _const(BBOX_REL, chol), _const(BBOX_ABS, chol), _const(0.5, chol)
        ex = torch.sqrt(qmax * s11) * rel + ab
        ey = torch.sqrt(qmax * s22) * rel + ab
        finite = torch.stack([mx, my, l11, l21, l22, A, B, C, ex, ey], 1).isfinite().all(1)
        z = torch.zeros_like(ex)
        mxs, mys = torch.where(finite, mx, z), torch.where(finite, my, z)
        exs, eys = torch.where(finite, ex, z), torch.where(finite, ey, z)
        x0 = torch.ceil((mxs - exs) - half).clamp(0, width).long()
        x1 = torch.floor((mxs + exs) - half).clamp(-1, width - 1).long()
        y0 = torch.ceil((mys - eys) - half).clamp(0, height).long()
        y1 = torch.floor((mys + eys) - half).clamp(-1, height - 1).long()
        valid = finite & (x0 <= x1) & (y0 <= y1)
    return dict(mx=mx, my=my, A=A, B=B, C=C, x0=x0, x1=x1, y0=y0, y1=y1, ex=ex, ey=ey, valid=valid)


def _q(A: Tensor, B: Tensor, C: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    # The one operation order of gr_q_row: q = (A*dx + (2B)*dy) * dx + (C*dy)*dy.
    return (A * dx + (B + B) * dy) * dx + (C * dy) * dy


def _chunk_image(mx, my, A, B, C, colors, x0, x1, y0, y1, height: int, width: int) -> Tensor:
    """Sum of the contributions of one chunk of Gaussians, as a flat (H*W, C) image."""
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    cnt = bw * bh
    gid = torch.repeat_interleave(torch.arange(len(cnt), device=cnt.device), cnt)
    start = torch.cumsum(cnt, 0) - cnt
    k = torch.arange(gid.numel(), device=cnt.device) - start[gid]
    px = x0[gid] + k % bw[gid]
    py = y0[gid] + k // bw[gid]
    half = _const(0.5, mx)
    dx = (px.to(mx.dtype) + half) - mx[gid]
    dy = (py.to(mx.dtype) + half) - my[gid]
    q = _q(A[gid], B[gid], C[gid], dx, dy)
    keep = q <= _const(QMAX, q)
    gid, pix, q = gid[keep], (py * width + px)[keep], q[keep]
    w = torch.exp(_const(-0.5, q) * q)
    contrib = w[:, None] * colors[gid]
    out = torch.zeros(height * width, colors.shape[1], dtype=contrib.dtype, device=contrib.device)
    return out.index_add(0, pix, contrib)


def rasterize_torch(means: Tensor, chol: Tensor, colors: Tensor, height: int, width: int, *,
                    max_pairs: int = 1 << 21) -> Tensor:
    """Pure-torch reference (and fallback): same model, cutoff and float32 decisions as the kernels.

    Enumerates (Gaussian, pixel) pairs inside each Gaussian's bbox in chunks of about ``max_pairs`` pairs;
    with autograd on, each chunk is checkpointed so memory stays bounded by the chunk, not the image.
    Works in the dtype of the inputs (float64 for gradcheck).
    """
    height, width = int(height), int(width)
    n, nc = colors.shape
    out = torch.zeros(height * width, nc, dtype=colors.dtype, device=colors.device)
    # Empty slices sum to an exact 0 that keeps the output attached to all inputs (zero gradients), even when
    # some of them are NaN (0 * NaN would not be 0).
    zero = means[:0].sum() + chol[:0].sum() + colors[:0].sum()
    if n == 0 or height == 0 or width == 0 or nc == 0:
        return out.reshape(height, width, nc) + zero
    s = gaussian_setup(means, chol, height, width)
    idx = torch.nonzero(s["valid"]).flatten()
    if idx.numel() == 0:
        return out.reshape(height, width, nc) + zero
    cnt = ((s["x1"] - s["x0"] + 1) * (s["y1"] - s["y0"] + 1))[idx]
    ends = torch.cumsum(cnt, 0)
    # Chunks of whole Gaussians holding about max_pairs pairs each (a larger Gaussian gets a chunk of its own).
    bounds = [0]
    while bounds[-1] < len(idx):
        a = bounds[-1]
        base = int(ends[a - 1]) if a > 0 else 0
        b = int(torch.searchsorted(ends, torch.tensor(base + max_pairs, device=ends.device), right=True))
        bounds.append(max(b, a + 1))
    grad = torch.is_grad_enabled() and (means.requires_grad or chol.requires_grad or colors.requires_grad)
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = idx[a:b]
        args = (s["mx"][sel], s["my"][sel], s["A"][sel], s["B"][sel], s["C"][sel], colors[sel],
                s["x0"][sel], s["x1"][sel], s["y0"][sel], s["y1"][sel], height, width)
        if grad and len(bounds) > 2:
            part = torch.utils.checkpoint.checkpoint(_chunk_image, *args, use_reentrant=False)
        else:
            part = _chunk_image(*args)
        out = out + part
    return out.reshape(height, width, nc)


def rasterize_alpha_torch(means: Tensor, chol: Tensor, colors: Tensor, height: int, width: int,
                          opacities: Tensor | None = None, *, max_elems: int = 1 << 23) -> Tensor:
    """Alpha-blended variant (the image model of gsplat's ``rasterize_to_pixels``), dense torch reference.

    Front to back in index order: alpha_i = min(0.999, o_i * w_i), skipped when alpha_i < 1/255 or outside the
    3-sigma ellipse; a pixel stops when its transmittance would fall to 1e-4 or below. gsplat itself selects
    Gaussians by tiles of its bounding boxes, so it may also include pixels just outside the 3-sigma rim
    (where alpha >= 1/255): expect agreement away from rims, not bit for bit. Dense in pixels x Gaussians
    (chunked over pixels): meant for checks and small images.
    """
    height, width = int(height), int(width)
    n, nc = colors.shape
    if opacities is None:
        opacities = torch.ones(n, dtype=colors.dtype, device=colors.device)
    s = gaussian_setup(means, chol, height, width)
    ys, xs = torch.meshgrid(torch.arange(height, device=means.device), torch.arange(width, device=means.device),
                            indexing="ij")
    half = _const(0.5, means)
    px = xs.reshape(-1).to(means.dtype) + half
    py = ys.reshape(-1).to(means.dtype) + half
    rows = max(1, max_elems // max(n, 1))
    parts = []
    for a in range(0, px.numel(), rows):
        dx = px[a:a + rows, None] - s["mx"][None]
        dy = py[a:a + rows, None] - s["my"][None]
        q = _q(s["A"][None], s["B"][None], s["C"][None], dx, dy)
        inside = (q <= QMAX) & s["valid"][None]
        alpha = torch.clamp(opacities[None] * torch.exp(-0.5 * torch.where(inside, q, torch.zeros_like(q))),
                            max=ALPHA_MAX)
        alpha = torch.where(inside & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
        trans = torch.cumprod(1 - alpha, dim=1)
        keep = trans > T_MIN  # a prefix along the Gaussian axis: transmittance only decreases
        before = torch.cat([torch.ones_like(trans[:, :1]), trans[:, :-1]], 1)
        weight = torch.where(keep, alpha * before, torch.zeros_like(alpha))
        parts.append(weight @ colors)
    if not parts:
        return torch.zeros(height, width, nc, dtype=colors.dtype, device=colors.device)
    return torch.cat(parts, 0).reshape(height, width, nc)


# ----------------------------------------------------------------------------------------------------------------
# compiled kernels


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def _check_rc(rc: int, what: str, lib=None) -> None:
    if rc != 0:
        msg = {1: "invalid sizes", 2: "out of memory"}.get(rc, f"error {rc}")
        if lib is not None and hasattr(lib, "gr_cuda_error_string"):
            msg = lib.gr_cuda_error_string(rc).decode(errors="replace")
        raise RuntimeError(f"{what} failed: {msg}")


class _Bins:
    """Owns a binning handle of the CPU library (kept from a forward for its backward)."""

    def __init__(self, lib, ptr: int):
        self._lib, self.ptr = lib, ptr

    def __del__(self):
        ptr, self.ptr = self.ptr, None
        if ptr:
            try:
                self._lib.gr_bins_free(ptr)
            except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to free into
                pass


def _args(means: Tensor, chol: Tensor, colors: Tensor, height: int, width: int, *rest: Tensor) -> tuple:
    """The leading arguments of every rasteriser entry point: the Gaussians' pointers, their count and channels, the
    image size, then the pointers of ``rest`` (output, gradients)."""
    n, nc = colors.shape
    return (_ptr(means), _ptr(chol), _ptr(colors), n, nc, height, width, *map(_ptr, rest))


def _backward_tensors(ctx, grad_out: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, Tensor, Tensor]]:
    """A backward's inputs (the saved Gaussians, the float32 upstream gradient) and the empty gradients it fills;
    tensors, not pointers, so that the caller keeps them alive through the kernel call."""
    means, chol, colors = ctx.saved_tensors
    grads = torch.empty_like(means), torch.empty_like(chol), torch.empty_like(colors)
    return (means, chol, colors, grad_out.contiguous().to(torch.float32)), grads


class _CpuRaster(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, chol, colors, height, width, keep_bins):
        lib = _loader.cpu_library()
        n, nc = colors.shape
        nt = torch.get_num_threads()
        bins = None
        if keep_bins:  # the backward will reuse the tile lists instead of rebuilding them
            ptr = lib.gr_bins_create(_ptr(means), _ptr(chol), n, height, width, nt)
            bins = _Bins(lib, ptr) if ptr else None
        out = torch.empty(height, width, nc, dtype=torch.float32)
        rc = lib.gr_forward_cpu(*_args(means, chol, colors, height, width, out), nt, bins.ptr if bins else None)
        _check_rc(rc, "CPU rasteriser forward")
        ctx.save_for_backward(means, chol, colors)
        ctx.size = (height, width)
        ctx.bins = bins
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        (means, chol, colors, g), grads = _backward_tensors(ctx, grad_out)
        rc = _loader.cpu_library().gr_backward_cpu(*_args(means, chol, colors, *ctx.size, g, *grads),
                                                   torch.get_num_threads(), ctx.bins.ptr if ctx.bins else None)
        _check_rc(rc, "CPU rasteriser backward")
        return (*grads, None, None, None)


class _CudaRaster(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, chol, colors, height, width):
        lib = _loader.cuda_library()
        out = torch.empty(height, width, colors.shape[1], dtype=torch.float32, device=means.device)
        stream = torch.cuda.current_stream(means.device).cuda_stream
        rc = lib.gr_forward_cuda(*_args(means, chol, colors, height, width, out), means.device.index, stream)
        _check_rc(rc, "CUDA rasteriser forward", lib)
        ctx.save_for_backward(means, chol, colors)
        ctx.size = (height, width)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        (means, chol, colors, g), grads = _backward_tensors(ctx, grad_out)
        lib = _loader.cuda_library()
        stream = torch.cuda.current_stream(means.device).cuda_stream
        rc = lib.gr_backward_cuda(*_args(means, chol, colors, *ctx.size, g, *grads), means.device.index, stream)
        _check_rc(rc, "CUDA rasteriser backward", lib)
        return (*grads, None, None)


def _rasterize_cuda(means, chol, colors, height, width):
    nc = colors.shape[1]
    if nc <= CUDA_MAX_CHANNELS:
        return _CudaRaster.apply(means, chol, colors, height, width)
    # Channel groups: autograd adds up the mean/chol gradients of the groups.
    parts = [_CudaRaster.apply(means, chol, colors[:, a:a + CUDA_MAX_CHANNELS].contiguous(), height, width)
             for a in range(0, nc, CUDA_MAX_CHANNELS)]
    return torch.cat(parts, dim=2)


def _rasterize_gsplat(means, chol, colors, height, width, opacities=None):
    # Imported only here, for CUDA tensors: on a CPU machine gsplat's first op would try a JIT build.
    from gsplat.cuda._wrapper import isect_offset_encode, isect_tiles, rasterize_to_pixels

    n = means.shape[0]
    s = gaussian_setup(means, chol, height, width)
    conics = torch.stack([s["A"], s["B"], s["C"]], 1)
    radii = torch.stack([torch.ceil(s["ex"]), torch.ceil(s["ey"])], 1)
    radii = torch.where(s["valid"][:, None], radii, torch.zeros_like(radii)).to(torch.int32)
    if opacities is None:
        opacities = torch.ones(n, dtype=means.dtype, device=means.device)
    depths = torch.arange(n, dtype=torch.float32, device=means.device)  # index order = front to back
    tw, th = math.ceil(width / TILE), math.ceil(height / TILE)
    _, isect_ids, flatten_ids = isect_tiles(means[None], radii[None], depths[None], TILE, tw, th)
    offsets = isect_offset_encode(isect_ids, 1, tw, th)
    img, _ = rasterize_to_pixels(means[None].contiguous(), conics[None].contiguous(), colors[None].contiguous(),
                                 opacities[None].contiguous(), width, height, TILE, offsets, flatten_ids)
    return img[0]


def _gsplat_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("gsplat") is not None


def available_backends() -> dict[str, bool]:
    """Which backends can run here (loads, or builds on demand, the compiled CPU kernel)."""
    cuda = torch.cuda.is_available()
    return {
        "torch": True,
        "cpu": _loader.cpu_library() is not None,
        "cuda": cuda and _loader.cuda_library() is not None,
        "gsplat": cuda and _gsplat_importable(),
    }


def _validate(means: Tensor, chol: Tensor, colors: Tensor, height: int, width: int) -> None:
    if means.dim() != 2 or means.shape[1] != 2:
        raise ValueError(f"means must be (N, 2), got {tuple(means.shape)}")
    n = means.shape[0]
    if chol.shape != (n, 3):
        raise ValueError(f"chol must be ({n}, 3), got {tuple(chol.shape)}")
    if colors.dim() != 2 or colors.shape[0] != n:
        raise ValueError(f"colors must be ({n}, C), got {tuple(colors.shape)}")
    if not (means.device == chol.device == colors.device):
        raise ValueError("means, chol and colors must be on the same device")
    if int(height) < 0 or int(width) < 0 or int(height) * int(width) > 1 << 31:
        raise ValueError(f"bad image size {height}x{width}")


def rasterize_gaussians(means: Tensor, chol: Tensor, colors: Tensor, height: int, width: int,
                        backend: Backend = "auto", *, opacities: Tensor | None = None) -> Tensor:
    """Render N Gaussians into an (height, width, C) image; see the module docstring for conventions.

    ``opacities`` (N,) is used by the alpha-blended "gsplat" backend only (default all ones).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    _validate(means, chol, colors, height, width)
    height, width = int(height), int(width)
    f32 = means.dtype == chol.dtype == colors.dtype == torch.float32
    if backend == "auto":
        if f32 and means.is_cuda and _loader.cuda_library() is not None:
            backend = "cuda"
        elif f32 and means.device.type == "cpu" and _loader.cpu_library() is not None:
            backend = "cpu"
        else:
            backend = "torch"
    if backend == "torch":
        return rasterize_torch(means, chol, colors, height, width)
    if backend == "gsplat":
        if not means.is_cuda:
            raise ValueError("backend 'gsplat' needs CUDA tensors (gsplat has no CPU rasteriser)")
        return _rasterize_gsplat(means, chol, colors, height, width, opacities)
    if not f32:
        raise TypeError(f"backend {backend!r} takes float32 tensors; use backend='torch' for other dtypes")
    means, chol, colors = means.contiguous(), chol.contiguous(), colors.contiguous()
    if colors.shape[1] == 0 or height == 0 or width == 0:
        return rasterize_torch(means, chol, colors, height, width)
    if backend == "cpu":
        if means.device.type != "cpu":
            raise ValueError("backend 'cpu' needs CPU tensors")
        if _loader.cpu_library() is None:
            raise RuntimeError("compiled CPU rasteriser unavailable: " + str(_loader.status()["cpu_error"]))
        keep = torch.is_grad_enabled() and (means.requires_grad or chol.requires_grad or colors.requires_grad)
        return _CpuRaster.apply(means, chol, colors, height, width, keep)
    if not means.is_cuda:
        raise ValueError("backend 'cuda' needs CUDA tensors")
    if _loader.cuda_library() is None:
        raise RuntimeError("CUDA rasteriser unavailable: " + str(_loader.status()["cuda_error"]))
    return _rasterize_cuda(means, chol, colors, height, width)


def render_region(means: Tensor, chol: Tensor, colors: Tensor, y0: int, x0: int, height: int, width: int, *,
                  scale: float = 1.0, backend: Backend = "auto", opacities: Tensor | None = None) -> Tensor:
    """Render the (height, width) window at top-left pixel (y0, x0) of the image scaled by ``scale``.

    The scaled image has pixel (row y, column x) centred at ((x + 0.5) / scale, (y + 0.5) / scale) in the
    original pixel units, i.e. means and Cholesky factors are multiplied by ``scale`` (decode at --scale 2)
    and the window is a crop of that grid (tiled decoding, previews). y0, x0 may be negative or beyond it.
    """
    s = float(scale)
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"scale must be a positive number, got {scale}")
    if s != 1.0:
        means = means * s
        chol = chol * s
    if x0 != 0 or y0 != 0:
        means = means - torch.tensor([float(x0), float(y0)], dtype=means.dtype, device=means.device)
    return rasterize_gaussians(means, chol, colors, height, width, backend, opacities=opacities)


def count_pairs(means: Tensor, chol: Tensor, height: int, width: int) -> int:
    """Number of (tile, Gaussian) pairs the compiled CPU kernel's binning produces (work estimate)."""
    lib = _loader.cpu_library()
    if lib is None:
        raise RuntimeError("compiled CPU rasteriser unavailable")
    m = means.detach().to("cpu", torch.float32).contiguous()
    c = chol.detach().to("cpu", torch.float32).contiguous()
    r = lib.gr_count_pairs_cpu(_ptr(m), _ptr(c), m.shape[0], int(height), int(width), torch.get_num_threads())
    if r < 0:
        raise RuntimeError("binning failed")
    return int(r)
