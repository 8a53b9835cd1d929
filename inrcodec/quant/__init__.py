"""Quantisers (uniform per tensor / per channel, fake quantisation for QAT) and the model-state codec."""

from .state import decode_state, encode_state, float16_fits, quantize_for_storage, state_values
from .uniform import (
    MAX_BITS,
    MIN_BITS,
    QuantizedTensor,
    dequantize,
    fake_quant,
    quantize_step,
    quantize_uniform,
    steps_for_bits,
)

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "QuantizedTensor",
    "decode_state",
    "dequantize",
    "encode_state",
    "fake_quant",
    "float16_fits",
    "quantize_for_storage",
    "quantize_step",
    "quantize_uniform",
    "state_values",
    "steps_for_bits",
]
