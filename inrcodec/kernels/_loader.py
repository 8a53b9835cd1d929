"""Find, build and load the compiled rasteriser libraries (plain C ABI, loaded with ctypes).

CPU library, in order of preference:
  1. the one setup.py built next to this file at install time (``_gsraster_cpu*.so``, optional extension),
     used when its embedded source hash matches the sources in ``cuda/`` (or when those sources are absent,
     as in an installed wheel);
  2. a copy compiled on demand with the system C++ compiler into the cache directory
     (``$INRCODEC_CACHE_DIR/kernels``, default ``~/.cache/inrcodec/kernels``), keyed by a hash of the sources
     and flags. This needs a source checkout (the ``cuda/`` folder) and takes a few seconds once;
     ``INRCODEC_NO_KERNEL_BUILD=1`` turns it off. ``build_cpu_kernel()`` does it explicitly.
  3. nothing: callers fall back to the pure-torch reference and one warning is emitted.
CUDA library: compiled on demand with nvcc for the current GPU's architecture into the same cache
(``build_cuda_kernel()``), only ever attempted when ``torch.cuda.is_available()``.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

PKG_DIR = Path(__file__).resolve().parent
SRC_DIR = PKG_DIR.parent.parent / "cuda"  # present in a source checkout / editable install
CPU_SOURCES = ("gaussian_raster_cpu.cpp", "gaussian_raster_cpu_tiles.inc", "gaussian_raster_math.h", "cpu_threads.h",
               "cpu_simd.h", "dct_residual_cpu.cpp", "dct_residual_cpu_impl.inc", "coefcoder_cpu.cpp", "restore_cpu.cpp",
               "residual_loss_cpu.cpp", "residual_loss_cpu_impl.inc", "signpred_cpu.cpp", "signpred_cpu_impl.inc", "ans_cpu.h")
CPU_UNITS = ("gaussian_raster_cpu.cpp", "dct_residual_cpu.cpp", "coefcoder_cpu.cpp", "restore_cpu.cpp",
             "residual_loss_cpu.cpp", "signpred_cpu.cpp")  # compiled into the one library
CUDA_SOURCES = ("gaussian_raster.cu", "gaussian_raster_math.h")
CPU_ABI_VERSION = 6
CUDA_ABI_VERSION = 1

# Shared with setup.py (which imports nothing from the package, so it repeats them; a test checks they agree).
# -ffp-contract=off: the cutoff q <= QMAX must round exactly as in the torch reference (no FMA fusion).
# -fno-trapping-math: lets gcc if-convert and vectorise the masked tile loops; results are unchanged.
CPU_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-ffp-contract=off", "-fno-trapping-math"]
OPENMP_FLAG = "-fopenmp"

_lock = threading.Lock()
_cpu_lib: ctypes.CDLL | None = None
_cpu_tried = False
_cpu_error: str | None = None
_cuda_lib: ctypes.CDLL | None = None
_cuda_tried = False
_cuda_error: str | None = None
_warned = False


def cache_dir() -> Path:
    base = os.environ.get("INRCODEC_CACHE_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inrcodec"
    return root / "kernels"


def source_hash(names=CPU_SOURCES, src_dir: Path = SRC_DIR, extra: str = "") -> str | None:
    """sha256 (16 hex digits) of the kernel sources, or None when they are not available."""
    h = hashlib.sha256(extra.encode())
    for name in names:
        p = src_dir / name
        if not p.is_file():
            return None
        h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _setup_cpu_signatures(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.gr_cpu_abi_version.restype = i32
    lib.gr_cpu_abi_version.argtypes = []
    if lib.gr_cpu_abi_version() != CPU_ABI_VERSION:
        raise OSError(f"ABI version {lib.gr_cpu_abi_version()} != {CPU_ABI_VERSION}")
    lib.gr_cpu_has_openmp.restype = i32
    lib.gr_cpu_simd_level.restype = i32
    lib.gr_cpu_source_hash.restype = ctypes.c_char_p
    lib.gr_count_pairs_cpu.restype = i64
    lib.gr_count_pairs_cpu.argtypes = [p, p, i64, i32, i32, i32]
    lib.gr_bins_create.restype = p
    lib.gr_bins_create.argtypes = [p, p, i64, i32, i32, i32]
    lib.gr_bins_free.restype = None
    lib.gr_bins_free.argtypes = [p]
    lib.gr_forward_cpu.restype = i32
    lib.gr_forward_cpu.argtypes = [p, p, p, i64, i32, i32, i32, p, i32, p]
    lib.gr_backward_cpu.restype = i32
    lib.gr_backward_cpu.argtypes = [p, p, p, i64, i32, i32, i32, p, p, p, p, i32, p]
    lib.gr_dct_inverse_add_cpu.restype = i32
    lib.gr_dct_inverse_add_cpu.argtypes = [p, i32, i32, i32, p, p, p, i32, i32, i32, p, p, i32, i32, i32, i32, i32]
    lib.gr_tx16_add_cpu.restype = i32
    lib.gr_tx16_add_cpu.argtypes = [p, i32, i32, i32, p, p, p, i32, i32, i32, p, i32, i32, p, p, i32, i32, i32, i32]
    lib.gr_deblock_cpu.restype = i32
    lib.gr_deblock_cpu.argtypes = [p, i32, i32, i32, p, i32, i32, i32, i32, i32, i32]
    lib.gr_residual_loss_cpu.restype = i32
    f = ctypes.c_float
    lib.gr_residual_loss_cpu.argtypes = [p, p, p, i32, i32, i32, p, p, p, f, f, f, f, f, p, i32]
    lib.cc_decode_format2.restype = i32
    lib.cc_decode_format2.argtypes = [p, i64, i32, i32, i32, p, p, p, p, i64, p, p]
    lib.cc_decode_format2_unsigned.restype = i32
    lib.cc_decode_format2_unsigned.argtypes = [p, i64, i32, i32, i32, p, p, p, p, i64, p, p]
    d = ctypes.c_double
    lib.sp_predict_round.restype = i32
    lib.sp_predict_round.argtypes = [p, i64, p, i32, p, p, i32, p, p, i32, p, p, d, p, p, i32, i64, p, p]
    lib.sp_apply_round.restype = i32
    lib.sp_apply_round.argtypes = [p, i64, p, i32, i32, p, p, i32, p, p, d, p, i64]
    lib.sp_lines.restype = i32
    lib.sp_lines.argtypes = [p, i64, i32, p, i32, d, p]
    lib.sp_walk.restype = i32
    lib.sp_walk.argtypes = [p, i64, i32, i32, i32, p, p, p, p, p, p, p, i32, i32, i32, p, i32, i32, i32, d, d, p, p, i32,
                            i32, p, p, p, p, p, p]
    lib.cc_decode_format7.restype = i32
    lib.cc_decode_format7.argtypes = [p, i64, i32, i32, i32, p, p, p, p, i64, p, p, p, i32]
    lib.cc_decode_format7_groups.restype = i32
    lib.cc_decode_format7_groups.argtypes = [p, i64, i32, i32, i32, p, p, p, p, i64, p, p, p, i32, p, i32, i32]
    lib.rs_apply_cpu.restype = i32
    lib.rs_apply_cpu.argtypes = [p, p, i32, i32, i32, i32, i32, i32, i32, p, p, p, i32, i32]
    return lib


def _setup_cuda_signatures(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.gr_cuda_abi_version.restype = i32
    if lib.gr_cuda_abi_version() != CUDA_ABI_VERSION:
        raise OSError(f"ABI version {lib.gr_cuda_abi_version()} != {CUDA_ABI_VERSION}")
    lib.gr_forward_cuda.restype = i32
    lib.gr_forward_cuda.argtypes = [p, p, p, i64, i32, i32, i32, p, i32, p]
    lib.gr_backward_cuda.restype = i32
    lib.gr_backward_cuda.argtypes = [p, p, p, i64, i32, i32, i32, p, p, p, p, i32, p]
    lib.gr_cuda_error_string.restype = ctypes.c_char_p
    lib.gr_cuda_error_string.argtypes = [i32]
    return lib


def packaged_cpu_library() -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        hits = sorted(PKG_DIR.glob("_gsraster_cpu*" + suffix))
        if hits:
            return hits[0]
    return None


def _find_cxx() -> str | None:
    for cand in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _compile(cmd_base: list[str], out: Path, timeout: float) -> None:
    """Compile into a temporary name and rename, so concurrent builders never see a half-written file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=out.suffix, prefix=out.stem + ".", dir=out.parent)
    os.close(fd)
    try:
        res = subprocess.run(cmd_base + ["-o", tmp], capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd_base[:1])} failed:\n{res.stderr[-3000:]}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_cpu_kernel(force: bool = False, src_dir: Path = SRC_DIR) -> Path:
    """Compile the CPU library (``CPU_UNITS`` in cuda/) with the system C++ compiler into the cache; return the path.

    Tries with OpenMP first and without it if the compiler lacks it (the kernel then runs single-threaded).
    """
    cxx = _find_cxx()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++/clang++)")
    h = source_hash(CPU_SOURCES, src_dir, extra=" ".join(CPU_FLAGS))
    if h is None:
        raise RuntimeError(f"kernel sources not found in {src_dir}")
    out = cache_dir() / f"_gsraster_cpu-{h}.so"
    if out.is_file() and not force:
        return out
    base = [cxx, *CPU_FLAGS, "-shared", f"-DGR_SOURCE_HASH=\"{h}\"", "-I", str(src_dir),
            *(str(src_dir / name) for name in CPU_UNITS)]
    try:
        _compile(base[:2] + [OPENMP_FLAG] + base[2:], out, timeout=300)
    except RuntimeError:
        _compile(base, out, timeout=300)
    return out


def build_cuda_kernel(force: bool = False, arch: str | None = None, src_dir: Path = SRC_DIR) -> Path:
    """Compile cuda/gaussian_raster.cu with nvcc (static cudart) into the cache; return the path.

    arch defaults to the current device's ``sm_XY``.
    """
    nvcc = shutil.which("nvcc")
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if nvcc is None and cuda_home and (Path(cuda_home) / "bin" / "nvcc").is_file():
        nvcc = str(Path(cuda_home) / "bin" / "nvcc")
    if nvcc is None:
        raise RuntimeError("nvcc not found (put it on PATH or set CUDA_HOME)")
    if arch is None:
        import torch

        major, minor = torch.cuda.get_device_capability()
        arch = f"sm_{major}{minor}"
    h = source_hash(CUDA_SOURCES, src_dir, extra=arch)
    if h is None:
        raise RuntimeError(f"kernel sources not found in {src_dir}")
    out = cache_dir() / f"_gsraster_cuda-{arch}-{h}.so"
    if out.is_file() and not force:
        return out
    cmd = [nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "--cudart=static", f"-arch={arch}",
           "-I", str(src_dir), str(src_dir / "gaussian_raster.cu")]
    _compile(cmd, out, timeout=600)
    return out


def _build_allowed() -> bool:
    return os.environ.get("INRCODEC_NO_KERNEL_BUILD", "") in ("", "0")


def _load_cpu() -> ctypes.CDLL:
    want = source_hash(CPU_SOURCES, extra=" ".join(CPU_FLAGS))
    errors: list[str] = []
    stale = None
    packaged = packaged_cpu_library()
    if packaged is not None:
        try:
            lib = _setup_cpu_signatures(ctypes.CDLL(str(packaged)))
            if want is None or lib.gr_cpu_source_hash().decode() == want:
                return lib
            stale = lib  # built from older sources (edited since an editable install): rebuild if we can
            errors.append(f"{packaged.name} was built from other sources")
        except (OSError, AttributeError) as exc:
            errors.append(f"{packaged.name}: {exc}")
    if _build_allowed():
        try:
            return _setup_cpu_signatures(ctypes.CDLL(str(build_cpu_kernel())))
        except (RuntimeError, OSError, AttributeError, subprocess.TimeoutExpired) as exc:
            errors.append(f"on-demand build: {exc}")
    else:
        errors.append("on-demand build disabled by INRCODEC_NO_KERNEL_BUILD")
    if stale is not None:
        warnings.warn("inrcodec: using a CPU rasteriser built from older sources: " + "; ".join(errors)[:500],
                      RuntimeWarning, stacklevel=4)
        return stale
    raise RuntimeError("; ".join(errors) or "no compiled CPU kernel")


def cpu_library() -> ctypes.CDLL | None:
    """The CPU rasteriser library, or None (with one warning per process) when none can be had."""
    global _cpu_lib, _cpu_tried, _cpu_error, _warned
    with _lock:
        if not _cpu_tried:
            _cpu_tried = True
            try:
                _cpu_lib = _load_cpu()
            except RuntimeError as exc:
                _cpu_error = str(exc)
        if _cpu_lib is None and not _warned:
            _warned = True
            warnings.warn(
                "inrcodec: compiled CPU Gaussian rasteriser unavailable, using the (slower) torch reference: "
                + (_cpu_error or "unknown reason")[:500],
                RuntimeWarning,
                stacklevel=3,
            )
        return _cpu_lib


def cuda_library() -> ctypes.CDLL | None:
    """The CUDA rasteriser library, or None. Never touches nvcc unless torch sees a CUDA device."""
    global _cuda_lib, _cuda_tried, _cuda_error
    import torch

    if not torch.cuda.is_available():
        return None
    with _lock:
        if not _cuda_tried:
            _cuda_tried = True
            try:
                _cuda_lib = _setup_cuda_signatures(ctypes.CDLL(str(build_cuda_kernel())))
            except (RuntimeError, OSError, AttributeError, subprocess.TimeoutExpired) as exc:
                _cuda_error = str(exc)
                warnings.warn(f"inrcodec: CUDA Gaussian rasteriser unavailable: {_cuda_error[:500]}",
                              RuntimeWarning, stacklevel=3)
        return _cuda_lib


def status() -> dict:
    """What is loaded and why not (diagnostics and tests). Loads the CPU library if not tried yet."""
    lib = cpu_library()
    packaged = packaged_cpu_library()
    return {
        "cpu_library": getattr(lib, "_name", None),
        "cpu_openmp": bool(lib.gr_cpu_has_openmp()) if lib is not None else False,
        "cpu_simd": {0: "4-lane (SSE2/NEON)", 1: "AVX2"}.get(lib.gr_cpu_simd_level()) if lib is not None else None,
        "cpu_error": _cpu_error,
        "cuda_library": getattr(_cuda_lib, "_name", None),
        "cuda_error": _cuda_error,
        "packaged_cpu_library": str(packaged) if packaged else None,
    }
