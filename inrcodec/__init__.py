"""inrcodec: compress a signal as a small neural network or a cloud of 2D Gaussians fitted to it.

Public API::

    from inrcodec import load, save, compress, decompress
    sig = load("image.png")
    result = compress(sig, model="fourier", bpp=0.5)   # result.data: bytes of a .inrc file, result.report: dict
    out = decompress(result.data)                      # a Signal with the input's shape and dtype
    save(out, "decoded.png")

Names are imported lazily so that ``import inrcodec.container`` (or the CLI's ``--help``) does not load torch.
"""

import os
from importlib import import_module

# libgomp's idle threads busy-wait ~300k spins by default. On a 2-core machine shared with anything else that
# made a 2-thread fit step 3-15x slower than a 1-thread one; a short spin keeps the parallel speed-up on an idle
# machine and loses nothing on a busy one. Only effective if set before torch loads libgomp.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"

_EXPORTS = {
    "Signal": "signal", "InputError": "errors", "FormatError": "errors",
    "compress": "codec", "decompress": "codec", "load_representation": "codec", "CompressResult": "codec",
    "InrCodec": "codec", "load": "signals", "save": "signals",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'inrcodec' has no attribute {name!r}")
