"""Large images as files of tiles (layout ``"image-tiles"``): each tile an independent fit, blended at the seams.

    result = compress_tiled(signal, "gaussian", bpp=0.5)      # tiles fitted two at a time
    image = decode_tiled(result.data)                          # tile row by tile row (bounded memory)
    crop = decode_tiled(result.data, region=((0, 256), (0, 256)))   # decodes only the tiles that touch it

Why tiles: a whole-image fit of a 12-megapixel photo holds every per-pixel tensor of the model at once (the
latent grid's training step held ~1.2 GB at 1 MP, the Gaussian codec's initial placement and colour solve grow
with the image); a tile bounds that memory by the tile, lets both cores work (one tile each), and keeps encode
time linear in pixels because each tile gets the same schedule.

Layout (``inrcodec.parts``): the outer container's model is ``"image-tiles"``; its config holds the inner model,
the tile size ``[th, tw]`` of a regular grid (the last row/column may be smaller), ``margin`` and the grid
``[rows, cols]``. Part ``r * cols + c`` is a complete image ``.inrc`` of the tile's core box grown by ``margin``
pixels on every side that has a neighbour (clipped to the image), of the same dtype, channels and value range.

Seams: neighbouring tiles overlap by ``2 * margin`` pixels and are cross-faded there with linear weights that sum
to one (separable, so four tiles at a corner also sum to one). A tile's fit is worst at its own border; the fade
gives each pixel of the overlap mostly to the tile in whose interior it lies, and no hard step remains. The cost
is the overlap, coded twice: (1 + 2m/t)^2 - 1 of the pixels, 1.6 % for 1024-pixel tiles and m = 4.

Rate control (one target for the whole file): the byte budget less the outer header is shared by the tiles in
proportion to what a JPEG of each tile costs at one common quality (the quality at which the JPEG tiles would
fill the budget). A fixed JPEG quality is a fixed quantiser, i.e. about one RD slope for every tile, so this is a
measured proxy for equal-slope allocation, at the cost of one JPEG per tile. Tiles are fitted in waves of
``workers``; after each wave the budget left is split again over the tiles left on the same weights, so a tile
that lands under its share passes the rest on (as the video codec does for GOPs). ``--psnr`` asks every tile for
the target PSNR.
"""

from __future__ import annotations

import concurrent.futures
import io
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__
from .container import Container, read_container
from .errors import FormatError, InputError
from .limits import check_pixels, resolve_max_pixels
from .parts import pack_parts, part_count, part_section, register_layout
from .signal import Signal

LAYOUT = "image-tiles"
LAYOUT_VERSION = 1
# Images above this many pixels are tiled by default (``--tile``/``--no-tile`` override), per model where measured
# (benchmarks/README.md "Large photos and tiles"). The latent grid holds ~0.8 GB per megapixel whole (1.18 GB at
# 1 MP, 2.79 GB at 3 MP): tiled from 2.5 MP, it stays under 4 GB (1.86 GB at 12 MP). The Gaussian codec held
# 2.32 GB whole at 12 MP, and whole beat tiles at equal steps on a 3 MP photo (37.18 dB at 0.447 bpp against
# 35.43 dB at 0.467 bpp, 20 steps; scale_3mp_whole_vs_tiled.json): it is tiled only past 16 MP (~3 GB whole).
# gaussian+dct (the presets' model) keeps the 2.5 MP default: whole, its residual's RD quantiser held 3.87 GB at
# 6.3 MP RGB (1.93 GB at 6 MP gray), while 1024-px tiles held 0.97 GB at 6 MP and 1.07 GB at 12 MP; at equal steps
# on a 2.4 MP gray crop whole was ahead by 0.16 dB at 0.15 bpp (benchmarks/README.md "gaussian+dct on large photos").
AUTO_TILE_PIXELS = 2_500_000
AUTO_TILE_PIXELS_BY_MODEL = {"gaussian": 16_000_000}
DEFAULT_TILE = 1024  # tile side in pixels before balancing (tiles of a row/column are made equal)
# 4 px: on a generated 128x192 image in 64-px tiles (benchmarks/results/tile_seams.json) the error of neighbour
# differences across borders was 19x (gaussian) / 13x (latentgrid) the interior's with cut tiles (margin 0),
# 1.04x / 1.02x with margin 4, 1.10x with 8; each extra pixel of margin only adds overlap coded twice.
DEFAULT_MARGIN = 4
MIN_TILE = 16
MAX_TILES = 4096
MAX_MARGIN = 256

TileProgress = Callable[[int, int, float], None]  # (tiles done, tiles, elapsed seconds)


# -- geometry -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    height: int
    width: int
    tile_h: int
    tile_w: int
    margin: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.tile_h)

    @property
    def cols(self) -> int:
        return -(-self.width // self.tile_w)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def core(self, i: int) -> tuple[int, int, int, int]:
        r, c = divmod(i, self.cols)
        return (r * self.tile_h, min((r + 1) * self.tile_h, self.height),
                c * self.tile_w, min((c + 1) * self.tile_w, self.width))

    def extended(self, i: int) -> tuple[int, int, int, int]:
        y0, y1, x0, x1 = self.core(i)
        m = self.margin
        return max(y0 - m, 0), min(y1 + m, self.height), max(x0 - m, 0), min(x1 + m, self.width)

    def ramp(self, lo: int, hi: int, core_lo: int, core_hi: int, n: int) -> np.ndarray:
        """Blend weights along one axis of a tile spanning [lo, hi) whose core is [core_lo, core_hi): rises over
        [core_lo - m, core_lo + m) where a neighbour lies before, falls over [core_hi - m, core_hi + m) where one
        lies after; a neighbour's ramp is the complement, so the weights of overlapping tiles sum to 1."""
        m = self.margin
        pos = np.arange(lo, hi, dtype=np.float64) + 0.5
        w = np.ones(hi - lo)
        if m > 0 and core_lo > 0:
            w = np.minimum(w, np.clip((pos - (core_lo - m)) / (2 * m), 0.0, 1.0))
        if m > 0 and core_hi < n:
            w = np.minimum(w, np.clip(((core_hi + m) - pos) / (2 * m), 0.0, 1.0))
        return w.astype(np.float32)

    def weights(self, i: int) -> np.ndarray:
        """(h, w, 1) blend weights of tile ``i`` over its extended box."""
        y0, y1, x0, x1 = self.extended(i)
        cy0, cy1, cx0, cx1 = self.core(i)
        wy = self.ramp(y0, y1, cy0, cy1, self.height)
        wx = self.ramp(x0, x1, cx0, cx1, self.width)
        return (wy[:, None] * wx[None, :])[..., None]

    def validate(self) -> None:
        if self.tile_h < MIN_TILE or self.tile_w < MIN_TILE:
            raise FormatError(f"tile {self.tile_h}x{self.tile_w} is smaller than {MIN_TILE}")
        if not 0 <= self.margin <= min(MAX_MARGIN, self.tile_h // 2, self.tile_w // 2):
            raise FormatError(f"tile margin {self.margin} out of range for {self.tile_h}x{self.tile_w} tiles")
        if self.count > MAX_TILES:
            raise FormatError(f"{self.count} tiles, more than the cap of {MAX_TILES}")


def plan_grid(height: int, width: int, tile: int | tuple[int, int] | None = None,
              margin: int | None = None) -> Grid:
    """A grid of about ``tile``-pixel tiles, balanced so the tiles of a row (column) have equal size."""
    th, tw = (tile, tile) if isinstance(tile, int) or tile is None else tile
    th, tw = th or DEFAULT_TILE, tw or DEFAULT_TILE
    if min(th, tw) < MIN_TILE:
        raise InputError(f"--tile must be at least {MIN_TILE} pixels, got {min(th, tw)}")
    rows, cols = -(-height // th), -(-width // tw)
    th, tw = -(-height // rows), -(-width // cols)  # balance: 3000 px in 1024-tiles -> 3 x 1000, not 1024+1024+952
    # tiles no smaller than MIN_TILE (a thin image keeps one tile across)
    th, tw = max(th, min(MIN_TILE, height)), max(tw, min(MIN_TILE, width))
    m = DEFAULT_MARGIN if margin is None else int(margin)
    m = max(0, min(m, th // 2, tw // 2, MAX_MARGIN))
    g = Grid(height, width, max(th, MIN_TILE), max(tw, MIN_TILE), m)
    if g.count > MAX_TILES:
        raise InputError(f"{g.count} tiles of {th}x{tw}: more than {MAX_TILES}; use larger tiles")
    return g


def should_tile(signal: Signal, tile: bool | None, model: str | None = None) -> bool:
    """``tile`` True/False forces it; None: images above the model's threshold (AUTO_TILE_PIXELS_BY_MODEL, else
    AUTO_TILE_PIXELS) are tiled."""
    if signal.kind != "image" or signal.ndim_coords != 2:
        if tile:
            raise InputError("--tile applies to images only")
        return False
    if tile is not None:
        return bool(tile)
    return signal.num_pixels > AUTO_TILE_PIXELS_BY_MODEL.get(model or "", AUTO_TILE_PIXELS)


# -- rate allocation ----------------------------------------------------------------------------------------------
def _jpeg_bytes(tiles8: list[np.ndarray], quality: int) -> np.ndarray:
    from .baselines import JPEG

    codec = JPEG()
    return np.array([len(codec.encode(t, quality)) for t in tiles8], dtype=np.float64)


def _as_uint8(data: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    lo, hi = value_range
    x = (data.astype(np.float32) - lo) / max(hi - lo, 1e-12)
    x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., :3] if x.shape[-1] >= 3 else x[..., 0]


def allocation_weights(signal: Signal, grid: Grid, target_bytes: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Share of the budget per tile (sums to 1): each tile's JPEG size at the one quality at which the JPEG tiles
    together fill ``target_bytes`` (bisection on the quality); see the module docstring."""
    tiles8 = []
    for i in range(grid.count):
        y0, y1, x0, x1 = grid.extended(i)
        tiles8.append(_as_uint8(signal.data[y0:y1, x0:x1], signal.value_range))
    lo, hi = 5, 95
    sizes = _jpeg_bytes(tiles8, 50)
    q = 50
    while hi - lo > 2:  # JPEG size grows with quality: ~5 encodes of every tile
        q = (lo + hi) // 2
        sizes = _jpeg_bytes(tiles8, q)
        lo, hi = (q, hi) if sizes.sum() < target_bytes else (lo, q)
    share = sizes / sizes.sum()
    return share, {"rule": "jpeg-equal-quality", "jpeg_quality": int(q)}


# -- encoding -----------------------------------------------------------------------------------------------------
def compress_tiled(signal: Signal, model: str | None = None, *, bpp: float | None = None,
                   psnr: float | None = None, time_budget: float | None = None, steps: int | None = None,
                   seed: int = 0, preset: str | None = None, config: dict[str, Any] | None = None,
                   tile: int | tuple[int, int] | None = None, margin: int | None = None,
                   workers: int | None = None, progress: TileProgress | None = None, allocation: str = "jpeg"):
    """Encode an image as a file of tiles (see the module docstring). Same targets as ``codec.compress`` except
    ``max_error`` (use an untiled encode). ``time_budget`` is for the whole encode. ``allocation``: ``"jpeg"``
    (the measured rule of the module docstring) or ``"area"`` (bytes in proportion to pixels; for comparison)."""
    from .codec import CompressResult, compress, mark_targets
    from .presets import preset_model

    t0 = time.perf_counter()
    if bpp is not None and psnr is not None:
        raise InputError("give at most one of bpp, psnr")
    if bpp is not None and not bpp > 0:
        raise InputError(f"bpp must be positive, got {bpp}")
    if signal.kind != "image" or signal.ndim_coords != 2:
        raise InputError("tiling applies to images (2 coordinate axes)")
    h, w = signal.coord_shape
    grid = plan_grid(h, w, tile, margin)
    desc = signal.describe()
    name = preset_model("image", preset, model, desc)
    n = grid.count
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), n))
    if time_budget is None and steps is None:
        # the preset's schedule is the whole image's: its steps for every tile, its wall-clock cap (per megapixel of
        # the image) shared by the tiles; each tile resolving its own cap would give every one the cap's floor
        from .models import get_model
        from .presets import resolve

        plan = resolve("image", signal.num_pixels, preset, name, None, None, lambda m: get_model(m).default_steps,
                       desc)
        steps, time_budget = plan.steps, plan.time_budget

    target_total = None if bpp is None else bpp * signal.num_pixels / 8.0
    share = np.full(n, 1.0 / n)
    alloc_info: dict[str, Any] = {"rule": "none"}
    budget_left = None
    if target_total is not None:
        budget_left = target_total - _outer_overhead(desc, name, grid)
        if budget_left < 200 * n:
            raise InputError(f"--bpp {bpp} leaves {budget_left:.0f} bytes for {n} tiles: raise the rate or the "
                             "tile size (--tile)")
        if allocation == "jpeg":
            share, alloc_info = allocation_weights(signal, grid, budget_left)
        elif allocation != "area":
            raise InputError(f"unknown tile allocation {allocation!r}")
    ext_pixels = np.array([(b[1] - b[0]) * (b[3] - b[2]) for b in map(grid.extended, range(n))], dtype=np.float64)
    if target_total is not None and allocation == "area":
        share, alloc_info = ext_pixels / ext_pixels.sum(), {"rule": "area"}

    parts: list[bytes | None] = [None] * n
    reports: list[dict[str, Any] | None] = [None] * n

    def encode_tile(i: int, target_bytes: float | None, seconds: float | None):
        y0, y1, x0, x1 = grid.extended(i)
        sig = Signal(np.ascontiguousarray(signal.data[y0:y1, x0:x1]), "image", signal.value_range,
                     dict(signal.metadata))
        tile_bpp = None if target_bytes is None else 8.0 * target_bytes / sig.num_pixels
        return compress(sig, name, bpp=tile_bpp, psnr=psnr, time_budget=seconds, steps=steps, seed=seed + i,
                        config=config, preset=preset, tile=False)

    import torch

    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)  # one intra-op thread per tile in flight: the tiles are the parallelism
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, n, workers):
                wave = list(range(start, min(start + workers, n)))
                left = np.arange(start, n)
                jobs = []
                for i in wave:
                    tb = None
                    if budget_left is not None:
                        tb = max(budget_left * share[i] / share[left].sum(), 64.0)
                    sec = None
                    if time_budget is not None:  # the wave's tiles run side by side: their share of the time
                        spent = time.perf_counter() - t0
                        share_px = ext_pixels[wave].sum()
                        # what is left, by pixels; but never under half the wave's share of the whole budget: on
                        # an overloaded machine the first waves overrun (placement and coding are not bounded by
                        # the clock), and the last tiles would otherwise get nothing and show as worse patches
                        sec = max((0.95 * time_budget - spent) * share_px / ext_pixels[left].sum(),
                                  0.5 * 0.95 * time_budget * share_px / ext_pixels.sum(), 2.0)
                    jobs.append(pool.submit(encode_tile, i, tb, sec))
                for i, job in zip(wave, jobs):
                    r = job.result()
                    parts[i], reports[i] = r.data, r.report
                    if budget_left is not None:
                        budget_left -= len(r.data)
                if progress is not None:
                    progress(wave[-1] + 1, n, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)

    cfg = {"version": LAYOUT_VERSION, "model": name, "tile": [grid.tile_h, grid.tile_w], "margin": grid.margin,
           "grid": [grid.rows, grid.cols]}
    data = pack_parts(desc, LAYOUT, cfg, parts, None, {"encoder": f"inrcodec {__version__}"})
    decoded = decode_tiled(data, max_pixels=0)
    from .codec import _finite_psnr

    report = {
        "model": name,
        "layout": LAYOUT,
        "preset": preset or "medium",
        "bytes": len(data),
        "bpp": 8.0 * len(data) / signal.num_pixels,
        "psnr": _finite_psnr(signal, decoded),
        "seconds": time.perf_counter() - t0,
        "tiles": n,
        "grid": [grid.rows, grid.cols],
        "tile": [grid.tile_h, grid.tile_w],
        "margin": grid.margin,
        "workers": workers,
        "allocation": alloc_info,
        "tile_bytes": [len(p) for p in parts],
        "tile_psnr": [round(float(r["psnr"]), 3) for r in reports],
        "fit_steps": int(sum(r.get("fit_steps") or 0 for r in reports)),  # all tiles together (a number, as untiled)
        "tile_fit_steps": [r.get("fit_steps") for r in reports],
        "shape": list(signal.data.shape),
        "dtype": str(signal.dtype),
    }
    mark_targets(report, bpp, psnr)
    return CompressResult(data, report)


def _outer_overhead(desc: dict[str, Any], model: str, grid: Grid) -> int:
    """Bytes of the outer file that are not tile payloads (header, section table, CRCs), measured on stand-in
    parts of plausible (5-digit) sizes."""
    fake = [b"\0" * 10000 for _ in range(grid.count)]
    cfg = {"version": LAYOUT_VERSION, "model": model, "tile": [grid.tile_h, grid.tile_w], "margin": grid.margin,
           "grid": [grid.rows, grid.cols]}
    data = pack_parts(desc, LAYOUT, cfg, fake, None, {"encoder": f"inrcodec {__version__}"})
    return len(data) - sum(len(f) for f in fake) + 2 * grid.count


# -- decoding -----------------------------------------------------------------------------------------------------
@dataclass
class TiledFile:
    container: Container
    grid: Grid
    model: str


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise FormatError(f"image-tiles config: {what} is not an integer")
    return v


def open_tiled(data: bytes | Container) -> TiledFile:
    c = read_container(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if c.model != LAYOUT:
        raise InputError(f"not a tiled image (model {c.model!r})")
    cfg, sig = c.config, c.signal
    if sig.get("kind") != "image" or len(sig.get("shape", [])) != 3:
        raise FormatError("image-tiles file does not describe an image")
    if _int(cfg.get("version"), "version") != LAYOUT_VERSION:
        raise FormatError(f"image-tiles layout version {cfg.get('version')} is not supported")
    if not isinstance(cfg.get("model"), str):
        raise FormatError("image-tiles config names no model")
    tile, grid_rc = cfg.get("tile"), cfg.get("grid")
    if not (isinstance(tile, list) and len(tile) == 2 and isinstance(grid_rc, list) and len(grid_rc) == 2):
        raise FormatError("image-tiles config has no valid tile size and grid")
    h, w = (_int(s, "shape") for s in sig["shape"][:2])
    g = Grid(h, w, _int(tile[0], "tile"), _int(tile[1], "tile"), _int(cfg.get("margin"), "margin"))
    g.validate()
    if [g.rows, g.cols] != [_int(grid_rc[0], "grid"), _int(grid_rc[1], "grid")]:
        raise FormatError("image-tiles grid does not match the image and tile sizes")
    if part_count(c) != g.count:
        raise FormatError(f"image-tiles file has {part_count(c)} tile sections for a grid of {g.count}")
    return TiledFile(c, g, cfg["model"])


def _render_tile(tf: TiledFile, i: int, fraction: float | None, max_pixels: int) -> np.ndarray:
    """Normalised float32 render of tile ``i`` over its extended box (checked against the outer header), under the
    caller's caps (``max_pixels`` 0: lifted, e.g. the encoder checking its own file)."""
    from .codec import load_representation

    import torch

    inner = tf.container.sections[part_section(i)]
    c, net = load_representation(inner, fraction, max_pixels=max_pixels)
    y0, y1, x0, x1 = tf.grid.extended(i)
    outer = tf.container.signal
    if c.model != tf.model:
        raise FormatError(f"tile {i} uses model {c.model!r}, the file says {tf.model!r}")
    if (c.signal.get("kind") != "image" or list(c.signal["shape"]) != [y1 - y0, x1 - x0, outer["shape"][2]]
            or c.signal.get("dtype") != outer["dtype"] or list(c.signal.get("range", [])) != list(outer["range"])):
        raise FormatError(f"tile {i} does not match its place in the grid")
    with torch.no_grad():
        values = net.render().numpy().astype(np.float32, copy=False)
    if values.shape != (y1 - y0, x1 - x0, outer["shape"][2]) or not np.isfinite(values).all():
        raise FormatError(f"tile {i} decodes to a wrong shape or non-finite values: it is corrupt")
    return values


def decode_bands(data: bytes | Container, region: tuple[tuple[int, int], tuple[int, int]] | None = None,
                 fraction: float | None = None, max_pixels: int | None = None) -> Iterator[tuple[int, Signal]]:
    """(first row, decoded band) pairs covering ``region`` (default: the whole image) top to bottom, one tile row
    at a time: memory is one band of the region's width, never the whole image. Only tiles whose (extended) box
    meets the region are decoded."""
    tf = open_tiled(data)
    g, desc = tf.grid, tf.container.signal
    check_pixels((g.height, g.width), max_pixels)
    tile_cap = resolve_max_pixels(max_pixels) or 0  # each tile is decoded under the same caps (work caps too)
    (ry0, ry1), (rx0, rx1) = region if region is not None else ((0, g.height), (0, g.width))
    if not (0 <= ry0 < ry1 <= g.height and 0 <= rx0 < rx1 <= g.width):
        raise InputError(f"region {region} is not inside the {g.width}x{g.height} image")
    check_pixels((ry1 - ry0, rx1 - rx0), max_pixels, "requested region")
    nc = int(desc["shape"][2])
    acc: np.ndarray | None = None  # float32 rows [acc_y0, acc_y0 + len) of the region, all columns
    acc_y0 = ry0
    for r in range(g.rows):
        row_tiles = [r * g.cols + c for c in range(g.cols)]
        y0, y1 = g.extended(row_tiles[0])[:2]
        done_to = g.extended((r + 1) * g.cols)[0] if r + 1 < g.rows else g.height  # no later row reaches above
        if y1 > ry0 and y0 < ry1:
            hi = min(y1, ry1)
            need = hi - acc_y0
            if acc is None:
                acc = np.zeros((need, rx1 - rx0, nc), np.float32)
            elif need > len(acc):
                acc = np.concatenate([acc, np.zeros((need - len(acc), rx1 - rx0, nc), np.float32)])
            for i in row_tiles:
                ty0, ty1, tx0, tx1 = g.extended(i)
                if tx1 <= rx0 or tx0 >= rx1:
                    continue
                vals = _render_tile(tf, i, fraction, tile_cap) * g.weights(i)
                ya, yb, xa, xb = max(ty0, ry0), min(ty1, ry1), max(tx0, rx0), min(tx1, rx1)
                acc[ya - acc_y0:yb - acc_y0, xa - rx0:xb - rx0] += vals[ya - ty0:yb - ty0, xa - tx0:xb - tx0]
        if acc is not None:
            cut = min(max(done_to, acc_y0), ry1) - acc_y0
            if cut > 0:
                band = Signal.from_normalized(np.clip(acc[:cut], 0.0, 1.0), {**desc, "shape": [cut, rx1 - rx0, nc]})
                yield acc_y0, band
                acc, acc_y0 = acc[cut:], acc_y0 + cut
        if acc_y0 >= ry1:
            break


def decode_tiled(data: bytes | Container, region: tuple[tuple[int, int], tuple[int, int]] | None = None,
                 fraction: float | None = None, max_pixels: int | None = None) -> Signal:
    """The decoded image (or ``region``) as one Signal, assembled band by band."""
    tf = open_tiled(data)
    desc = tf.container.signal
    (ry0, ry1), (rx0, rx1) = region if region is not None else ((0, tf.grid.height), (0, tf.grid.width))
    out = None
    for y, band in decode_bands(tf.container, region, fraction, max_pixels):
        if out is None:
            out = np.empty((ry1 - ry0, rx1 - rx0, band.data.shape[2]), band.data.dtype)
        out[y - ry0:y - ry0 + len(band.data)] = band.data
    return Signal(out, "image", tuple(desc["range"]), dict(desc.get("meta", {})))


def _layout_decoder(c: Container, shape=None, region=None, fraction=None, max_pixels=None) -> Signal:
    tf = open_tiled(c)
    if shape is not None and tuple(shape) != (tf.grid.height, tf.grid.width):
        raise InputError("a tiled image decodes at its own size (a region of it is fine; --size/--scale is not "
                         "supported for tiled files yet)")
    if region is not None:
        region = tuple((int(a), int(b)) for a, b in region)
    return decode_tiled(c, region=region, fraction=fraction, max_pixels=max_pixels)


register_layout(LAYOUT, _layout_decoder)


def describe(data: bytes | Container) -> list[str]:
    """Lines for ``inrcodec info``."""
    tf = open_tiled(data)
    g = tf.grid
    sizes = [len(tf.container.sections[part_section(i)]) for i in range(g.count)]
    return [f"tiles:    {g.rows}x{g.cols} of {g.tile_h}x{g.tile_w} px, margin {g.margin} px (blended), model "
            f"{tf.model}, {min(sizes)}-{max(sizes)} bytes per tile"]


def seam_error(original: np.ndarray, decoded: np.ndarray, grid: Grid, band: int = 2) -> dict[str, float]:
    """How visible the tile borders are, in the data's units squared. ``step_*``: mean squared error of the
    difference between neighbouring pixels (decoded minus original), for the pairs that straddle a tile border
    against all other pairs: a seam is a jump the original does not have, so ``step_ratio`` (border / interior)
    is about 1 without seams. ``border_*``: plain MSE of the pixels within ``band`` of a border vs the rest."""
    h, w = grid.height, grid.width
    e = original.astype(np.float64).reshape(h, w, -1) - decoded.astype(np.float64).reshape(h, w, -1)
    dy = ((e[1:] - e[:-1]) ** 2).mean(-1)  # pair (y-1, y) at row index y-1
    dx = ((e[:, 1:] - e[:, :-1]) ** 2).mean(-1)
    cross_y = np.zeros(h - 1, bool)
    cross_y[[r * grid.tile_h - 1 for r in range(1, grid.rows)]] = True
    cross_x = np.zeros(w - 1, bool)
    cross_x[[c * grid.tile_w - 1 for c in range(1, grid.cols)]] = True
    seam = np.concatenate([dy[cross_y].ravel(), dx[:, cross_x].ravel()])
    rest = np.concatenate([dy[~cross_y].ravel(), dx[:, ~cross_x].ravel()])
    near = np.zeros((h, w), bool)
    for r in range(1, grid.rows):
        near[max(r * grid.tile_h - band, 0):r * grid.tile_h + band] = True
    for c in range(1, grid.cols):
        near[:, max(c * grid.tile_w - band, 0):c * grid.tile_w + band] = True
    err = (e ** 2).mean(-1)
    out = {"step_border": float(seam.mean()) if seam.size else float("nan"), "step_interior": float(rest.mean()),
           "border_mse": float(err[near].mean()) if near.any() else float("nan"),
           "interior_mse": float(err[~near].mean())}
    out["step_ratio"] = out["step_border"] / max(out["step_interior"], 1e-12)
    out["border_ratio"] = out["border_mse"] / max(out["interior_mse"], 1e-12)
    return out
