"""Restoring images with a zoo network: simulated measurement → reconstruction, tiled when large.

Tiles are cut on a grid that is a multiple of the network's ``tile_multiple`` (the CS block: a
block-separable operator measured on an aligned tile gives exactly the matching blocks of the
full measurement), overlap by ``overlap`` pixels and are blended with linear ramps.
"""

from __future__ import annotations

from typing import Any

import torch

from zoo.models.base import Restorer
from zoo.physics.base import check_finite

__all__ = ["simulate_and_restore", "restore", "restore_tiled"]


def simulate_and_restore(net: Restorer, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Simulate ``net``'s measurement of the clean image ``x`` and reconstruct it (no grad)."""
    check_finite(x, "input image")
    with torch.no_grad():
        inputs = net.measure(x)
        return net(**inputs).float(), inputs


def _ramp(n: int, ov: int, first: bool, last: bool, like: torch.Tensor) -> torch.Tensor:
    w = torch.ones(n, dtype=like.dtype, device=like.device)
    if ov > 0:
        r = torch.linspace(0, 1, ov + 2, dtype=like.dtype, device=like.device)[1:-1]
        if not first:
            w[:ov] = r
        if not last:
            w[-ov:] = r.flip(0)
    return w


def restore_tiled(net: Restorer, x: torch.Tensor, tile: int = 264, overlap: int = 33) -> torch.Tensor:
    """Like :func:`simulate_and_restore` on ``tile×tile`` tiles (multiples of ``net.tile_multiple``), blended."""
    m = int(net.tile_multiple)
    tile, overlap = max(m, tile // m * m), overlap // m * m
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return simulate_and_restore(net, x)[0]
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must exceed overlap ({overlap})")
    out = torch.zeros_like(x, dtype=torch.float32)
    acc = torch.zeros_like(out)
    step = tile - overlap

    def spans(n: int) -> list[tuple[int, int]]:
        # aligned starts; the last tile starts at the last aligned position and runs to the end
        last = max(0, (n - tile) // m * m)
        s = sorted(set(list(range(0, last, step)) + [last]))
        return [(a, n if a == last else a + tile) for a in s]

    ys, xs = spans(h), spans(w)
    for i, (t, b) in enumerate(ys):
        for j, (l, r) in enumerate(xs):
            rec = simulate_and_restore(net, x[..., t:b, l:r])[0]
            wy = _ramp(b - t, overlap, i == 0, i == len(ys) - 1, out)
            wx = _ramp(r - l, overlap, j == 0, j == len(xs) - 1, out)
            wt = wy[:, None] * wx[None, :]
            out[..., t:b, l:r] += rec * wt
            acc[..., t:b, l:r] += wt
    return out / acc.clamp_min(1e-8)


restore = simulate_and_restore  # the name of earlier releases
