"""Compiled CPU kernels of the latent-grid model (``cuda/latentgrid_cpu.cpp``; this module builds and loads the
library for all of them) and the first of them: the fused per-sample MLP (Linear, ReLU, ..., Linear), its thin
autograd wrapper, and the pure-torch reference it is tested against.

``mlp(x, layers)`` evaluates ``layers`` (a list of ``torch.nn.Linear``, ReLU between them) on ``x`` of shape
(n, d_in) with any 2-D strides — a feature-major (d_in, n) buffer viewed as ``.t()`` avoids a transpose copy — and
returns (n, d_out), feature-major (``out.t()`` is contiguous) when ``feature_major=True``. The kernel is used on
CPU float32 tensors when it can be built; otherwise (no compiler, ``INRCODEC_NO_KERNEL_BUILD=1``, other devices or
dtypes) the torch reference runs, with the same results to float rounding.

The library is compiled on first use with the system C++ compiler (OpenMP, ``-O3 -march=native``: it is built on
and for the machine that runs it) into ``$INRCODEC_CACHE_DIR/kernels`` (a few seconds once), keyed by a hash of
source, flags and CPU model. ``INRCODEC_LG_SIMD`` (or ``library(level)``) picks another instruction-set level
instead of ``native``: ``avx512`` (x86-64-v4), ``avx2`` (x86-64-v3, AVX2 + FMA) or ``baseline`` (x86-64, SSE2),
each only where this CPU runs it (``supported_levels()``); the kernels choose their vector width and register
tiles from what the level enables (512-bit with AVX-512, else 256-bit), so tests can run every level the machine
has against the torch references.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import subprocess
import threading
import warnings
from pathlib import Path

import torch

from . import _loader

SOURCE = "latentgrid_cpu.cpp"
ABI_VERSION = 4
# -mtune=generic: GCC 12 tunes -march=native on Zen 4 as znver3, whose code for the convolutions' unaligned row
# loads ran 25-40 % slower (residual blocks 4.6 / 11.9 ms forward / backward against 3.4 / 9.7, kernel bench); the
# instruction set is still the machine's (or the level's).
FLAGS = ["-O3", "-std=c++17", "-fPIC", "-march=native", "-mtune=generic", "-ffast-math", "-fopenmp"]
# The same source built a second time for what the decoded output depends on (render: the synthesis forward,
# convolutions, upsampling; decode: the exact context MLP and features): no -ffast-math and no FMA contraction,
# so every float op is the one written, in the order written. Per lane the kernels do the same arithmetic at every
# vector width, so this build renders the same bits at every SIMD level (and on any IEEE-754 machine); the
# -ffast-math build (training: FMA, vector libm) differs from it by float rounding.
STRICT_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-march=native", "-mtune=generic", "-ffp-contract=off", "-fopenmp"]

# -march per level; "native" is the default (the machine that builds is the machine that runs)
SIMD_LEVELS = {"native": "-march=native", "avx512": "-march=x86-64-v4", "avx2": "-march=x86-64-v3",
               "baseline": "-march=x86-64"}
# /proc/cpuinfo flags each x86 level needs (x86-64-v4 = AVX-512 F/BW/CD/DQ/VL on top of v3)
_LEVEL_FLAGS = {"avx2": {"avx2", "fma", "bmi2", "f16c", "movbe"},
                "avx512": {"avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
                "baseline": {"sse2"}}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_error: str | None = None
_strict_lib: ctypes.CDLL | None = None
_strict_tried = False
_by_level: dict[tuple[str, bool], ctypes.CDLL] = {}


def _cpu_id() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def simd_level() -> str:
    """The level the library is built for: ``INRCODEC_LG_SIMD`` (default ``native``)."""
    level = os.environ.get("INRCODEC_LG_SIMD", "") or "native"
    if level not in SIMD_LEVELS:
        raise RuntimeError(f"INRCODEC_LG_SIMD={level!r}: not one of {', '.join(SIMD_LEVELS)}")
    return level


def supported_levels() -> list[str]:
    """The SIMD levels this machine can build and run (``native`` always; the x86 levels where its flags allow)."""
    levels = ["native"]
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return levels
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        return levels
    return levels + [lv for lv in ("avx512", "avx2", "baseline") if _LEVEL_FLAGS[lv] <= flags]


def build(force: bool = False, src_dir: Path = _loader.SRC_DIR, level: str | None = None,
          strict: bool = False) -> Path:
    """Compile the kernel library (``strict``: the render/decode build, STRICT_FLAGS) for SIMD ``level``."""
    cxx = _loader._find_cxx()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++/clang++)")
    level = level or simd_level()
    flags = [f for f in (STRICT_FLAGS if strict else FLAGS) if not f.startswith("-march=")] + [SIMD_LEVELS[level]]
    h = _loader.source_hash((SOURCE,), src_dir, extra=" ".join(flags) + _cpu_id())
    if h is None:
        raise RuntimeError(f"kernel source {SOURCE} not found in {src_dir}")
    out = _loader.cache_dir() / f"_latentgrid_cpu-{level}{'-strict' if strict else ''}-{h}.so"
    if out.is_file() and not force:
        return out
    base = [cxx, *flags, "-shared", str(src_dir / SOURCE)]
    try:
        _loader._compile(base, out, timeout=300)
    except RuntimeError:  # no OpenMP: single-threaded kernel
        _loader._compile([f for f in base if f != "-fopenmp"], out, timeout=300)
    return out


def _setup(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.lg_mlp_abi_version.restype = i32
    if lib.lg_mlp_abi_version() != ABI_VERSION:
        raise OSError("latentgrid MLP kernel: ABI version mismatch")
    lib.lg_mlp_has_openmp.restype = i32
    lib.lg_simd_width.restype = i32
    lib.lg_mlp_forward.restype = i32
    lib.lg_mlp_forward.argtypes = [p, i64, i64, i64, i32, p, p, p, i64, i64, i32]
    lib.lg_mlp_backward.restype = i32
    lib.lg_mlp_backward.argtypes = [p, i64, i64, i64, i32, p, p, p, i64, i64, p, i64, i64, p, i32]
    f32 = ctypes.c_float
    lib.lg_laplace_rate.restype = i32
    lib.lg_laplace_rate.argtypes = [p, p, i64, f32, f32, f32, i32, f32, p, p, p, i32]
    lib.lg_context2d_forward.restype = i32
    lib.lg_context2d_forward.argtypes = [p, p, i32, i32, i32, i32, f32, p, i32, p, i32]
    lib.lg_context2d_backward.restype = i32
    lib.lg_context2d_backward.argtypes = [p, i32, i32, i32, i32, p, i32, p, p, i32]
    lib.lg_upsample2d_forward.restype = i32
    lib.lg_upsample2d_forward.argtypes = [p, i32, i32, p, p, p, p, i32, i32, i32, p, p, i32]
    lib.lg_upsample2d_backward.restype = i32
    lib.lg_upsample2d_backward.argtypes = [p, i32, i32, p, p, p, p, i32, i32, i32, p, p, i32]
    lib.lg_conv2d_forward.restype = i32
    lib.lg_conv2d_forward.argtypes = [p, i32, i32, i32, p, p, i32, p, p, i32]
    lib.lg_conv2d_backward.restype = i32
    lib.lg_conv2d_backward.argtypes = [p, p, i32, i32, i32, p, i32, p, p, p, p, p, i32]
    lib.lg_conv2d_residual_forward.restype = i32
    lib.lg_conv2d_residual_forward.argtypes = [p, i32, i32, i32, p, p, i32, i32, p, p, i32]
    lib.lg_conv2d_residual_backward.restype = i32
    lib.lg_conv2d_residual_backward.argtypes = [p, p, p, i32, i32, i32, p, i32, i32, p, p, p, p, p, p, i32]
    lib.lg_context2d_f64.restype = i64
    lib.lg_context2d_f64.argtypes = [p, p, i32, i32, i32, i32, ctypes.c_double, i32, p]
    lib.lg_exact_arm.restype = i32
    lib.lg_exact_arm.argtypes = [p, i64, i32, p, p, i32, ctypes.c_double, p, i32]
    lib.lg_arm_rate.restype = i32
    lib.lg_arm_rate.argtypes = [p, i64, i64, p, i64, i32, p, p, f32, f32, f32, p, p, p, p, i32]
    lib.lg_arm_rate_ctx2d.restype = i32
    lib.lg_arm_rate_ctx2d.argtypes = [p, p, i32, i32, i32, i32, f32, p, i32, i32, p, p, f32, f32, f32, p, p, p, p, i32]
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernel, or None (one warning per process) when it cannot be had."""
    global _lib, _tried, _error
    with _lock:
        if not _tried:
            _tried = True
            if os.environ.get("INRCODEC_NO_KERNEL_BUILD", "") not in ("", "0"):
                _error = "on-demand build disabled by INRCODEC_NO_KERNEL_BUILD"
            else:
                try:
                    _lib = _setup(ctypes.CDLL(str(build())))
                except (RuntimeError, OSError, AttributeError, subprocess.TimeoutExpired) as exc:
                    _error = str(exc)
            if _lib is None:
                warnings.warn(f"inrcodec: latent-grid MLP kernel unavailable, using the torch reference: "
                              f"{(_error or '')[:300]}", RuntimeWarning, stacklevel=3)
        return _lib


def render_library() -> ctypes.CDLL | None:
    """The strict build (STRICT_FLAGS) for what decoded output depends on; the training build where it cannot
    be had (one warning), None where neither can."""
    global _strict_lib, _strict_tried
    lib = library()
    with _lock:
        if lib is not None and not _strict_tried:
            _strict_tried = True
            try:
                _strict_lib = _setup(ctypes.CDLL(str(build(strict=True))))
            except (RuntimeError, OSError, AttributeError, subprocess.TimeoutExpired) as exc:
                warnings.warn(f"inrcodec: strict latent-grid kernel unavailable, rendering with the training build "
                              f"(not bit-identical across machines): {str(exc)[:300]}", RuntimeWarning, stacklevel=3)
        return _strict_lib if lib is not None and _strict_lib is not None else lib


def forward_library(needs_grad: bool) -> ctypes.CDLL | None:
    """The library a forward kernel runs from: the training build when autograd will differentiate it, else the
    strict build (renders, decodes: the same bits at every SIMD level)."""
    return library() if needs_grad else render_library()


def needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def library_for_level(level: str, strict: bool = False) -> ctypes.CDLL:
    """The kernel built for SIMD ``level`` (tests: every level in ``supported_levels()``); raises if it cannot be
    built. ``using_library(lib, strict_lib)`` makes the wrappers call it."""
    with _lock:
        if (level, strict) not in _by_level:
            _by_level[(level, strict)] = _setup(ctypes.CDLL(str(build(level=level, strict=strict))))
        return _by_level[(level, strict)]


@contextlib.contextmanager
def using_library(lib: ctypes.CDLL | None, strict_lib: ctypes.CDLL | None = None):
    """Within the block every latent-grid kernel wrapper calls ``lib`` (None: the torch references), and the
    render/decode paths ``strict_lib`` (default: ``lib``)."""
    global _lib, _tried, _strict_lib, _strict_tried
    with _lock:
        saved = (_lib, _tried, _strict_lib, _strict_tried)
        _lib, _tried = lib, True
        _strict_lib, _strict_tried = (strict_lib if strict_lib is not None else lib), True
    try:
        yield lib
    finally:
        with _lock:
            _lib, _tried, _strict_lib, _strict_tried = saved


def mlp_torch(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.Tensor:
    """Reference: x (n, d_in) -> (n, d_out); ReLU after every layer but the last."""
    h = x
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = torch.nn.functional.linear(h, w, b)
        if k < len(weights) - 1:
            h = torch.relu(h)
    return h


# ctypes helpers of the latent-grid kernel wrappers (latentgrid_*.py)
def ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def c_ints(values) -> ctypes.Array:
    return (ctypes.c_int * len(values))(*values)


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise RuntimeError(f"latentgrid {what} kernel failed ({rc})")


def flat_params(layers: list[torch.nn.Linear]) -> tuple[torch.Tensor, list[int]]:
    """The kernels' parameter vector (each layer's weight, then its bias, flattened) and the layers' output widths."""
    return (torch.cat([t.reshape(-1) for m in layers for t in (m.weight, m.bias)]),
            [m.weight.shape[0] for m in layers])


class _MLPFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, flat, dims, feature_major, threads, strict):
        lib = forward_library(not strict)
        n = x.shape[0]
        if feature_major:
            out = torch.empty(dims[-1], n).t()
        else:
            out = torch.empty(n, dims[-1])
        flat_c = flat.contiguous()
        check(lib.lg_mlp_forward(ptr(x), n, x.stride(0), x.stride(1), len(dims) - 1, c_ints(dims), ptr(flat_c),
                                 ptr(out), out.stride(0), out.stride(1), threads), "MLP")
        ctx.save_for_backward(x, flat_c)
        ctx.dims, ctx.threads = dims, threads
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, flat = ctx.saved_tensors
        dims = ctx.dims
        lib = library()
        n = x.shape[0]
        grad_out = grad_out if grad_out.stride(0) == 1 or grad_out.stride(1) == 1 else grad_out.contiguous()
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty(x.shape[1], n).t() if x.stride(0) == 1 else torch.empty(n, x.shape[1])
        grad_flat = torch.empty_like(flat)
        check(lib.lg_mlp_backward(ptr(x), n, x.stride(0), x.stride(1), len(dims) - 1, c_ints(dims), ptr(flat),
                                  ptr(grad_out), grad_out.stride(0), grad_out.stride(1), ptr(grad_x),
                                  0 if grad_x is None else grad_x.stride(0),
                                  0 if grad_x is None else grad_x.stride(1), ptr(grad_flat), ctx.threads), "MLP")
        return grad_x, grad_flat, None, None, None, None


def kernel_usable(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and library() is not None


def mlp(x: torch.Tensor, layers: list[torch.nn.Linear], feature_major: bool = False,
        use_kernel: bool | None = None) -> torch.Tensor:
    """x (n, d_in) -> (n, d_out) through ``layers`` with ReLU between them (see module docstring)."""
    weights = [m.weight for m in layers]
    biases = [m.bias for m in layers]
    if use_kernel is None:
        use_kernel = kernel_usable(x)
    if not use_kernel or x.shape[0] == 0:
        return mlp_torch(x, weights, biases)
    if not (x.stride(0) >= 0 and x.stride(1) >= 0):
        x = x.contiguous()
    flat, widths = flat_params(layers)
    dims = [x.shape[1]] + widths
    strict = not needs_grad(x, *weights, *biases)  # a render: the strict build (see STRICT_FLAGS)
    return _MLPFunction.apply(x, flat, dims, feature_major, torch.get_num_threads(), strict)
