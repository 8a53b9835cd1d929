"""Strict schema of what a ``.inrc`` header may say, checked before any tensor is built.

Three layers, each a ``FormatError`` with a one-line message naming the field:

1. **Types** (``check_config_types``): every config field must have the type its dataclass annotation names.
   JSON is loose where Python is looser still: ``true`` is an ``int`` to ``isinstance``, ``1e400`` parses as
   ``inf``, ``NaN`` is accepted by ``json.loads``, integers have no size limit. So ``int`` fields take only true
   integers (not bools), ``float`` fields take finite numbers (ints allowed), ``str`` only strings.
2. **Ranges**: each model's ``Config.validate()`` (runs on well-typed values thanks to 1).
3. **Consistency** with the rest of the file (``check_model_file``): the config's ``ndim``/``channels`` agree with
   the signal shape, the sections are exactly the ones the model reads (no missing, unknown or duplicated ones),
   and the parameters the config implies stay under ``limits.MAX_PARAMS`` (a 40-byte config can otherwise ask
   for a network of 10^10 weights whose symbols a 2-byte "constant" blob would happily provide).

``check_meta`` covers the signal metadata the savers read back (sample rate, npy shape/dtype, byte order ...).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import FormatError
from .limits import MAX_PARAMS

# Sections each model reads. The max-error correction ("bounded"; "residual" in files written before it) and the
# exact non-finite values of a field ("nonfinite") may accompany any of them.
MODEL_SECTIONS: dict[str, frozenset[str]] = {
    "fourier": frozenset({"steps", "weights"}),
    "siren": frozenset({"steps", "weights"}),
    "hashgrid": frozenset({"steps", "weights"}),
    "latentgrid": frozenset({"synth", "arm", "latents"}),
    "gaussian": frozenset({"gaussians"}),
    "gaussian+dct": frozenset({"gaussians", "dct"}),
}
OPTIONAL_SECTIONS = frozenset({"residual", "bounded", "nonfinite"})


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    """A finite number (int or float, not bool). Huge ints count as not finite instead of raising."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


_CHECKERS = {"int": (is_int, "an integer"), "float": (is_real, "a finite number"),
             "str": (lambda v: isinstance(v, str), "a string"), "bool": (lambda v: isinstance(v, bool), "true/false")}


def check_config_types(config_cls: type, data: dict[str, Any], model: str) -> None:
    """Every field of ``data`` has the type the dataclass field is annotated with (see module docstring)."""
    for f in dataclasses.fields(config_cls):
        if f.name not in data:
            continue
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        check = _CHECKERS.get(annotation)
        if check is not None and not check[0](data[f.name]):
            raise FormatError(f"config field {model}.{f.name} must be {check[1]}, got {_short(data[f.name])}")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def param_count(model: str, config: Any, shape: tuple[int, ...]) -> int | None:
    """Parameters (weights, table entries, latents) a config implies for a signal grid, without building it.
    None for models whose size is only known from their sections (gaussian: capped by its section decoder)."""
    from .models.coordnet import mlp_param_count

    c = config
    if model == "fourier":
        return mlp_param_count(2 * c.n_features, c.width, c.hidden_layers, c.channels) + c.n_features * c.ndim
    if model == "siren":
        return mlp_param_count(c.ndim, c.width, c.hidden_layers, c.channels)
    if model == "hashgrid":
        from .models.hashgrid import level_layout

        if c.n_levels * (1 << c.log2_table) * c.n_features > 4 * MAX_PARAMS:  # quick bound before the layout
            return c.n_levels * (1 << c.log2_table) * c.n_features
        lay = level_layout(c)
        return (lay[-1][2] + lay[-1][3]) * c.n_features + mlp_param_count(c.n_levels * c.n_features, c.width,
                                                                           c.hidden_layers, c.channels)
    if model == "latentgrid":
        from .models.latentgrid import latent_shapes, network_param_count

        return network_param_count(c) + sum(math.prod(s) for s in latent_shapes(tuple(shape), c.levels))
    return None


def check_model_file(model: str, config: Any, signal: dict[str, Any], sections: dict[str, bytes]) -> None:
    """Consistency of a validated config with the file's signal description and sections."""
    shape = tuple(signal["shape"])
    ndim, channels = len(shape) - 1, shape[-1]
    if hasattr(config, "ndim") and config.ndim != ndim:
        raise FormatError(f"{model} config has ndim={config.ndim} but the signal has {ndim} coordinate axes")
    if hasattr(config, "channels") and config.channels != channels:
        raise FormatError(f"{model} config has channels={config.channels} but the signal has {channels}")
    expected = MODEL_SECTIONS.get(model)
    if expected is not None:
        names = set(sections)
        missing = sorted(expected - names)
        unknown = sorted(names - expected - OPTIONAL_SECTIONS)
        if missing:
            raise FormatError(f"{model} file lacks section(s) {', '.join(map(repr, missing))}")
        if unknown:
            raise FormatError(f"{model} file has unexpected section(s) {', '.join(map(repr, unknown))[:80]}")
    n = param_count(model, config, shape[:-1])
    if n is not None and n > MAX_PARAMS:
        raise FormatError(f"{model} config implies {n} parameters, more than the cap of {MAX_PARAMS}")


# Metadata keys the savers read back, and what they must be. Other keys are informative and pass through.
def _int_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 32 and all(is_int(s) and 0 <= s <= 1 << 40 for s in v)


META_SCHEMA = {
    "format": (lambda v: isinstance(v, str) and len(v) <= 64, "a short string"),
    "bit_depth": (lambda v: is_int(v) and 1 <= v <= 64, "an integer in [1, 64]"),
    "sample_rate": (lambda v: is_int(v) and 1 <= v < 2**32, "an integer in [1, 2**32)"),
    "npy_shape": (_int_list, "a list of non-negative integers"),
    "npy_dtype": (lambda v: isinstance(v, str) and len(v) <= 16, "a short string"),
    "byteorder": (lambda v: v in ("little", "big"), '"little" or "big"'),
}


def check_meta(meta: Any) -> None:
    if not isinstance(meta, dict):
        raise FormatError("signal metadata is not an object")
    for key, (ok, what) in META_SCHEMA.items():
        if key in meta and not ok(meta[key]):
            raise FormatError(f"signal metadata {key!r} must be {what}, got {_short(meta[key])}")
