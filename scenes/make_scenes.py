"""Write the small generated sample files committed in scenes/ (run from anywhere):

    python scenes/make_scenes.py [OUTPUT_DIR]

Deterministic: running it again gives the same arrays (tests/test_samples.py checks the committed files against
a fresh run). Keep the folder under 300 KB.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inrcodec.samples import chirp_audio, gradient, shapes_image, smooth_field  # noqa: E402
from inrcodec.signals import save  # noqa: E402

# file name -> Signal; names follow the repository's conventions (raw: dims and dtype in the name).
SCENES = {
    "shapes_128x160.png": lambda: shapes_image(128, 160, seed=0),
    "gradient_gray16_64x64.png": lambda: gradient(64, 64, channels=1, dtype="uint16"),
    "field_64x64_f32.npy": lambda: smooth_field((64, 64), seed=1),
    "field_16x32x32_f32le.raw": lambda: smooth_field((16, 32, 32), seed=2),
    "chirp_8k.wav": lambda: chirp_audio(1.0, 8000, seed=0),
}

LIMIT_BYTES = 300_000


def main(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, make in SCENES.items():
        path = out_dir / name
        save(make(), path)
        size = path.stat().st_size
        total += size
        print(f"{name:32s} {size:8d} bytes")
    print(f"{'total':32s} {total:8d} bytes")
    if total > LIMIT_BYTES:
        print(f"scenes are larger than {LIMIT_BYTES} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent))
