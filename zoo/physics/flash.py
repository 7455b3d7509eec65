"""Flash-guided no-flash denoising physics: ``y = x + n``, ``n ~ N(0, σ²)``, flash image as guide.

The measurement operator is the identity (``A = Aᵀ = I``); the flash image is not a measurement
of ``x`` but a structural guide that enters the restoration through the guide-conditioned prior.
Noise follows the FAID/LGCNet protocol: additive white Gaussian, σ ∈ {25, 50, 75}/255, **no
clipping** (the noisy image can be negative; the guide cannot).

Example:
    >>> import torch
    >>> from zoo.physics.flash import FlashDenoising
    >>> op = FlashDenoising(3)
    >>> x = torch.rand(1, 3, 16, 16)
    >>> y = op.noisy(x, 25 / 255, generator=torch.Generator().manual_seed(0))
    >>> tuple(y.shape), bool(torch.equal(op.A(x), x))
    ((1, 3, 16, 16), True)
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from zoo.physics.base import LinearPhysics, check_finite, fp32, tracing

__all__ = ["FlashDenoising"]


class FlashDenoising(LinearPhysics):
    """Identity operator with Gaussian noise and input checks for (noisy, flash) pairs.

    Args:
        channels: image channels (3 for RGB).
    """

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = int(channels)

    def _check_x(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected (N, {self.channels}, H, W) images, got {tuple(x.shape)}")
        check_finite(x, "image")

    @fp32
    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        self._check_x(x)
        return x

    @fp32
    def A_adjoint(self, y: torch.Tensor, img_size: Sequence[int] | None = None, **kw: Any) -> torch.Tensor:  # noqa: N802
        self._check_x(y)
        return y

    def y_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(x_shape)

    def noisy(self, x: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x + σ·N(0, 1)`` without clipping; ``sigma`` a number or one value per image (N,)."""
        self._check_x(x)
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if not tracing() and (s < 0).any():
            raise ValueError(f"noise level must be >= 0, got {sigma}")
        s = s.reshape(-1, 1, 1, 1) if s.ndim else s
        n = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu" if generator is not None else x.device)
        return x + s * n.to(x.device)

    def check_inputs(self, noisy: torch.Tensor, flash: torch.Tensor) -> None:
        """Validate a (noisy ambient, flash guide) pair; errors say what to fix."""
        if noisy.ndim != 4 or noisy.shape[1] != self.channels:
            raise ValueError(f"noisy image must be (N, {self.channels}, H, W), got {tuple(noisy.shape)}")
        if flash.ndim != 4 or flash.shape[0] != noisy.shape[0] or flash.shape[-2:] != noisy.shape[-2:] \
                or flash.shape[1] not in (1, self.channels):
            raise ValueError(
                f"flash guide {tuple(flash.shape)} must match the noisy image {tuple(noisy.shape)} "
                f"(same N, H, W; 1 or {self.channels} channels): register/resize the flash image first."
            )
        check_finite(noisy, "noisy image")
        check_finite(flash, "flash image")
        if not tracing() and (flash < 0).any():
            raise ValueError(f"flash image has negative values (min {float(flash.min()):.4g}); pass it in [0, 1]")
