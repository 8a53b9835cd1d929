"""Hostile ``.inrc`` files for testing the decoder: re-sealed mutations of small valid files.

A mutated file whose CRCs no longer match is refused by the first check of ``read_container``, which says nothing
about the parser behind it. So every mutation here *re-seals* the file: the header is re-compressed, its CRC and
the section table (lengths, CRC32 of each payload) are recomputed, and only the parser's own checks stand in the
way, as they would against an attacker.

- ``unseal`` / ``reseal``: the container split into (version, header dict, [(name, payload)]) and put back
  together, with no validation in either direction (hostile JSON such as NaN, duplicate or reordered sections,
  lying section tables are all expressible).
- ``MUTATORS``: name -> mutate(rng, file, donors) -> file. Header values (huge, negative, NaN, wrong types, lists
  for numbers, other model names), garbage or damaged payloads, reordered / duplicated / dropped / renamed
  sections, payloads spliced from other files, version games, and the same inside the parts of a file of parts.
- ``decode_target(data)``: what a user's decode does (``decompress``; every part of a file of parts), under a
  decoded-size cap.
- ``run_case(data)``: the outcome of one file: ``"ok"``, ``"FormatError"``, ``"InputError"`` or the name of any
  other exception (a crash: a bug), with its wall time.
- ``SEED_MAKERS``: name -> function returning a small valid file. The golden corpus (``tests/golden``) is written
  from it and the fuzz tests and the campaign start from it, so a new layout (video, datasets) plugs in with one
  ``register_seed`` line.
"""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from typing import Any, Callable

from .container import _PREAMBLE, HEADER_ZDICT, MAGIC
from .errors import FormatError, InputError

# ---------------------------------------------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------------------------------------------
SEED_MAKERS: dict[str, Callable[[], bytes]] = {}


def register_seed(name: str, maker: Callable[[], bytes]) -> None:
    """Add a kind of small valid file (one line per layout: ``register_seed("video", make_tiny_video)``)."""
    SEED_MAKERS[name] = maker


def _tiny_image():
    import numpy as np

    from .signal import Signal

    y, x = np.mgrid[0:24, 0:32] / 32.0
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + 1), 0.5 + 0.4 * np.cos(5 * y), 0.3 + 0.5 * x * y], -1)
    return Signal(np.clip(img * 255, 0, 255).round().astype(np.uint8), kind="image", metadata={"format": "png"})


def _tiny_audio():
    import numpy as np

    from .signal import Signal

    t = np.arange(400) / 8000.0
    wave = 6000 * np.sin(2 * np.pi * 440 * t) + 2000 * np.sin(2 * np.pi * 1250 * t)
    return Signal(wave.astype(np.int16)[:, None], kind="audio", metadata={"sample_rate": 8000})


def _tiny_field():
    import numpy as np

    from .signal import Signal

    z, y, x = np.mgrid[0:6, 0:8, 0:10] / 10.0
    return Signal((np.sin(3 * x) * np.cos(2 * y) + z).astype(np.float32)[..., None], kind="volume")


# Small architectures so that each seed is a few kB and decodes in milliseconds.
_SMALL = {
    "fourier": {"n_features": 8, "width": 12, "hidden_layers": 2},
    "siren": {"width": 12, "hidden_layers": 2},
    "hashgrid": {"n_levels": 4, "log2_table": 8, "width": 8, "hidden_layers": 1},
    "latentgrid": {},
    "gaussian": {"n_gaussians": 48},
    "gaussian+dct": {"n_gaussians": 24},
}


def _fit_maker(model: str, signal_fn: Callable, steps: int = 15, **kw) -> Callable[[], bytes]:
    def make() -> bytes:
        import torch

        from .codec import compress

        torch.manual_seed(0)
        return compress(signal_fn(), model, steps=steps, seed=0, config=dict(_SMALL[model]), **kw).data
    return make


for _m in ("fourier", "siren", "hashgrid", "latentgrid", "gaussian"):
    register_seed(f"{_m}-image", _fit_maker(_m, _tiny_image))
for _m in ("fourier", "latentgrid", "hashgrid"):
    register_seed(f"{_m}-audio", _fit_maker(_m, _tiny_audio))
register_seed("fourier-volume-maxerror", _fit_maker("fourier", _tiny_field, max_error=0.05))
register_seed("siren-volume", _fit_maker("siren", _tiny_field))
register_seed("gaussian-gray16", _fit_maker("gaussian", lambda: _gray16(_tiny_image())))
# The two above are form-1 golden files (written before the context-coded form 2); this one guards form 2.
register_seed("gaussian-image-form2", _fit_maker("gaussian", _tiny_image))
register_seed("gaussian-dct-image", _fit_maker("gaussian+dct", _tiny_image))  # Gaussian base + DCT residual
# The golden file above holds the residual's format 1 (mcdct2's symbol streams); these guard format 2 (coefcoder)
register_seed("gaussian-dct-image-ctx", _fit_maker("gaussian+dct", _tiny_image))
register_seed("gaussian-dct-gray16-ctx", _fit_maker("gaussian+dct", lambda: _gray16(_tiny_image())))
# and these format 4 (16x16 transforms of 2x2 block groups, image_tx16; the encoder chooses them on this image)
register_seed("gaussian-dct-image-tx16", _fit_maker("gaussian+dct", _tiny_image))
register_seed("gaussian-dct-gray16-tx16", _fit_maker("gaussian+dct", lambda: _gray16(_tiny_image())))


def _forcing(make: Callable[[], bytes], settings: dict[str, Any]) -> Callable[[], bytes]:
    """``make`` with encoder settings forced while it runs: ``settings`` maps "module.NAME" (a module of
    ``inrcodec.models``) to the value; the old values come back afterwards."""
    def run() -> bytes:
        import importlib

        targets = []
        for key, value in settings.items():
            module, name = key.rsplit(".", 1)
            targets.append((importlib.import_module(f"{__package__}.models.{module}"), name, value))
        keep = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]
        for mod, name, value in targets:
            setattr(mod, name, value)
        try:
            return make()
        finally:
            for mod, name, value in keep:
                setattr(mod, name, value)
    return run


def _restored(make: Callable[[], bytes], cross: int = 0) -> Callable[[], bytes]:
    """``make`` with the restoration filters forced (lambda 0: on the tiny image they would not pay for their
    bytes), so that the file holds the ``dct`` section's format 3, or 5 with 16x16 groups (session 23), or with
    ``cross`` offsets tried, 6 (session 24)."""
    return _forcing(make, {"restore.LAMBDA": 0.0, "restore.CROSS": cross})


register_seed("gaussian-dct-image-restore", _restored(_fit_maker("gaussian+dct", _tiny_image)))


def _gray16(sig):
    from .signal import Signal

    return Signal((sig.data[..., :1].astype("uint16") * 257), kind="image", metadata={"format": "png",
                                                                                        "bit_depth": 16})


def _make_parts() -> bytes:
    """A file of parts: two inner files (an image model and an audio model) under a layout name no decoder is
    registered for here; ``decode_target`` reads every part with the same checks a layout decoder would."""
    from .parts import pack_parts

    inner = [SEED_MAKERS["gaussian-image"](), SEED_MAKERS["latentgrid-audio"]()]
    desc = {"kind": "array", "shape": [2, 1], "dtype": "float32", "range": [0.0, 1.0], "meta": {}}
    return pack_parts(desc, "fuzz-parts", {"parts": 2}, inner, shared={"meta": b"{}"})


register_seed("parts", _make_parts)


# -- layouts and coders that landed after the first corpus: video GOPs, datasets, the error-bounded coder --------
def _tiny_clip():
    """4 frames of 24 x 32: a bright square moving 2 px per frame over a gradient (motion for the mcvideo GOPs)."""
    import numpy as np

    from .signal import Signal

    y, x = np.mgrid[0:24, 0:32]
    frames = []
    for t in range(4):
        f = np.stack([40 + 4 * x, 60 + 5 * y, 90 + 2 * (x + y)], -1).astype(np.float64)
        f[6:14, 4 + 2 * t:12 + 2 * t] = [230, 200, 60]
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return Signal(np.stack(frames), kind="video", metadata={"fps": 10.0})


def _make_video(model: str, gop: int = 2, **config) -> Callable[[], bytes]:
    def make() -> bytes:
        import torch

        from .video_codec import compress_video

        torch.manual_seed(0)
        return compress_video(_tiny_clip(), model, bpp=3.0, steps=10, seed=0, gop=gop, workers=1,
                              audio=False, config=config or None).data
    return make


def _special_field():
    """A 2-D float32 field with a NaN patch and both infinities (the coder's class map)."""
    import numpy as np

    from .signal import Signal

    y, x = np.mgrid[0:12, 0:14] / 14.0
    f = (np.sin(5 * x) * np.cos(3 * y) + 0.2 * x).astype(np.float32)
    f[2:4, 3:6] = np.nan
    f[7, 1], f[9, 12] = np.inf, -np.inf
    return Signal(f[..., None], kind="array")


def _make_bounded() -> bytes:
    from .codec import compress

    return compress(_special_field(), "bounded", max_error=0.01, relative=True).data


def _make_fourier_bounded() -> bytes:
    """An INR with the error-bounded coder on its residual (section ``bounded``) over non-finite values."""
    import torch

    from .codec import compress

    torch.manual_seed(0)
    return compress(_special_field(), "fourier", max_error=0.05, relative=True, steps=10, seed=0,
                    config=dict(_SMALL["fourier"])).data


def _make_dataset() -> bytes:
    """A NetCDF dataset of three variables (float field with NaN, int16 field, a small lossless one) and coords."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch
    import xarray as xr

    from .dataset_codec import FieldTarget, compress_dataset

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:10, 0:12] / 12.0
    temp = (280 + 8 * np.sin(4 * x) * np.cos(3 * y)).astype(np.float32)
    temp[0:2, 0:3] = np.nan
    ds = xr.Dataset(
        {"temp": (("lat", "lon"), temp, {"units": "K"}),
         "count": (("lat", "lon"), rng.integers(0, 40, (10, 12)).astype(np.int16)),
         "small": (("k",), np.arange(5, dtype=np.float64))},
        coords={"lat": ("lat", np.linspace(-20, 20, 10, dtype=np.float32)),
                "lon": ("lon", np.linspace(0, 33, 12, dtype=np.float32))},
        attrs={"title": "fuzz seed"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.nc"
        ds.to_netcdf(path)
        return compress_dataset(path, None, FieldTarget(model="siren", steps=4, max_error=0.05,
                                                        relative=True)).data


register_seed("video-mcvideo", _make_video("mcvideo", residual=""))  # golden: the first format (bidirectional)
register_seed("video-mcvideo-residual", _make_video("mcvideo", residual="dct", allocation=0))  # golden: first DCT form
# golden: last-band-coded DCT residual + deblocking, one residual step per GOP
register_seed("video-mcvideo-dct2", _make_video("mcvideo", allocation=0, block_strength=0, structure="", chroma=0))
# golden: per-frame residual steps (temporal quality allocation, session 18), a GOP of 4 (3 predicted frames)
register_seed("video-mcvideo-framesteps", _make_video("mcvideo", gop=4, block_strength=0, structure="", chroma=0))
# golden: per-block residual steps from the decoded motion (blocktree, session 19) on top of the per-frame steps
# (strength 1: the tiny clip's weights differ little, and the steps must vary within a frame here)
register_seed("video-mcvideo-blocksteps", _make_video("mcvideo", gop=4, block_strength=1.0, block_propagation=0.9,
                                                      structure="", chroma=0))
# golden: hierarchical B-frames (session 19): a GOP of 4 in mini-GOPs of 2, i.e. P 2, B 1, P 3
register_seed("video-mcvideo-hier", _make_video("mcvideo", gop=4, structure="hier", mini_gop=2, block_strength=0,
                                               chroma=0))
# golden: both (the per-block weights propagated through the B frames' two references)
register_seed("video-mcvideo-hier-blocksteps", _make_video("mcvideo", gop=4, structure="hier", mini_gop=2,
                                                           block_strength=1.0, block_propagation=0.9, chroma=0))
# golden: the intra frame by gaussian+dct (Gaussians + a DCT residual, session 20; a share at which the tiny
# intra frame codes a residual), hierarchical B-frames, per-block steps
register_seed("video-mcvideo-gdct-intra", _make_video("mcvideo", gop=4, image_model="gaussian+dct", intra_share=0.6,
                                                     chroma=0))
# golden: the residual's chroma step 1.5 x luma (config ``chroma``, session 21; with RD-optimised levels, an encoder
# choice) over hierarchical B-frames and per-block steps: what the encoder writes since session 21
register_seed("video-mcvideo-chroma", _make_video("mcvideo", gop=4))
register_seed("video-fourier", _make_video("fourier", **_SMALL["fourier"]))
register_seed("bounded-nonfinite", _make_bounded)
register_seed("fourier-bounded-nonfinite", _make_fourier_bounded)
register_seed("dataset", _make_dataset)


def _make_image_tiles() -> bytes:
    """A tiled image (layout "image-tiles"): 2 x 2 Gaussian tiles with overlapping, cross-faded margins."""
    import torch

    from .image_tiles import compress_tiled

    torch.manual_seed(0)
    return compress_tiled(_tiny_image(), "gaussian", steps=10, seed=0, tile=16, workers=1,
                          config=dict(_SMALL["gaussian"])).data


register_seed("image-tiles", _make_image_tiles)


# ---------------------------------------------------------------------------------------------------------------
# unseal / reseal
# ---------------------------------------------------------------------------------------------------------------
def unseal(data: bytes) -> tuple[int, dict[str, Any], list[tuple[str, bytes]]]:
    """Split a *valid* file into (version, header, [(name, payload)]) without checking anything."""
    _, version, hlen, _ = _PREAMBLE.unpack_from(data)
    start = _PREAMBLE.size
    header = json.loads(zlib.decompressobj(zdict=HEADER_ZDICT).decompress(data[start:start + hlen]))
    pos = start + hlen
    sections = []
    for name, length, _ in header["sections"]:
        sections.append((name, data[pos:pos + length]))
        pos += length
    return version, header, sections


def reseal(header: dict[str, Any], sections: list[tuple[str, bytes]], version: int = 1,
           table: list | None = None, tail: bytes = b"") -> bytes:
    """Put a (possibly hostile) file together with every CRC valid. ``table`` overrides the section table the
    header claims (lies about lengths); by default it is made from ``sections``."""
    h = dict(header)
    h["sections"] = table if table is not None else [[n, len(p), zlib.crc32(p)] for n, p in sections]
    raw = json.dumps(h, separators=(",", ":"), allow_nan=True).encode()
    z = zlib.compressobj(9, zdict=HEADER_ZDICT)
    packed = z.compress(raw) + z.flush()
    pre = _PREAMBLE.pack(MAGIC, version & 0xFF, len(packed), zlib.crc32(packed))
    return b"".join([pre, packed, *(p for _, p in sections), tail])


# ---------------------------------------------------------------------------------------------------------------
# hostile values and mutators
# ---------------------------------------------------------------------------------------------------------------
MODEL_NAMES = ("fourier", "siren", "hashgrid", "latentgrid", "gaussian", "video", "dataset", "tiled", "", "base",
               "__init__", "../fourier")

_FIXED_HOSTILE: list[Any] = [
    0, -1, 1, 2, 3, 4, 7, 8, 16, 255, 4096, 65535, 2**20, 2**24, 2**31 - 1, 2**31, 2**32 + 1, 2**53 + 1, 2**63,
    2**64, 10**30, -2**31, -2**63, 10**400,
    0.0, -0.0, 0.5, 1.5, 1e-320, 1e308, -1e308, math.nan, math.inf, -math.inf,
    True, False, None, "", "x", "nan", "1e9", "a" * 300, "\u0000", "é",
    [], [1], [0, 0], [1, 2, 3], [[1]], [math.nan, 1], [1] * 1000, {}, {"a": 1}, {"__class__": "x"},
]


def hostile_value(rng: random.Random, current: Any) -> Any:
    """A replacement for a header value: a fixed hostile value, or a distortion of the current one."""
    r = rng.random()
    if r < 0.45:
        return rng.choice(_FIXED_HOSTILE)
    if r < 0.55:
        return rng.choice(MODEL_NAMES)
    if r < 0.6:
        depth = rng.choice([10, 100, 5000])
        return json.loads("[" * depth + "]" * depth) if depth < 900 else [0] * 10
    if isinstance(current, bool):
        return not current
    # (an int beyond float range, left by an earlier mutation, would overflow isfinite and float() below)
    if isinstance(current, (int, float)) and not isinstance(current, bool) and (
            abs(current) < 2**1000 if isinstance(current, int) else math.isfinite(current)):
        return rng.choice([current + 1, current - 1, -current, current * 2, current * 1000, current * 2**20,
                           float(current) + 0.5, int(current) if isinstance(current, float) else float(current),
                           str(current), [current], current ** 2 if abs(current) < 2**40 else 0])
    if isinstance(current, str):
        return rng.choice([current + "x", current.upper(), "", current * 50, [current]])
    if isinstance(current, list):
        if not current:
            return [rng.choice(_FIXED_HOSTILE)]
        c = list(current)
        op = rng.randrange(4)
        if op == 0:
            c.pop(rng.randrange(len(c)))
        elif op == 1:
            c.append(rng.choice(c))
        elif op == 2:
            i = rng.randrange(len(c))
            c[i] = hostile_value(rng, c[i])
        else:
            rng.shuffle(c)
        return c
    if isinstance(current, dict):
        return rng.choice([{}, {k: None for k in current}, {**current, "unknown": 1}])
    return rng.choice(_FIXED_HOSTILE)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list) and len(obj) <= 16:
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _copy(header):
    return json.loads(json.dumps(header, allow_nan=True))


Mutator = Callable[[random.Random, bytes, list[bytes]], bytes]
MUTATORS: dict[str, Mutator] = {}


def mutator(fn: Mutator) -> Mutator:
    MUTATORS[fn.__name__] = fn
    return fn


@mutator
def header_value(rng, data, donors):
    """One header value (signal, model, config, extra; not the section table) replaced by a hostile one."""
    v, h, s = unseal(data)
    h = _copy(h)
    paths = [p for p in _paths(h) if p[0] != "sections"]
    for _ in range(1 + (rng.random() < 0.3) * rng.randrange(1, 4)):
        p = rng.choice(paths)
        try:
            _set(h, p, hostile_value(rng, _get(h, p)))
        except (KeyError, IndexError, TypeError):
            pass
    return reseal(h, s, v)


@mutator
def header_key(rng, data, donors):
    """A header or config key deleted, or an unknown one added."""
    v, h, s = unseal(data)
    h = _copy(h)
    target = rng.choice([h, h["config"], h["signal"], h.get("signal", {}).get("meta", {})])
    if target and rng.random() < 0.6:
        del target[rng.choice(list(target))]
    else:
        target[rng.choice(["unknown", "format_version", "ndim", "steps", "sections"])] = rng.choice(_FIXED_HOSTILE)
    return reseal(h, s, v)


@mutator
def config_swap(rng, data, donors):
    """Model name and/or config taken from another file (the sections stay): a siren config over fourier
    weights, a gaussian model over a latent grid ..."""
    v, h, s = unseal(data)
    _, dh, _ = unseal(rng.choice(donors))
    h = _copy(h)
    r = rng.random()
    if r < 0.4:
        h["model"] = dh["model"]
    elif r < 0.7:
        h["config"] = dh["config"]
    else:
        h["signal"] = dh["signal"]
    return reseal(h, s, v)


def _rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def _damage(rng, p: bytes) -> bytes:
    b = bytearray(p)
    op = rng.randrange(8)
    if op == 0 or not b:
        return _rand_bytes(rng, rng.choice([0, 1, 2, 5, 17, max(1, len(b)), 2 * len(b) + 3]))
    if op == 1:
        for _ in range(rng.randrange(1, 5)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if op == 2:
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.getrandbits(8)])
        return bytes(b)
    if op == 3:
        return bytes(b[: rng.randrange(len(b))])
    if op == 4:
        i = rng.randrange(len(b) + 1)
        return bytes(b[:i] + _rand_bytes(rng, rng.randrange(1, 9)) + b[i:])
    if op == 5:
        i = rng.randrange(len(b))
        del b[i : i + rng.randrange(1, 9)]
        return bytes(b)
    if op == 6:  # a run of 0xFF or 0x80 (varints that never end, huge lengths)
        i = rng.randrange(len(b))
        b[i : i + 12] = bytes([rng.choice([0xFF, 0x80])]) * 12
        return bytes(b)
    i = rng.randrange(len(b))  # zero a stretch
    b[i : i + rng.randrange(1, 64)] = bytes(min(64, len(b) - i))
    return bytes(b)


@mutator
def section_payload(rng, data, donors):
    """A section's payload damaged (bit flips, garbage, truncation, insertion, long varints), CRCs recomputed."""
    v, h, s = unseal(data)
    if not s:
        return reseal(h, [("x", _rand_bytes(rng, 8))], v)
    s = list(s)
    i = rng.randrange(len(s))
    s[i] = (s[i][0], _damage(rng, s[i][1]))
    return reseal(h, s, v)


@mutator
def section_table(rng, data, donors):
    """Sections reordered, duplicated, dropped, renamed, or spliced in from another file."""
    v, h, s = unseal(data)
    s = list(s)
    op = rng.randrange(5)
    if op == 0:
        rng.shuffle(s)
    elif op == 1 and s:
        s.insert(rng.randrange(len(s) + 1), rng.choice(s))
    elif op == 2 and s:
        s.pop(rng.randrange(len(s)))
    elif op == 3 and s:
        i = rng.randrange(len(s))
        s[i] = (rng.choice(["", "weights", "steps", "gaussians", "latents", "synth", "arm", "residual", "part:0",
                            "part:1", "part:01", "part:-1", "part:99", "x" * 200]), s[i][1])
    else:
        _, _, ds = unseal(rng.choice(donors))
        if ds:
            donor = rng.choice(ds)
            if s and rng.random() < 0.7:
                s[rng.randrange(len(s))] = (s[rng.randrange(len(s))][0], donor[1])
            else:
                s.append(donor)
    return reseal(h, s, v)


@mutator
def table_lie(rng, data, donors):
    """The section table lies about a length or a name (payload CRCs still valid for what is there)."""
    v, h, s = unseal(data)
    table = [[n, len(p), zlib.crc32(p)] for n, p in s]
    if table:
        e = rng.choice(table)
        k = rng.choice([0, 1, 1, 2])
        e[k] = hostile_value(rng, e[k])
    else:
        table.append(["x", 10, 0])
    return reseal(h, s, v, table=table, tail=_rand_bytes(rng, rng.choice([0, 0, 3])))


@mutator
def version_game(rng, data, donors):
    """Another format version byte, or a version claim in the header."""
    v, h, s = unseal(data)
    if rng.random() < 0.6:
        return reseal(h, s, rng.choice([0, 2, 3, 127, 128, 255]))
    h = _copy(h)
    h[rng.choice(["version", "format_version"])] = rng.choice([0, 2, -1, "1", 1.0])
    return reseal(h, s, v)


@mutator
def raw_bytes(rng, data, donors):
    """Damage to the sealed file itself (CRCs *not* recomputed): must be caught by the container."""
    return _damage(rng, data)


@mutator
def gaussian_flood(rng, data, donors):
    """A well-formed Gaussian section built from constant streams (a few bytes claim any count): many, huge,
    identical Gaussians, optionally on a larger claimed image. Byte mutations rarely find this; a bomb does."""
    import numpy as np

    from .entropy import encode_ints
    from .entropy._bytes import varint

    v, h, s = unseal(data)
    if h.get("model") != "gaussian":
        return section_payload(rng, data, donors)
    h = _copy(h)
    if rng.random() < 0.5:
        h["signal"]["shape"][:2] = [rng.choice([1, 24, 256, 4096]), rng.choice([1, 32, 256])]
    n = rng.choice([1, 100, 10_000, 65_536, 300_000, 4_000_000])
    c = h["signal"]["shape"][-1] if isinstance(h["signal"]["shape"][-1], int) else 3

    def blob(b: bytes) -> bytes:
        return varint(len(b)) + b

    const = lambda val: encode_ints(np.full(n, val))  # noqa: E731
    parts = [const(0), b"", const(rng.choice([-40, 0, 20, 40]))] + [const(rng.choice([0, 1, 50]))] * c
    parts += [const(rng.choice([0, 30])), const(0), b""]
    chunk = b"".join(blob(p) for p in parts)
    codes = bytes([0, 0, rng.choice([0, 8, 24]), 0, 0] + [0xF0] * c)
    h["config"]["n_gaussians"] = min(n, 1 << 22)
    return reseal(h, [("gaussians", varint(1) + varint(n) + codes + varint(len(chunk)) + chunk)], v)


def gaussian_costly_file(seed: bytes, h: int, w: int, n: int, v0: int = 40, rng_seed: int = 0) -> bytes:
    """A Gaussian file that pays its way: n Gaussians at one position, huge (log-size symbol v0), random colours
    (so the section spends more than the 2 bits per Gaussian the decoder asks for), on a claimed h x w image, from
    a Gaussian ``seed`` file. The most rendering work per byte the caps let through
    (``benchmarks/gaussian_worst_case.py``)."""
    import numpy as np

    rng = np.random.default_rng(rng_seed)
    v, header, _ = unseal(seed)
    header = json.loads(json.dumps(header))
    header["signal"]["shape"][:2] = [h, w]
    c = header["signal"]["shape"][-1]
    header["config"]["n_gaussians"] = n

    from inrcodec.models import gaussian_codec as gc

    steps = gc.Steps.from_codes(np.array([0, 0, 0, 0, 0] + [-16] * c, np.int64))
    q = gc.QuantizedGaussians(np.zeros(n, np.int64), np.zeros((n, 2), np.int64),
                              np.tile(np.array([[v0, 0, 0]], np.int64), (n, 1)), rng.integers(0, 50, (n, c)))
    section = gc.encode_section(q, np.zeros(n, np.int64), 1, steps)
    return reseal(header, [("gaussians", section)], v)


@mutator
def inner_part(rng, data, donors):
    """For a file of parts: any mutation applied to one inner part, then the outer file re-sealed."""
    v, h, s = unseal(data)
    parts = [i for i, (n, _) in enumerate(s) if n.startswith("part:")]
    if not parts:
        return section_payload(rng, data, donors)
    i = rng.choice(parts)
    inner = s[i][1]
    name = rng.choice([m for m in MUTATORS if m not in ("inner_part", "raw_bytes")])
    try:
        inner = MUTATORS[name](rng, inner, donors)
    except Exception:  # noqa: BLE001 - the inner part may not be a valid file any more: damage it instead
        inner = _damage(rng, inner)
    s = list(s)
    s[i] = (s[i][0], inner)
    return reseal(h, s, v)


def mutate(rng: random.Random, data: bytes, donors: list[bytes], rounds: int | None = None) -> tuple[bytes, str]:
    """One to three mutations in a row (each on a file that is still sealed). Returns (file, mutator names)."""
    names = []
    for _ in range(rounds or rng.choice([1, 1, 1, 2, 3])):
        name = rng.choice(list(MUTATORS))
        try:
            data = MUTATORS[name](rng, data, donors)
        except Exception:  # noqa: BLE001 - an earlier round broke the seal: keep damaging the bytes
            name, data = "raw_bytes", _damage(rng, data)
        names.append(name)
    return data, "+".join(names)


# ---------------------------------------------------------------------------------------------------------------
# the decoder under test
# ---------------------------------------------------------------------------------------------------------------
# Decoded-size cap while fuzzing. Seeds have <= 10^3 samples; a mutated shape may claim up to this many, which the
# decoder then honestly renders (time proportional to the claim: ~0.3-1 s per 10^5 samples on this CPU). The
# product default (limits.MAX_PIXELS) is far larger: rendering work is what that cap bounds, not a parser defect.
FUZZ_MAX_PIXELS = 1 << 16
SLOW_SECONDS = 2.0


def decode_target(data: bytes, max_pixels: int | None = FUZZ_MAX_PIXELS, depth: int = 0) -> None:
    """Decode as a user would: the whole file, or every part of a file of parts (and its progressive prefix)."""
    from . import dataset_codec, image_tiles, video_codec  # noqa: F401  (register their layouts)
    from .codec import decompress
    from .container import read_container
    from .parts import LAYOUTS, PART_PREFIX, part_count, read_part

    c = read_container(data)
    if c.model in LAYOUTS:  # a registered layout decodes its parts itself, under the same cap
        signal = decompress(data, max_pixels=max_pixels)
        if c.model == video_codec.LAYOUT and signal.data.shape[0] > 1:  # random access: the last frame alone
            n = signal.data.shape[0]
            list(video_codec.decode_windows(c, frames=(n - 1, n)))
        return
    if any(n.startswith(PART_PREFIX) for n in c.sections):
        if depth >= 2:
            raise FormatError("parts nested too deep")
        for i in range(part_count(c)):
            decode_target(c.sections[f"{PART_PREFIX}{i}"], max_pixels, depth + 1)
            read_part(c, i)
        return
    signal = decompress(data, max_pixels=max_pixels)
    _save_like_cli(signal)
    if c.model == "gaussian":
        decompress(data, fraction=0.5, max_pixels=max_pixels)


_SCRATCH: list = []


def _save_like_cli(signal) -> None:
    """Write the decoded signal as ``inrcodec decode`` would by default (the savers read header metadata)."""
    import tempfile
    from pathlib import Path

    from .signals import save

    if not _SCRATCH:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="inrc-fuzz-", dir=base))
    ext = {"image": ".png", "audio": ".wav"}.get(signal.kind, ".npy")
    if signal.kind == "image" and str(signal.dtype) not in ("uint8", "uint16"):
        ext = ".npy"
    save(signal, Path(_SCRATCH[0].name) / f"out{ext}")


def run_case(data: bytes, max_pixels: int | None = FUZZ_MAX_PIXELS) -> tuple[str, float, str]:
    """-> (outcome, seconds, message). Outcome "ok", "FormatError", "InputError", or another exception's name."""
    t0 = time.perf_counter()
    try:
        decode_target(data, max_pixels)
        outcome, msg = "ok", ""
    except FormatError as e:
        outcome, msg = "FormatError", str(e)
    except InputError as e:
        outcome, msg = "InputError", str(e)
    except Exception as e:  # noqa: BLE001 - everything else is what the harness is looking for
        outcome, msg = type(e).__name__, f"{type(e).__name__}: {e}"[:300]
    except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        outcome, msg = type(e).__name__, f"{type(e).__name__}: {e}"[:300]
    return outcome, time.perf_counter() - t0, msg


CLEAN = ("ok", "FormatError", "InputError")

# format 5 (16x16 groups and restoration filters together): made with both tools on, after the two above were frozen
register_seed("gaussian-dct-image-tx16-restore", _restored(_fit_maker("gaussian+dct", _tiny_image)))
# format 6 (the restoration filters with cross-channel taps, session 24)
register_seed("gaussian-dct-image-cross", _restored(_fit_maker("gaussian+dct", _tiny_image), cross=2))
# format 7 (the same tools, the symbols coded by coefcoder7's richer model, session 25): RGB with the filters forced
# (and 16x16 groups where the encoder takes them), gray 16-bit without filters
register_seed("gaussian-dct-image-rich", _restored(_fit_maker("gaussian+dct", _tiny_image), cross=2))
register_seed("gaussian-dct-gray16-rich", _fit_maker("gaussian+dct", lambda: _gray16(_tiny_image())))


def _sign_predicted(make: Callable[[], bytes], rich: bool = True, form: int = 1) -> Callable[[], bytes]:
    """``make`` with sign prediction forced (``image_dct.SIGN_PREDICTION`` "always": on the tiny image the sign
    stream would not pay for its bytes), so that the file's ``dct`` section (format 7) holds that tool, with the
    rich symbol model where ``rich`` (session 25), its sign stream in ``form`` (2: TOOL_SIGNS2, session 26)."""
    return _forcing(make, {"image_dct.SIGN_PREDICTION": "always", "image_dct.RICH_MODEL": rich,
                           "image_dct.SIGN_FORM": form})


# format 7 with both tools (the rich model and the signs predicted by boundary matching, signpred) with the
# 16x16 groups and cross-channel filters
register_seed("gaussian-dct-image-signpred",
              _sign_predicted(_restored(_fit_maker("gaussian+dct", _tiny_image), cross=2)))
# format 7 with sign prediction alone (format 2's symbol coder, its stream without the signs)
register_seed("gaussian-dct-image-signs-only",
              _sign_predicted(_restored(_fit_maker("gaussian+dct", _tiny_image), cross=2), rich=False))


def _session26_tools(make: Callable[[], bytes]) -> Callable[[], bytes]:
    """``make`` with format 7's session-26 tools forced in: chroma from luma without its guard (TOOL_CFL wherever its
    alphas are not all zero) and the 16x16 groups without theirs, biased toward them (TOOL_GROUPS needs a group)."""
    return _forcing(make, {"image_dct.CFL_GUARD": False, "image_dct.TX16_GUARD": False,
                           "image_tx16.CHOICE_BIAS": -400.0})


# format 7 with chroma from luma and the group flags in the symbol stream (session 26), every other tool too (RGB:
# sign prediction, cross-channel filters); gray 16-bit: the groups alone (no chroma)
register_seed("gaussian-dct-image-cfl-groups",
              _session26_tools(_sign_predicted(_restored(_fit_maker("gaussian+dct", _tiny_image), cross=2))))
register_seed("gaussian-dct-gray16-groups",
              _session26_tools(_fit_maker("gaussian+dct", lambda: _gray16(_tiny_image()))))
# format 7 with the sign stream's form 2 (TOOL_SIGNS2: round-major, every block predicted; session 26), both tools
register_seed("gaussian-dct-image-signs2",
              _sign_predicted(_restored(_fit_maker("gaussian+dct", _tiny_image), cross=2), form=2))
