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
