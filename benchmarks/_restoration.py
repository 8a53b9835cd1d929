"""Experiment (issue 13 item 3, not in the codec): a restoration filter after the deblocking: VVC's ALF idea, one
point-symmetric diamond filter per colour channel, fitted by least squares on the original against the decoded
image and sent in a few bytes.

Form (DC-preserving, as ALF): ``out = rec + (sum_k c_k * (rec[p + o_k] + rec[p - o_k] - 2 rec[p]) + R) >> SHIFT``,
offsets ``o_k`` of a diamond (``SHAPES``), integer coefficients ``c_k`` in 1/2^SHIFT, edges replicated, result
clipped to 0..255. Integer arithmetic only (int32), so the decoder's image is the same on every machine.

Measured with ``gaussian_dct_lab.py`` (benchmarks/README.md "Restoration filter"): -1.0 % BD-rate on top of the
RD-optimised quantiser (7x7; 5x5: -0.6 %), at the cost of 75 (48) CPU-ms of decoding a Kodak image in numpy
(load 8): not adopted. Were it a section (``restore``):
byte 0 format (1), byte 1 shape index, byte 2 channel count, then per channel
``len(SHAPES[shape])`` signed bytes. 8-bit images only.
"""

from __future__ import annotations

import numpy as np

from inrcodec.errors import FormatError
from inrcodec.models.restore import SHAPES, _features  # the codec's diamonds and second differences

FORMAT = 1
SHIFT = 8
DEFAULT_SHAPE = 0


def fit(original: np.ndarray, decoded: np.ndarray, shape: int = DEFAULT_SHAPE) -> dict:
    """Least-squares coefficients per channel, rounded to integers in 1/2^SHIFT, kept only where they lower the
    channel's squared error (else all zero)."""
    shape = int(shape)
    coefs = []
    for ch in range(decoded.shape[-1]):
        x = decoded[..., ch].astype(np.int32)
        f = _features(x, shape).reshape(len(SHAPES[shape]), -1).astype(np.float64)
        target = original[..., ch].astype(np.float64).ravel() - x.ravel()
        a = f @ f.T
        b = f @ target
        c = np.linalg.lstsq(a + 1e-6 * np.trace(a) * np.eye(len(b)), b, rcond=None)[0]
        ci = np.clip(np.rint(c * (1 << SHIFT)), -127, 127).astype(np.int64)
        err0 = float(np.sum(target**2))
        pred = _apply_plane(x, ci, shape).astype(np.float64).ravel() - x.ravel()
        coefs.append(ci if float(np.sum((target - pred) ** 2)) < err0 else np.zeros_like(ci))
    return {"shape": shape, "coefs": np.stack(coefs)}


def _apply_plane(x: np.ndarray, coefs: np.ndarray, shape: int) -> np.ndarray:
    f = _features(x, shape)
    acc = np.tensordot(coefs.astype(np.int32), f, axes=1).astype(np.int32)  # |sum| < 12 * 127 * 1020 < 2^21
    return np.clip(x + ((acc + (1 << (SHIFT - 1))) >> SHIFT), 0, 255)


def apply(decoded: np.ndarray, params: dict) -> np.ndarray:
    out = decoded.copy()
    for ch in range(decoded.shape[-1]):
        c = params["coefs"][ch]
        if np.any(c):
            out[..., ch] = _apply_plane(decoded[..., ch].astype(np.int32), c, params["shape"])
    return out


def encode(params: dict) -> bytes:
    coefs = params["coefs"]
    return bytes([FORMAT, params["shape"], coefs.shape[0]]) + coefs.astype(np.int8).tobytes()


def decode(data: bytes, channels: int) -> dict:
    if len(data) < 3 or data[0] != FORMAT:
        raise FormatError("restore section: unknown format")
    shape, n = data[1], data[2]
    if shape >= len(SHAPES) or n != channels:
        raise FormatError("restore section: bad shape or channel count")
    taps = len(SHAPES[shape])
    if len(data) != 3 + n * taps:
        raise FormatError("restore section: wrong length")
    coefs = np.frombuffer(data[3:], np.int8).astype(np.int64).reshape(n, taps)
    return {"shape": shape, "coefs": coefs}
