"""Image-quality metrics with explicit protocol flags (data range, border crop).

PSNR and SSIM are averaged per image (not one global MSE), SSIM is Wang et al.'s Gaussian
11×11, σ = 1.5 window (torchmetrics), computed per channel and averaged; SAM in degrees.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import (
    error_relative_global_dimensionless_synthesis,
    structural_similarity_index_measure,
)

__all__ = ["psnr", "ssim", "sam", "ergas", "crop_border"]


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border > 0 else x


@torch.no_grad()
def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, border: int = 0) -> torch.Tensor:
    """Per-image PSNR (dB), shape (N,), after clipping ``pred`` to [0, data_range]."""
    p, t = crop_border(pred.float().clamp(0, data_range), border), crop_border(target.float(), border)
    mse = ((p - t) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


@torch.no_grad()
def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, border: int = 0) -> torch.Tensor:
    """Per-image SSIM, shape (N,)."""
    p, t = crop_border(pred.float().clamp(0, data_range), border), crop_border(target.float(), border)
    return structural_similarity_index_measure(p, t, data_range=data_range, reduction="none")


@torch.no_grad()
def sam(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean spectral angle (degrees) over pixels, per image, shape (N,).

    Pixels whose reference or estimate spectrum is all zero have no angle and are left out
    (a plain mean would be NaN there).
    """
    p, t = pred.float(), target.float()
    dot = (p * t).sum(1)
    norm = p.norm(dim=1) * t.norm(dim=1)
    valid = norm > eps
    ang = torch.rad2deg(torch.acos((dot / norm.clamp_min(eps)).clamp(-1, 1)))
    return torch.stack([a[v].mean() if v.any() else a.new_tensor(0.0) for a, v in zip(ang, valid)])


@torch.no_grad()
def ergas(pred: torch.Tensor, target: torch.Tensor, ratio: float = 4.0) -> torch.Tensor:
    """ERGAS per image, shape (N,)."""
    out = [error_relative_global_dimensionless_synthesis(p[None].float(), t[None].float(), ratio=ratio) for p, t in zip(pred, target)]
    return torch.stack(out)
