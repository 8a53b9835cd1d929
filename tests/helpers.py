"""Small generated signals shared by tests (import as `from helpers import ...`)."""

import numpy as np


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful uint8 image with one soft edge: easy enough for tiny networks, not trivial."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.5, 2.5, 3)
        chans.append(0.5 + 0.35 * np.sin(2 * np.pi * (fx * x + fy * y) + 6 * ph))
    img = np.stack(chans, -1)
    img += 0.1 * (x > 0.55)[..., None]
    return np.clip(img * 255, 0, 255).round().astype(np.uint8)
