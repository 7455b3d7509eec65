"""PnP-GAP: generalised alternating projection with a plug-in denoiser (no learning here).

Yuan, Liu, Suo, Dai, "Plug-and-play algorithms for large-scale snapshot compressive imaging",
CVPR 2020 (PnP-GAP; PnP-HSI runs an RGB denoiser on band triplets). For an operator with
diagonal ``AAᵀ`` (SD-CASSI), with acceleration and a decreasing noise level ``σ_1 ≥ … ≥ σ_K``::

    y₁ ← y₁ + (y − A x)                        (y₁ starts at A x₀: the first step projects x₀)
    x  ← x + λ · Aᵀ((y₁ − A x) / ΦΦᵀ)          (projection onto {A x = y₁})
    x  ← D(x, σ_k)                             (the denoiser, at iteration k's level)

The denoiser is any callable ``D(x, σ) → x`` on ``(N, C, H, W)`` cubes (a network is wrapped by the
caller: solvers do not import models). :func:`sstv_denoise` is a classical one: spatial–spectral
total variation (TV over H, W and, weighted by ``μ``, the band axis), so ``pnp_gap`` with it is a
spatial–spectral GAP-TV.

Example:
    >>> import torch
    >>> from zoo.physics import SDCASSI
    >>> from zoo.solvers import pnp_gap, sstv_denoise
    >>> op = SDCASSI(torch.rand(24, 24), bands=8)
    >>> x = torch.rand(1, 8, 24, 24)
    >>> pnp_gap(op, op.A(x), lambda z, s: sstv_denoise(z, 1 / s), [1.0, 0.5]).shape
    torch.Size([1, 8, 24, 24])
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from zoo.solvers.gap_tv import gap_project

__all__ = ["pnp_gap", "sstv_denoise", "geometric_schedule"]


def geometric_schedule(start: float, end: float, iters: int) -> list[float]:
    """``iters`` levels from ``start`` down to ``end``, evenly spaced in log (one per iteration)."""
    if iters < 1 or not (start > 0 and end > 0 and math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"a schedule needs iters >= 1 and levels > 0, got start={start}, end={end}, iters={iters}")
    if iters == 1:
        return [float(start)]
    r = (end / start) ** (1 / (iters - 1))
    return [float(start * r**k) for k in range(iters)]


def sstv_denoise(x: torch.Tensor, weight: float, mu: float = 1.0, iters: int = 10) -> torch.Tensor:
    """Spatial–spectral TV denoising (Chambolle's dual projection): ``argmin ½‖u − x‖² + (1/weight)·TV₃(u)``.

    ``TV₃(u) = Σ √(∂_w u² + ∂_h u² + μ² ∂_λ u²)`` per voxel (forward differences, Neumann
    boundaries); ``weight`` as in :func:`~zoo.solvers.tv_denoise` (larger = weaker smoothing),
    ``μ = 0`` is per-band 2-D TV. Works on ``(N, C, H, W)``.
    """
    if not (weight > 0 and mu >= 0):
        raise ValueError(f"sstv_denoise needs weight > 0 and mu >= 0, got weight={weight}, mu={mu}")
    dt = 2.0 / (8.0 + 4.0 * mu * mu)  # 1/4 in 2-D (the GAP-TV code's step), scaled by the 3-D operator norm

    def grad(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.cat([z[..., :, 1:], z[..., :, -1:]], -1) - z,
                torch.cat([z[..., 1:, :], z[..., -1:, :]], -2) - z,
                mu * (torch.cat([z[:, 1:], z[:, -1:]], 1) - z))

    def div(p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor) -> torch.Tensor:
        # minus the adjoint of grad: backward differences, the last difference of a Neumann axis is zero
        d = (p1 - torch.cat([p1[..., :, :1] * 0, p1[..., :, :-1]], -1)) + (p2 - torch.cat([p2[..., :1, :] * 0, p2[..., :-1, :]], -2))
        return d + mu * (p3 - torch.cat([p3[:, :1] * 0, p3[:, :-1]], 1))

    p1, p2, p3 = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    for _ in range(iters):
        g1, g2, g3 = grad(div(p1, p2, p3) - x * weight)
        denom = 1 + dt * torch.sqrt(g1**2 + g2**2 + g3**2)
        p1, p2, p3 = (p1 + dt * g1) / denom, (p2 + dt * g2) / denom, (p3 + dt * g3) / denom
    return x - div(p1, p2, p3) / weight


@torch.no_grad()
def pnp_gap(
    physics,
    y: torch.Tensor,
    denoiser: Callable[[torch.Tensor, float], torch.Tensor],
    sigmas: Sequence[float],
    mask: torch.Tensor | None = None,
    lam: float = 1.0,
    accelerate: bool = True,
    x0: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reconstruct a cube from ``y`` with PnP-GAP (module docstring); returns ``(N, C, H, W)``.

    Args:
        physics: the operator (``A``, ``A_adjoint``, ``phi_phit``: SD-CASSI).
        y: measurement ``(N, 1, H, W')``.
        denoiser: ``D(x, σ)``; it is called once per iteration.
        sigmas: the noise level of each iteration (their number is the number of iterations).
        mask: per-call mask (default the operator's).
        lam: relaxation of the projection.
        accelerate: the accelerated GAP (residual accumulation ``y₁``).
        x0: start (default ``Aᵀ(y / ΦΦᵀ)``; e.g. a GAP-TV result, as PnP-HSI warm-starts).
    """
    if len(sigmas) < 1:
        raise ValueError("pnp_gap needs at least one noise level (one per iteration)")
    y = y.float()
    phis = physics.phi_phit(mask, like=y)
    x = physics.A_adjoint(y / phis, mask=mask) if x0 is None else x0.float()
    # y₁ starts at A x₀, so the first step is the plain projection of x₀ (a warm start is continued, not undone)
    y1 = physics.A(x, mask=mask)
    for s in sigmas:
        x, y1 = gap_project(physics, x, y, y1, phis, mask, lam, accelerate)
        x = denoiser(x, float(s)).float()
    return x
