"""Image-quality metrics with explicit protocol flags (data range, border crop).

PSNR and SSIM are per image (not one global MSE); SSIM is Wang et al.'s Gaussian 11×11, σ = 1.5
window (torchmetrics), computed per channel and averaged.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

__all__ = ["psnr", "ssim", "crop_border", "rgb_to_y"]


def rgb_to_y(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """ITU-R BT.601 luma of (N, 3, H, W) RGB in [0, 1], as MATLAB ``rgb2ycbcr`` (``16 + 65.481 R + 128.553 G
    + 24.966 B`` on the 8-bit scale) divided by 255 → (N, 1, H, W). ``quantize`` rounds the RGB to 8 bits
    first, as the SR literature evaluates saved images. A 1-channel input is taken as RGB grey."""
    x = x.float().clamp(0, 1)
    if quantize:
        x = (x * 255).round() / 255
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (16 + (x * w).sum(1, keepdim=True)) / 255


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """``x`` without ``border`` pixels on each side of its last two axes."""
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
