"""Compiled kernels (C ABI via ctypes) with autograd wrappers and pure-torch references.

See gaussian_raster.py for the 2D Gaussian rasteriser and _loader.py for how the libraries are found/built.
"""

from ._loader import build_cpu_kernel, build_cuda_kernel
from ._loader import status as kernel_status
from .gaussian_raster import (
    available_backends,
    count_pairs,
    gaussian_setup,
    rasterize_alpha_torch,
    rasterize_gaussians,
    rasterize_torch,
    render_region,
)

__all__ = [
    "available_backends", "build_cpu_kernel", "build_cuda_kernel", "count_pairs", "gaussian_setup",
    "kernel_status", "rasterize_alpha_torch", "rasterize_gaussians", "rasterize_torch", "render_region",
]
