"""Restoring images with a zoo network, tiled when large.

* :func:`restore_tiled` — from a *clean* image: each tile is measured with the network's own
  physics and reconstructed (CS: a block-separable operator measured on an aligned tile gives
  exactly the matching blocks of the whole measurement).
* :func:`restore_inputs_tiled` — from *given* inputs (a noisy image and its guide): every image
  input of the same size is cut into the same tiles; non-image inputs (σ) pass unchanged. Exact for
  pixel-wise physics up to the network's receptive field, which the overlap covers.

Tiles lie on a grid that is a multiple of ``net.tile_multiple``, overlap by ``overlap`` pixels and
are blended with linear ramps, so there are no seams; memory is bounded by the tile size.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from zoo.models.base import Restorer
from zoo.physics.base import check_finite

__all__ = ["simulate_and_restore", "restore", "restore_tiled", "restore_inputs_tiled", "check_tiling"]


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
    for i, (t, b) in enumerate(ys):
        for j, (left, r) in enumerate(xs):
            rec = run(t, b, left, r)
            s = scale
            wy = _ramp((b - t) * s, overlap * s, i == 0, i == len(ys) - 1, out)
            wx = _ramp((r - left) * s, overlap * s, j == 0, j == len(xs) - 1, out)
            wt = wy[:, None] * wx[None, :]
            out[..., t * s : b * s, left * s : r * s] += rec * wt
            acc[..., t * s : b * s, left * s : r * s] += wt
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


restore = simulate_and_restore  # the name of earlier releases
