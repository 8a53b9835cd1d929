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


def random_gaussians(n: int, h: int, w: int, c: int, seed: int = 0):
    """(means (n, 2), shape parameters (n, 3), colours (n, c)) of n random Gaussians over an h x w image."""
    rng = np.random.default_rng(seed)
    means = rng.random((n, 2)) * [w, h]
    v = np.stack([rng.normal(1.0, 0.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)], 1)
    colors = rng.normal(0.4, 0.2, (n, c))
    return means, v, colors


# -- hostile streams: what a decoder of untrusted bytes must turn into symbols or a FormatError, nothing else
def cut_streams(blob: bytes) -> list[bytes]:
    """Empty, truncated, extended and mis-prefixed copies of a valid stream (an absurd varint length in front)."""
    return [b"", blob[:1], blob[:len(blob) // 2], blob[:-1], blob + b"\x00", b"\xff\xff\xff\xff\x0f" + blob]


def damaged(blob: bytes, rng: np.random.Generator, count: int, first: int = 0, most: int = 3) -> list[bytes]:
    """``count`` copies of ``blob``, each with 1 to ``most`` bytes at random places from ``first`` on set to random
    values (``first`` 1 keeps a section's format byte)."""
    out = []
    for _ in range(count):
        data = bytearray(blob)
        for i in rng.integers(first, len(data), int(rng.integers(1, most + 1))):
            data[i] = int(rng.integers(0, 256))
        out.append(bytes(data))
    return out


def outcome(fn):
    """fn's result, or its FormatError as text (to compare two decoders' answers on hostile input)."""
    from inrcodec.errors import FormatError

    try:
        return fn()
    except FormatError as e:
        return f"FormatError: {e}"


def assert_same_outcome(fast, ref) -> None:
    """Two ``outcome``s agree: the same error text, or equal arrays (element by element for a tuple of them)."""
    if isinstance(ref, str):
        assert fast == ref
    elif isinstance(ref, tuple):
        assert isinstance(fast, tuple) and len(fast) == len(ref)
        for a, b in zip(fast, ref):
            np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_array_equal(fast, ref)


def value_and_grads(fn, inputs, grad):
    """(fn's output, the gradients of its inputs) for fresh leaf copies of ``inputs``, backward from ``grad``: a
    kernel and its reference run this way and compared output by output."""
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    out.backward(grad)
    return (out.detach(), *(t.grad for t in leaves))
