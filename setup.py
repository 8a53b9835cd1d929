"""Build hook: only adds the optional compiled CPU library (the Gaussian rasteriser and the image residual's inverse
transform); all metadata lives in pyproject.toml.

The extension is a plain C-ABI shared library (loaded with ctypes by inrcodec/kernels/_loader.py), not a
Python module. It is optional: without a working C++ compiler the install still succeeds and inrcodec falls
back to the torch reference. Without OpenMP it is built single-threaded. Rebuild in place with
``python setup.py build_ext --inplace`` (or let inrcodec.kernels.build_cpu_kernel() compile a cached copy).
"""

import importlib.util
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
# Flags and source hash come from the loader itself (stdlib-only at import), so the two cannot drift apart.
_spec = importlib.util.spec_from_file_location("_inrcodec_kernel_loader", ROOT / "inrcodec/kernels/_loader.py")
_loader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_loader)


class OptionalOpenMPBuildExt(build_ext):
    """Compile with OpenMP, retry without it, and let setuptools skip the extension if both fail."""

    def build_extension(self, ext):
        if ext.name.endswith("_gsraster_cpu"):
            try:
                ext.extra_compile_args = [*_loader.CPU_FLAGS, _loader.OPENMP_FLAG]
                ext.extra_link_args = [_loader.OPENMP_FLAG]
                return super().build_extension(ext)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: try once more without OpenMP
                self.warn(f"building {ext.name} with OpenMP failed ({exc}); retrying without it")
                ext.extra_compile_args = list(_loader.CPU_FLAGS)
                ext.extra_link_args = []
        return super().build_extension(ext)


source_hash = _loader.source_hash(_loader.CPU_SOURCES, ROOT / "cuda", extra=" ".join(_loader.CPU_FLAGS))

setup(
    ext_modules=[
        Extension(
            "inrcodec.kernels._gsraster_cpu",
            sources=[f"cuda/{name}" for name in _loader.CPU_UNITS],
            depends=["cuda/gaussian_raster_math.h", "cuda/cpu_threads.h", "cuda/cpu_simd.h", "cuda/gaussian_raster_cpu_tiles.inc", "cuda/dct_residual_cpu_impl.inc", "cuda/residual_loss_cpu_impl.inc", "cuda/ans_cpu.h", "cuda/signpred_cpu_impl.inc"],
            include_dirs=["cuda"],
            define_macros=[("GR_SOURCE_HASH", f'"{source_hash or "unknown"}"')],
            language="c++",
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalOpenMPBuildExt},
)
