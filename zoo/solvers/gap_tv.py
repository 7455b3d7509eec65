"""GAP-TV: generalised alternating projection with total-variation denoising (no learning).

Yuan, "Generalized alternating projection based total variation minimization for compressive
sensing", ICIP 2016 — the classical floor of every SD-CASSI table (TSA-Net, MST, DAUHST). For an
operator with diagonal ``AAᵀ`` (SD-CASSI: ``ΦΦᵀ = Σ_k shift(M)²``), with acceleration::

    y₁ ← y₁ + (y − A x)
    x  ← x + λ · Aᵀ((y₁ − A x) / ΦΦᵀ)          (Euclidean projection onto {A x = y₁})
    x  ← TV_denoise(x, weight)                 (a few Chambolle dual iterations per band,
                                                 joint isotropic TV over bands)

Works on batches ``(N, C, H, W)`` and any operator exposing ``A``, ``A_adjoint``, ``A_dagger``
and ``phi_phit`` (see :class:`zoo.physics.SDCASSI`).

Example:
    >>> import torch
    >>> from zoo.physics import SDCASSI, gap_tv
    >>> op = SDCASSI(torch.rand(24, 24), bands=8)
    >>> x = torch.rand(1, 8, 24, 24)
    >>> gap_tv(op, op.A(x), iters=5).shape
    torch.Size([1, 8, 24, 24])
"""

from __future__ import annotations

import torch

__all__ = ["gap_tv", "gap_project", "tv_denoise"]


def tv_denoise(x: torch.Tensor, weight: float, iters: int = 5, dt: float = 0.25) -> torch.Tensor:
    """Chambolle-type TV denoiser of DeSCI/TSA's GAP-TV (``weight`` larger = weaker smoothing).

    Neumann boundaries; the dual field is shared over bands (joint TV, as in the reference code).
    """
    p1 = torch.zeros_like(x)
    p2 = torch.zeros_like(x)
    divp = torch.zeros_like(x)
    for _ in range(iters):
        z = divp - x * weight
        z1 = torch.cat([z[..., :, 1:], z[..., :, -1:]], -1) - z  # forward difference along W
        z2 = torch.cat([z[..., 1:, :], z[..., -1:, :]], -2) - z  # along H
        denom = 1 + dt * torch.sqrt((z1**2 + z2**2).sum(1, keepdim=True))
        p1 = (p1 + dt * z1) / denom
        p2 = (p2 + dt * z2) / denom
        divp = p1 - torch.cat([p1[..., :, :1], p1[..., :, :-1]], -1) + p2 - torch.cat([p2[..., :1, :], p2[..., :-1, :]], -2)
    return x - divp / weight


@torch.no_grad()
def gap_tv(
    physics,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    iters: int = 60,
    tv_weight: float = 6.0,
    tv_iters: int = 5,
    lam: float = 1.0,
    accelerate: bool = True,
    x0: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reconstruct a cube from ``y`` with GAP-TV (see module docstring); returns ``(N, C, H, W)``.

    Args:
        physics: the operator (SD-CASSI).
        y: measurement ``(N, 1, H, W')``.
        mask: per-call mask (default the operator's).
        iters: outer GAP iterations.
        tv_weight: TV parameter of the reference code (larger → less smoothing).
        tv_iters: dual iterations of the TV denoiser per outer iteration.
        lam: relaxation of the projection.
        accelerate: the accelerated GAP (residual accumulation ``y₁``).
        x0: start (default ``Aᵀ(y / ΦΦᵀ)``, the minimum-norm solution).
    """
    y = y.float()
    phis = physics.phi_phit(mask, like=y)
    x = physics.A_adjoint(y / phis, mask=mask) if x0 is None else x0.float()
    y1 = torch.zeros_like(y)
    for _ in range(iters):
        x, y1 = gap_project(physics, x, y, y1, phis, mask, lam, accelerate)
        x = tv_denoise(x, tv_weight, tv_iters)
    return x


def gap_project(physics, x: torch.Tensor, y: torch.Tensor, y1: torch.Tensor, phis: torch.Tensor,
                mask: torch.Tensor | None, lam: float, accelerate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One (accelerated) GAP projection ``x + λ Aᵀ((y₁ − A x)/ΦΦᵀ)``, ``y₁ ← y₁ + (y − A x)`` when
    accelerated (plain GAP: ``y₁ = y``); returns ``(x, y₁)``."""
    yb = physics.A(x, mask=mask)
    if accelerate:
        y1 = y1 + (y - yb)
        return x + lam * physics.A_adjoint((y1 - yb) / phis, mask=mask), y1
    return x + lam * physics.A_adjoint((y - yb) / phis, mask=mask), y1
