"""Entropy coding of integer tensors (constriction ANS) and differentiable rate proxies that match its models.

The torch-based rate proxies are imported lazily so that decoding does not need to import torch.
"""

from .coding import (
    ALPHABET_CAP,
    COUNT_CAP,
    MODEL_NAMES,
    blob_model,
    decode_ints,
    empirical_entropy_bits,
    encode_ints,
)

__all__ = [
    "ALPHABET_CAP",
    "COUNT_CAP",
    "MODEL_NAMES",
    "blob_model",
    "decode_ints",
    "empirical_entropy_bits",
    "encode_ints",
    "gaussian_rate_bits",
    "laplace_rate_bits",
]


def __getattr__(name):
    if name in ("laplace_rate_bits", "gaussian_rate_bits", "MAX_BITS_PER_SYMBOL"):
        from . import rate

        return getattr(rate, name)
    raise AttributeError(name)
