"""Block compressive sensing (ISTA-Net protocol).

An image is zero-padded to a multiple of the block size ``B`` (33), cut into non-overlapping
``B×B`` blocks flattened in row-major order, and each block is measured by the same matrix
``Φ ∈ R^{m×B²}`` with ``m = round(ratio·B²)``:

    y[:, :, i, j] = Φ · vec(x_pad[iB:(i+1)B, jB:(j+1)B])

so ``y`` has shape ``(N, m, ⌈H/B⌉, ⌈W/B⌉)``. The adjoint scatters ``Φᵀ y`` back into blocks and
crops the padding (the adjoint of zero-padding), which makes ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ exact.
The initial estimate is ``Q y`` with the ISTA-Net ``Qinit`` matrix (a linear MMSE map learned on
training blocks) when given, else ``Φᵀ y``.

Example:
    >>> import torch
    >>> from zoo.physics import BlockCS
    >>> op = BlockCS(ratio=0.25, seed=0)
    >>> y = op.A(torch.rand(1, 1, 40, 50))
    >>> tuple(y.shape), tuple(op.A_adjoint(y, img_size=(40, 50)).shape)
    ((1, 272, 2, 2), (1, 1, 40, 50))
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from einops import rearrange

from zoo.physics.base import LinearPhysics, check_finite, fp32

__all__ = ["BlockCS", "orthonormal_gaussian"]


def orthonormal_gaussian(m: int, n: int, seed: int = 0) -> torch.Tensor:
    """An ``m×n`` Gaussian matrix with orthonormal rows (QR), reproducible from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, m, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(a)
    return q.T.contiguous().float()


class BlockCS(LinearPhysics):
    """Block-based compressive sensing ``y = Φ x`` on ``B×B`` blocks (see module docstring).

    Args:
        ratio: sampling ratio in (0, 1]; ``m = round(ratio·B²)``.
        block: block size ``B`` (33 in the ISTA-Net protocol).
        phi: an ``m×B²`` matrix; default a seeded orthonormal Gaussian.
        qinit: optional ``B²×m`` initial-estimate matrix.
        learnable: train Φ (and Qinit) as parameters.
        seed: seed of the default Φ.
    """

    def __init__(
        self,
        ratio: float = 0.25,
        block: int = 33,
        phi: torch.Tensor | None = None,
        qinit: torch.Tensor | None = None,
        learnable: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio, self.block = float(ratio), int(block)
        n = self.block**2
        self.m = max(1, int(round(ratio * n)))
        if phi is None:
            phi = orthonormal_gaussian(self.m, n, seed)
        phi = torch.as_tensor(phi, dtype=torch.float32)
        if tuple(phi.shape) != (self.m, n):
            raise ValueError(
                f"Φ has shape {tuple(phi.shape)} but ratio {ratio} with {block}×{block} blocks needs "
                f"({self.m}, {n}); pass the matrix for this ratio (phi_0_{int(round(ratio * 100))}_{n}.mat)."
            )
        if qinit is not None:
            qinit = torch.as_tensor(qinit, dtype=torch.float32)
            if tuple(qinit.shape) != (n, self.m):
                raise ValueError(f"Qinit has shape {tuple(qinit.shape)}, expected ({n}, {self.m}) for this Φ.")
        self.learnable = learnable
        if learnable:
            self.phi = nn.Parameter(phi.clone())
            self.qinit = nn.Parameter(qinit.clone()) if qinit is not None else None
        else:
            self.register_buffer("phi", phi.clone())
            self.register_buffer("qinit", qinit.clone() if qinit is not None else None)

    # -- shapes -------------------------------------------------------------------------------
    @property
    def tile_multiple(self) -> int:
        return self.block

    def y_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        *lead, h, w = x_shape
        return (*lead[:-1], self.m, math.ceil(h / self.block), math.ceil(w / self.block))

    def _check_image(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(
                f"BlockCS expects grey images shaped (N, 1, H, W), got {tuple(x.shape)}; convert colour "
                "images to luminance first (e.g. zoo.data.to_luminance)."
            )
        if min(x.shape[-2:]) < self.block:
            raise ValueError(
                f"image {tuple(x.shape[-2:])} is smaller than one {self.block}×{self.block} block; "
                f"use images of at least {self.block} pixels per side."
            )
        check_finite(x, "image")

    # -- operator ------------------------------------------------------------------------------
    @fp32
    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        self._check_image(x)
        b = self.block
        h, w = x.shape[-2:]
        x = nn.functional.pad(x, (0, (-w) % b, 0, (-h) % b))
        cols = rearrange(x, "n c (i p) (j q) -> n i j (c p q)", p=b, q=b)
        y = cols @ self.phi.to(x.dtype).T
        return rearrange(y, "n i j m -> n m i j")

    def _scatter(self, y: torch.Tensor, mat: torch.Tensor, img_size: tuple[int, int] | None) -> torch.Tensor:
        if y.ndim != 4 or y.shape[1] != self.m:
            raise ValueError(
                f"measurement must be (N, {self.m}, H/{self.block}, W/{self.block}) for ratio {self.ratio}, "
                f"got {tuple(y.shape)}: was it taken at another ratio?"
            )
        check_finite(y, "measurement")
        cols = rearrange(y, "n m i j -> n i j m") @ mat.to(y.dtype).T
        x = rearrange(cols, "n i j (p q) -> n 1 (i p) (j q)", p=self.block, q=self.block)
        if img_size is not None:
            h, w = img_size
            if h > x.shape[-2] or w > x.shape[-1] or h <= x.shape[-2] - self.block or w <= x.shape[-1] - self.block:
                raise ValueError(f"img_size {img_size} does not match a measurement of {y.shape[-2]}×{y.shape[-1]} blocks")
            x = x[..., :h, :w]
        return x

    @fp32
    def A_adjoint(self, y: torch.Tensor, img_size: tuple[int, int] | None = None) -> torch.Tensor:  # noqa: N802
        return self._scatter(y, self.phi.T, img_size)

    @fp32
    def A_dagger(self, y: torch.Tensor, img_size: tuple[int, int] | None = None) -> torch.Tensor:  # noqa: N802
        """Linear initial estimate: ``Qinit·y`` when available, else ``Φᵀy``."""
        mat = self.qinit if self.qinit is not None else self.phi.T
        return self._scatter(y, mat, img_size)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, block={self.block}, m={self.m}, learnable={self.learnable}, qinit={self.qinit is not None}"
