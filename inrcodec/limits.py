"""Caps on what decoding a file may cost, in the spirit of Pillow's ``Image.MAX_IMAGE_PIXELS``.

A 200-byte ``.inrc`` file may honestly describe a gigapixel image: the representation renders at any size. So,
like a decompression-bomb guard, decoding refuses (``FormatError``) a file whose output would have more than
``max_pixels`` samples (the product of the coordinate axes: pixels of an image, samples of a sound, frames x
pixels of a video) unless the caller raises the cap: ``decompress(..., max_pixels=N)``, ``inrcodec decode
--max-pixels N`` (0 = no cap), or this module's ``MAX_PIXELS`` for the whole process.

The default, 2**27 = 134 217 728 samples (an 11 585 x 11 585 image), sits between Pillow's warning (89.5 M
pixels) and its error (179 M): about 1.5 GiB of float32 for a 3-channel render, and room for the large photos
and audio people actually compress. Parameters a model config implies are capped separately (``MAX_PARAMS``):
there is no honest reason for a 50-million-weight network in a file of this codec, and its weights would be
allocated (and run over every pixel) before any check on the output.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

from .errors import FormatError

DEFAULT_MAX_PIXELS = 1 << 27
MAX_PIXELS: int | None = DEFAULT_MAX_PIXELS  # process-wide default; None or 0: no cap
MAX_PARAMS = 1 << 24  # network weights / latents / Gaussian attributes a config may imply (64 MiB of float32)


# Rasterising Gaussians costs the sum of their pixel bboxes (3 sigma in x and in y) clipped to the image, about
# 6-7 ns per (Gaussian, pixel) visit on this CPU. A 132-byte file of 4 million identical huge Gaussians took 39 s
# on a 24 x 32 image before these caps (constant streams are now also refused for spending < 2 bits per Gaussian).
# Measured on real files (gaussian.raster_work / pixels, 192 x 192 Kodak crops, 60 steps): 132 at 2 bpp, 412 and
# 463 at 8 bpp (kodim03, kodim08; 13-15 k Gaussians); golden files 5-34. The cap is 2.2x the largest: the worst
# file it accepts renders 2**16 pixels in ~0.4 s here (benchmarks/results/gaussian_worst_case.json). A file
# above it is refused unless the caller trusts it: max_pixels=0 / --max-pixels 0 lifts this cap with the other.
RASTER_WORK_PER_PIXEL = 1024
RASTER_WORK_MIN = 1 << 22  # tiny images: ~25 ms of rendering


def check_raster_work(work: float, pixels: int, what: str = "gaussian file") -> None:
    if resolve_max_pixels(None) is None:  # the caller lifted the decode caps (inside pixel_cap(0))
        return
    cap = max(RASTER_WORK_MIN, RASTER_WORK_PER_PIXEL * pixels)
    if work > cap:
        raise FormatError(f"{what} would rasterise {work:.3g} Gaussian-pixel pairs, more than the cap of {cap} "
                          f"({RASTER_WORK_PER_PIXEL} per pixel): corrupt or hostile (--max-pixels 0 if you trust "
                          "it)")


# The cap a caller gave for a file of parts (video GOPs, dataset tiles): the layout decoders decode their parts
# with ``decompress(part)``, which then applies this cap rather than the process default (per thread / task).
_SCOPED_CAP: contextvars.ContextVar[int | None] = contextvars.ContextVar("inrcodec_max_pixels", default=None)


@contextlib.contextmanager
def pixel_cap(max_pixels: int | None):
    """Within this block, decodes that are given no ``max_pixels`` apply this one (None: leave as it is)."""
    if max_pixels is None:
        yield
        return
    token = _SCOPED_CAP.set(resolve_max_pixels(max_pixels) or 0)
    try:
        yield
    finally:
        _SCOPED_CAP.reset(token)


def resolve_max_pixels(max_pixels: int | None) -> int | None:
    """The cap to apply: the argument if given (0 = none), else the enclosing ``pixel_cap``, else the module
    default."""
    scoped = _SCOPED_CAP.get()
    cap = (MAX_PIXELS if scoped is None else scoped) if max_pixels is None else max_pixels
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        raise ValueError(f"max_pixels must be a non-negative integer, got {cap!r}")
    return cap or None


def check_pixels(shape, max_pixels: int | None = None, what: str = "decoded signal") -> None:
    """FormatError if a render of ``shape`` (coordinate axes) would exceed the cap."""
    cap = resolve_max_pixels(max_pixels)
    n = math.prod(int(s) for s in shape)
    if cap is not None and n > cap:
        raise FormatError(f"{what} would have {n} samples {tuple(int(s) for s in shape)}, more than the cap of "
                          f"{cap} (raise it with --max-pixels / max_pixels= if you trust this file)")


def check_params(n: int, what: str) -> None:
    if n > MAX_PARAMS:
        raise FormatError(f"{what} implies {n} parameters, more than the cap of {MAX_PARAMS}")
