import os
import tempfile
from pathlib import Path

import pytest

# gsplat's first call may try a JIT CUDA build under ~/.cache; keep any such attempt in a throwaway place.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", tempfile.mkdtemp(prefix="inrcodec-torch-ext-"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (a fresh clone has no ../shared/data)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Unit tests fit tiny signals, where a second intra-op thread only adds synchronisation (and on a loaded
    2-core machine makes a step 5-15x slower). Benchmarks use the default thread count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _latentgrid_levels() -> list[str]:
    """Every SIMD level this machine runs, but avx512 where native already builds the AVX-512 code (same tiles and
    width; test_kernels_latentgrid_levels.py still builds and compares it)."""
    from inrcodec.kernels import latentgrid_mlp

    levels = latentgrid_mlp.supported_levels()
    try:
        native_avx512 = "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        native_avx512 = False
    return [lv for lv in levels if not (lv == "avx512" and native_avx512)]


@pytest.fixture(scope="module", params=_latentgrid_levels())
def latentgrid_lib(request):
    """The latent-grid kernel libraries (training and strict render builds) for each SIMD level this machine runs
    (native, avx512, avx2, baseline: INRCODEC_LG_SIMD), made the ones every kernel wrapper calls while the module's
    tests run."""
    import subprocess

    from inrcodec.kernels import latentgrid_mlp

    try:
        lib = latentgrid_mlp.library_for_level(request.param)
        strict = latentgrid_mlp.library_for_level(request.param, strict=True)
    except (RuntimeError, OSError, AttributeError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"latentgrid kernel at SIMD level {request.param} not available: {str(exc)[:200]}")
    with latentgrid_mlp.using_library(lib, strict):
        yield lib
