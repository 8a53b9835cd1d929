"""Write docs/bad-input.md from the cases in tests/bad_input_cases.py (the same ones tests/test_bad_input.py checks).

    PYTHONPATH=$PWD:$PWD/tests OMP_NUM_THREADS=1 python docs/make_bad_input_table.py
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bad_input_cases import CASES  # noqa: E402

from inrcodec.cli import main as cli_main  # noqa: E402

HEAD = """# Bad input: what each command says

Every case below is run by `tests/test_bad_input.py` through the command line: each must exit with code 2, print
exactly one line on stderr (no traceback), and leave no file behind (outputs are written to a temporary file and
renamed into place only on success; a failed write removes it). Hostile `.inrc` files are covered separately by
the fuzzing harness (`tests/test_fuzz.py`, `benchmarks/fuzz_campaign.py`): any defect is a one-line `FormatError`.

Made by `docs/make_bad_input_table.py` (temporary folder shown as `TMP`). "Disk full" replaces the writers' file
objects with ones whose `write` raises `ENOSPC`.

| case | input | command | exit | stderr |
|---|---|---|---|---|
"""

TAIL = """
## Caps and overrides

| what | cap | override |
|---|---|---|
| decoded samples per `.inrc` decode (pixels, audio samples, frames x pixels) | 2**27 = 134 217 728 (`inrcodec.limits.DEFAULT_MAX_PIXELS`; Pillow warns at 89.5 M, refuses at 179 M) | `decode --max-pixels N` (0 = none), `decompress(..., max_pixels=N)`, `inrcodec.limits.MAX_PIXELS` |
| parameters a model config implies | 2**24 (`limits.MAX_PARAMS`) | none (no honest file comes close) |
| values of a container's signal | 2**30, axis <= 2**20, channels <= 64 (`container.py`) | none |
| header | 1 MiB compressed, 4 MiB as JSON | none |
| symbols per entropy-coded blob | 2**28; alphabet < 2**20 | none |
| Gaussians per file | 2**22, 16 layers, at most 4 per pixel (at least 2**16), at least 2 coded bits each (the first 64 free) | none |
| Gaussian rasterisation work (each Gaussian's pixel bbox, 3 sqrt(Sxx) x 3 sqrt(Syy), clipped to the image) | 1024 per pixel, at least 2**22 (`limits.RASTER_WORK_PER_PIXEL`) | `--max-pixels 0` / `max_pixels=0` |
| parts of a video or dataset | each GOP / tile under the decode's sample cap; an eagerly decoded dataset variable too | as the sample cap |
| input images | 2**28 pixels before decoding (`signals._common.MAX_PIXELS`) | none |
| input arrays (npy, raw) | 2**30 values | none |

NaN in float inputs marks missing values and is accepted (decoded as the fit's value there); infinite values are
refused: there is nothing finite to fit.
"""


def main() -> None:
    rows = []
    for case_id, what, make, setup in CASES:
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            argv = make(Path(tmp))
            if setup is not None:
                setup(mp)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli_main(argv)
            msg = err.getvalue().strip().replace(tmp, "TMP").replace("|", "\\|")
            cmd = " ".join(["inrcodec", argv[0]] + [a.replace(tmp, "TMP") for a in argv[1:] if a not in ("-q",)])
        rows.append(f"| {case_id} | {what} | `{cmd}` | {code} | {msg} |")
        print(rows[-1])
    (ROOT / "docs" / "bad-input.md").write_text(HEAD + "\n".join(rows) + "\n" + TAIL)


if __name__ == "__main__":
    main()
