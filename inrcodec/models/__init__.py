"""Registry of representations: name -> class. A model file registers itself with ``@register``."""

from __future__ import annotations

import importlib

from ..errors import InputError
from .base import Representation

REGISTRY: dict[str, type[Representation]] = {}

# Model modules imported lazily on first lookup (keeps `import inrcodec` fast and lets a model file fail alone).
_MODULES = ["fourier", "siren", "hashgrid", "latentgrid", "gaussian", "gaussian_dct"]


def register(cls: type[Representation]) -> type[Representation]:
    REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod}":
                raise


def get_model(name: str) -> type[Representation]:
    if name not in REGISTRY:
        _load_all()
    if name not in REGISTRY:
        raise InputError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return REGISTRY[name]


def available_models() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


# Best rate-distortion choice per signal kind, as measured in benchmarks/ (README "Models"): on Kodak the Gaussian
# codec is -23 % BD-rate vs JPEG (benchmarks/results/gaussian_kodak_rd.json); other kinds: the Fourier MLP.
# Video: the motion-compensated GOP coder (models/mcvideo.py, not a Representation: video_codec.GOP_MODELS); on the
# shared clip at 640x360 it beat every (t, y, x) volume model (0.05 bpp: 26.1 dB vs fourier 17.6 dB in its first,
# forward-only version; benchmarks/results/video_rd_640x360_families.json; _mcvideo_gop6.json: the current one).
DEFAULT_MODEL = {"image": "gaussian", "array": "latentgrid", "volume": "fourier", "audio": "latentgrid",
                 "video": "mcvideo"}


def default_model(kind: str) -> str:
    return DEFAULT_MODEL.get(kind, "fourier")
