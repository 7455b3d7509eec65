"""Restoring images with a zoo network, tiled when large.

* :func:`restore_tiled` — from a *clean* image: each tile is measured with the network's own
  physics and reconstructed (CS: a block-separable operator measured on an aligned tile gives
  exactly the matching blocks of the whole measurement).
* :func:`restore_inputs_tiled` — from *given* inputs (a noisy image and its guide): every image
  input of the same size is cut into the same tiles; non-image inputs (σ) pass unchanged. Exact for
  pixel-wise physics up to the network's receptive field, which the overlap covers.

Tiles lie on a grid that is a multiple of ``net.tile_multiple``, overlap by ``overlap`` pixels and
are blended with linear ramps, so there are no seams; memory is bounded by the tile size.

* :func:`auto_tile` — the tile size that restores a large input fastest on this machine: each
  candidate ``T`` is timed once on a ``T×T`` crop and scored per *new* output pixel,
  ``t(T) / (T − overlap)²`` (the overlap is recomputed by both neighbours); the winner is cached per
  (network, device, dtype, threads, overlap) for the process. Inputs of at most
  :func:`whole_max_pixels` run whole (512², or 1024² once :func:`zoo.utils.allocator.tune_allocator`
  ran; the timed sides then go up to 1024, :func:`tile_candidates`). :func:`tile_progress` shows a
  tqdm bar over the tiles (off unless asked; ``None`` = on when stderr is a terminal).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time
from typing import IO, Any, Callable, Iterator, Sequence

import torch

from zoo.models.base import Restorer
from zoo.physics.base import check_finite
from zoo.utils.allocator import tuned as allocator_tuned

__all__ = ["simulate_and_restore", "restore", "restore_tiled", "restore_inputs_tiled", "check_tiling", "auto_tile",
           "tile_progress", "spatial_inputs", "crop_inputs", "TILE_CANDIDATES", "WHOLE_MAX_PIXELS", "whole_max_pixels",
           "tile_candidates"]

# candidate tile sides: the largest bounds the memory of a tiled run; an input of at most that many pixels
# runs whole (one tile of it would be the whole image anyway, and the timing would cost more than it saves)
TILE_CANDIDATES = (128, 192, 256, 384, 512)
WHOLE_MAX_PIXELS = 512 * 512
# with glibc's thresholds raised (zoo.utils.allocator, as the CLI runs) a whole 1024² image beats tiles
# (lorun-cs-r25: 14.5 s whole vs 19.2 s tiled; ssopga-flash 4.9 vs 11.7 s: results/deploy/efficiency_allocator);
# above it tiles keep the memory bounded
WHOLE_MAX_PIXELS_TUNED = 1024 * 1024
# ... and tiles up to that size stay as fast per pixel, so a 2048² image takes 2×2 tiles of ~1050 with 2 % of
# overlap work instead of 4×4 of ~530 with 20 % (results/deploy/efficiency_allocator)
TILE_CANDIDATES_TUNED = TILE_CANDIDATES + (768, 1024)


def whole_max_pixels() -> int:
    """Output pixels up to which :func:`auto_tile` runs an input whole (larger when the allocator is tuned)."""
    return WHOLE_MAX_PIXELS_TUNED if allocator_tuned() else WHOLE_MAX_PIXELS


def tile_candidates() -> tuple[int, ...]:
    """Tile sides (output pixels) :func:`auto_tile` times by default; the largest bounds a tiled run's memory, and it
    equals the side of the largest whole run (larger when the allocator is tuned)."""
    return TILE_CANDIDATES_TUNED if allocator_tuned() else TILE_CANDIDATES


_AUTO: dict[tuple, tuple[dict[int, float], int]] = {}  # (network, device, dtype, threads, overlap, multiple,
# candidate sides) -> (seconds of one tile per timed side, context pixels per tile)
_CONTEXT: contextvars.ContextVar[int] = contextvars.ContextVar("zoo_tile_context", default=0)  # last run's context
_PROGRESS: contextvars.ContextVar[tuple[bool | None, IO[str] | None]] = contextvars.ContextVar(
    "zoo_tile_progress", default=(False, None))


@contextlib.contextmanager
def tile_progress(enabled: bool | None = None, file: IO[str] | None = None) -> Iterator[None]:
    """Inside the block, tiled restores show a progress bar over the tiles on ``file`` (stderr).

    ``enabled=None``: only when ``file`` is a terminal (never in logs, pipes or tests); ``False``: off.
    """
    token = _PROGRESS.set((enabled, file))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _bar(total: int):
    enabled, file = _PROGRESS.get()
    file = file or sys.stderr
    if enabled is None:
        enabled = bool(getattr(file, "isatty", lambda: False)())
    if not enabled or total <= 1:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="tiles", unit="tile", file=file, leave=False, dynamic_ncols=True)


def simulate_and_restore(net: Restorer, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Simulate ``net``'s measurement of the clean image ``x`` and reconstruct it (no grad)."""
    check_finite(x, "input image")
    with torch.no_grad():
        inputs = net.measure(x)
        return net(**inputs).float(), inputs


def check_tiling(tile: int, overlap: int, multiple: int = 1) -> tuple[int, int]:
    """Validate the user's ``tile``/``overlap`` (in their own units) → values aligned to ``multiple``."""
    if tile <= 0 or overlap < 0:
        raise ValueError(f"tile must be > 0 and overlap >= 0 pixels, got tile={tile}, overlap={overlap}")
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than tile ({tile})")
    t, o = max(multiple, tile // multiple * multiple), overlap // multiple * multiple
    if o >= t:
        raise ValueError(f"tile {tile} and overlap {overlap} round to {t} and {o} on this model's {multiple}-pixel "
                         f"grid: the overlap must stay below the tile; use a tile of at least {o + multiple}")
    return t, o


def _ramp(n: int, ov: int, first: bool, last: bool, like: torch.Tensor) -> torch.Tensor:
    w = torch.ones(n, dtype=like.dtype, device=like.device)
    if ov > 0:
        r = torch.linspace(0, 1, ov + 2, dtype=like.dtype, device=like.device)[1:-1]
        if not first:
            w[:ov] = r
        if not last:
            w[-ov:] = r.flip(0)
    return w


def _tiled(size: tuple[int, int], out_shape: tuple[int, ...], tile: int, overlap: int, m: int,
           run: Callable[[int, int, int, int], torch.Tensor], like: torch.Tensor, scale: int = 1) -> torch.Tensor:
    """Blend ``run(top, bottom, left, right)`` over aligned, overlapping tiles of an ``size`` image; the output
    of a tile is ``scale`` times its size (super-resolution) and is placed at ``scale`` times its coordinates."""
    h, w = size
    out = torch.zeros(out_shape, dtype=torch.float32, device=like.device)
    acc = torch.zeros_like(out)
    step = tile - overlap

    def spans(n: int) -> list[tuple[int, int]]:
        # aligned starts; the last tile starts at the last aligned position and runs to the end
        last = max(0, (n - tile) // m * m)
        s = sorted(set(list(range(0, last, step)) + [last]))
        return [(a, n if a == last else a + tile) for a in s]

    ys, xs = spans(h), spans(w)
    bar = _bar(len(ys) * len(xs))
    for i, (t, b) in enumerate(ys):
        for j, (left, r) in enumerate(xs):
            rec = run(t, b, left, r)
            if bar is not None:
                bar.update()
            s = scale
            wy = _ramp((b - t) * s, overlap * s, i == 0, i == len(ys) - 1, out)
            wx = _ramp((r - left) * s, overlap * s, j == 0, j == len(xs) - 1, out)
            wt = wy[:, None] * wx[None, :]
            out[..., t * s : b * s, left * s : r * s] += rec * wt
            acc[..., t * s : b * s, left * s : r * s] += wt
    if bar is not None:
        bar.close()
    return out / acc.clamp_min(1e-8)


def restore_tiled(net: Restorer, x: torch.Tensor, tile: int = 264, overlap: int = 33) -> torch.Tensor:
    """Like :func:`simulate_and_restore` on ``tile×tile`` tiles (multiples of ``net.tile_multiple``), blended."""
    tile, overlap = check_tiling(tile, overlap, int(net.tile_multiple))
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return simulate_and_restore(net, x)[0]
    return _tiled((h, w), tuple(x.shape), tile, overlap, int(net.tile_multiple),
                  lambda t, b, l, r: simulate_and_restore(net, x[..., t:b, l:r])[0], x)


def restore_inputs_tiled(net: Restorer, inputs: dict[str, Any], tile: int = 512, overlap: int = 32,
                         like: str | None = None, scale: int = 1, context: int = 0) -> torch.Tensor:
    """``net(**inputs)`` on tiles: every 4-D input of the size of ``inputs[like]`` (default: the first
    4-D input) is cut into the same tiles; other inputs are passed unchanged. ``scale``: the output is
    that many times larger than the inputs (super-resolution; ``tile``/``overlap`` are input pixels).
    ``context``: each tile runs with this many extra input pixels around it (where the image has them),
    cropped away afterwards, so a network with a global step (an FFT) sees its tile's surroundings."""
    tile, overlap = check_tiling(tile, overlap, int(net.tile_multiple))
    key = like or next(k for k, v in inputs.items() if torch.is_tensor(v) and v.ndim == 4)
    ref = inputs[key]
    h, w = ref.shape[-2:]
    spatial = {k for k, v in inputs.items() if torch.is_tensor(v) and v.ndim == 4 and tuple(v.shape[-2:]) == (h, w)}

    if context < 0:
        raise ValueError(f"context must be >= 0 pixels, got {context}")
    _CONTEXT.set(int(context))  # auto_tile times a tile with the surroundings the task gives it

    def run(t: int, b: int, left: int, r: int) -> torch.Tensor:
        t0, b0, l0, r0 = max(0, t - context), min(h, b + context), max(0, left - context), min(w, r + context)
        part = {k: (v[..., t0:b0, l0:r0] if k in spatial else v) for k, v in inputs.items()}
        with torch.no_grad():
            out = net(**part).float()
        s = scale
        return out[..., (t - t0) * s : (t - t0 + b - t) * s, (left - l0) * s : (left - l0 + r - left) * s]

    if h <= tile and w <= tile:
        return run(0, h, 0, w)
    return _tiled((h, w), (ref.shape[0], net.channels, h * scale, w * scale), tile, overlap, int(net.tile_multiple),
                  run, ref, scale)


def spatial_inputs(inputs: dict[str, Any], like: str | None = None) -> tuple[str, set[str]]:
    """(reference key, keys of the 4-D inputs of the reference's size): the inputs a tile cuts.

    The reference is ``like`` or else the largest 4-D input."""
    four = {k: v for k, v in inputs.items() if torch.is_tensor(v) and v.ndim == 4}
    if not four:
        raise ValueError(f"no image (4-D tensor) among the inputs {sorted(inputs)}: nothing to tile")
    key = like or max(four, key=lambda k: four[k].shape[-2] * four[k].shape[-1])
    size = tuple(inputs[key].shape[-2:])
    return key, {k for k, v in four.items() if tuple(v.shape[-2:]) == size}


def crop_inputs(inputs: dict[str, Any], top: int, bottom: int, left: int, right: int,
                like: str | None = None) -> dict[str, Any]:
    """``inputs`` with every image input of the reference's size cut to ``[top:bottom, left:right]``."""
    _, spatial = spatial_inputs(inputs, like)
    return {k: (v[..., top:bottom, left:right] if k in spatial else v) for k, v in inputs.items()}


def _net_key(net: torch.nn.Module) -> tuple:
    p = next(net.parameters(), None)
    n = sum(q.numel() for q in net.parameters())
    return (type(net).__module__, type(net).__qualname__, n, str(p.device) if p is not None else "cpu",
            str(p.dtype) if p is not None else "", torch.get_num_threads())


def _count(n: int, side: int, overlap: int, m: int) -> int:
    """Tiles of ``side`` along ``n`` pixels as :func:`_tiled` lays them out (aligned starts, the last to the end)."""
    last = max(0, (n - side) // m * m)
    return len(set(range(0, last, side - overlap)) | {last})


def _balanced_sides(c: int, h: int, w: int, overlap: int, m: int, grow: float = 1.15) -> set[int]:
    """Sides worth trying around a timed tile ``c``: ``c`` itself, and for each image axis the smallest aligned side
    that covers it with the same number of tiles (less wasted overlap in the last tile) or with one tile fewer
    (if at most ``grow``·c: a 1024² image takes 2×2 tiles of 528, not 3×3 of 512)."""
    out = {c}
    for n in (h, w):
        k0 = _count(n, c, overlap, m)
        for k in (k0, k0 - 1):
            if k < 1:
                continue
            s = max(m * (overlap // m + 1), -(-(n + (k - 1) * overlap) // k) // m * m)
            while _count(n, s, overlap, m) > k:
                s += m
            if s <= grow * c:
                out.add(s)
    return out


def auto_tile(net: Restorer, inputs: dict[str, Any], run: Callable[[dict[str, Any], int], Any], overlap: int,
              like: str | None = None, candidates: Sequence[int] | None = None,
              whole_max: int | None = None, scale: int = 1) -> int:
    """The tile side (input pixels, a multiple of ``net.tile_multiple``) that restores ``inputs`` fastest.

    ``run(crop, tile)`` restores a crop of the inputs (the task's own run, so its measurement and
    context are timed too). ``scale``: the network works at ``scale``× the input's size (super-resolution):
    ``candidates`` (default :func:`tile_candidates`) and ``whole_max`` are in output pixels and are divided by it
    (and its square).
    An input of at most ``whole_max`` (output) pixels (default :func:`whole_max_pixels`) gets a tile covering it whole.
    Otherwise the candidates larger than ``overlap`` and smaller than the input are timed once each
    (after a warm-up at the smallest), largest first, each as one tile with the ``context`` pixels
    the task's :func:`restore_inputs_tiled` gives every tile (seen in the warm-up), stopping at the
    first whose cost per new output pixel ``t / ((T_h − o)(T_w − o))`` is 10 % above the best so far:
    smaller tiles only add overlap and context, so the timing costs about two large tiles. The
    timings are cached for the process per network, device, dtype, thread count and overlap. The side
    returned minimises the predicted time of the whole grid for this image: each timed tile's time,
    scaled by area to the sides of :func:`_balanced_sides`, times the number of tiles each needs.
    """
    key, _ = spatial_inputs(inputs, like)
    h, w = (int(s) for s in inputs[key].shape[-2:])
    m = int(net.tile_multiple)
    whole = math.ceil(max(h, w) / m) * m
    if h * w * scale * scale <= (whole_max_pixels() if whole_max is None else whole_max):
        return max(whole, check_tiling(m * (overlap // m + 1), overlap, m)[0])
    lr = [c // scale for c in (tile_candidates() if candidates is None else candidates)]
    sides = sorted({check_tiling(c, overlap, m)[0] for c in lr if c > overlap and c // m * m > overlap})
    sides = [c for c in sides if c < max(h, w)] or [whole]
    cache_key = (*_net_key(net), int(overlap), m, tuple(sides))
    if cache_key not in _AUTO:
        timed: dict[int, float] = {}
        best_cost = math.inf
        with torch.no_grad():
            _CONTEXT.set(0)
            run(crop_inputs(inputs, 0, min(h, sides[0]), 0, min(w, sides[0]), key), sides[0])  # warm-up
            ctx = _CONTEXT.get()  # surroundings each tile is run with (SR: the FFT step's context), 0 if none
            for c in reversed(sides):
                # one tile as the tiled run sees it: its side plus the context on both sides, run as a single tile
                th, tw = min(h, c + 2 * ctx), min(w, c + 2 * ctx)
                crop = crop_inputs(inputs, 0, th, 0, tw, key)
                t0 = time.perf_counter()
                run(crop, math.ceil(max(th, tw) / m) * m)
                timed[c] = time.perf_counter() - t0
                cost = timed[c] / max(1, (min(h, c) - overlap) * (min(w, c) - overlap))
                if cost > 1.1 * best_cost:
                    break
                best_cost = min(best_cost, cost)
        _AUTO[cache_key] = (timed, ctx)
    timed, ctx = _AUTO[cache_key]
    best, best_total = None, math.inf
    for c, t in sorted(timed.items()):
        for s in sorted(_balanced_sides(c, h, w, overlap, m)):
            area = (min(h, s + 2 * ctx) * min(w, s + 2 * ctx)) / (min(h, c + 2 * ctx) * min(w, c + 2 * ctx))
            total = t * area * _count(h, s, overlap, m) * _count(w, s, overlap, m)
            if total < best_total:
                best, best_total = s, total
    return best


restore = simulate_and_restore  # the name of earlier releases
