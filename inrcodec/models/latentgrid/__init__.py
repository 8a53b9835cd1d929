"""Latent grid (the Cool-chic / C3 class of overfitted codecs), dimension-generic.

Signal = synthesis(upsample(latents)). ``levels`` latent grids, level l with ceil(n / 2**l) samples per axis,
are quantised to integers, upsampled to the output grid by separable interpolation (linear or cubic, any
resolution, any region), stacked into one feature per level, and mapped to the C output values by a small
per-sample MLP followed by residual k^d convolutions.

Entropy model (the part the rate term trains and the coder uses): every latent symbol gets a Laplace with mean and
scale predicted by a small MLP (``arm``) from a context that the decoder already knows: the coarser level around
the parent sample (parent, and the nearer and farther neighbour of the parent along each axis) and, in a
checkerboard split of each level, the 2d axis neighbours of the "odd" samples (all "even", decoded first). So
decoding is 2 vectorised passes per level, not one pass per sample. The same function gives

* the rate term of the loss: -log2 P(bin) of the (noisy or rounded) latents under those Laplaces, and
* the coder's probabilities: a quantised Laplace (constriction's table, rebuilt exactly in quant.exact) with the predicted means and scales per symbol.

To make the decoder reproduce the encoder's probabilities bit for bit on any machine, the coder evaluates the
context MLP in exact arithmetic: weights are integers times a power of two, inputs are dyadic, every layer output
is floored to 2**-8, and all of it stays far below 2**53 in float64, so sums are exact in any order; the predicted
log2-scale then indexes a fixed table of scales.

Training (``fit.fit``): loss = MSE + lambda * rate (bits per sample), under the training recipe of ``recipe.py``:
a differentiable stand-in for rounding (uniform noise, or C3's soft rounding) until ``ste_start`` of the schedule,
then the latents are rounded with a straight-through gradient. lambda is steered by dual ascent so that the estimated rate lands on the byte target (``set_targets(bits=...)``), or the
distortion on the PSNR target; without a target it stays at ``DEFAULT_LAMBDA``.

``encode(quality)``: quality 1 codes the latents as trained (step 1); lower quality coarsens the latent step up to
2x (``quality_setting``; the context model sees dequantised values, the coder divides its means/scales by the
step), which lets the codec's bisection trim a file that came out over budget. Network weights are coded with
power-of-two steps whose precision is searched once per module (synthesis: rate + lambda * distortion within the
byte target; context model: total bits).

Speed: on CPU the training step's hot path (MLPs, Laplace rate, and for 2-D signals context features, upsampling
and convolutions) runs on compiled kernels (``inrcodec/kernels/latentgrid_*.py``, ``cuda/latentgrid_cpu.cpp``),
each tested against the torch code it replaces, which still runs where the kernels cannot be built.

Files (Cool-chic's shape): ``config.py`` (fields, latent shapes, parameter count), ``upsampling.py``,
``context.py`` (context features, the ARM, rate term, exact ARM of the coder), ``synthesis.py`` (MLP + residual
convolutions), ``quantiser.py`` (latent step, weight coding), ``bitstream.py`` (the latents
section), ``recipe.py`` (the encoder's training recipe: rounding phases, lr shape, rate-control knobs),
``model.py`` (the Representation tying them together). This module re-exports the names other modules
and tests import.
"""

from __future__ import annotations

from .bitstream import _ans_bytes, _estimate_bits, _symbols_crc
from .config import LatentGridConfig, default_levels, latent_shapes, network_param_count
from .context import (ACT_CAP, FRAC_BITS, LOG2_SCALE_MAX, LOG2_SCALE_MIN, N_SCALES, SCALE_STEPS, SCALE_TABLE,
                      ExactArm, _floor_fixed, _parent_up, _parity, _shift, checkerboard, context_features, n_context)
from .model import DEFAULT_LAMBDA, LAMBDA_RANGE, WEIGHT_BITS_PRIOR, LatentGrid
from .quantiser import (LATENT_CAP, QUALITY_STEP_RANGE, STEP_FRAC, _code_weights, _decode_weights,
                        _pow2_exponent, quality_setting)
from .recipe import Recipe
from .synthesis import _linears, _replicate_pad
from .upsampling import _resample_axis, _taps

__all__ = ["LatentGrid", "LatentGridConfig", "checkerboard", "context_features", "default_levels", "latent_shapes",
           "n_context", "network_param_count", "quality_setting"]
