"""Built-in sample images, synthesised procedurally (no data files, nothing downloaded).

``sample_grey(size)`` is a deterministic test card: smooth shading, a zone plate (all spatial
frequencies), sharp discs and bars (edges), a checkerboard and a band-limited texture — the
structures that separate a linear CS reconstruction from a learned one. The multi-channel
samples multiply it by smooth spectra: ``sample_cube`` (a hyperspectral cube on given
wavelengths), ``sample_ms`` (a multispectral / RGB card). Each task's ``sample`` (:mod:`zoo.tasks`)
turns one of them into the inputs of a model.
"""

from __future__ import annotations

import math

import torch

__all__ = ["sample_grey", "sample_cube", "sample_ms"]


def sample_grey(size: int = 264, seed: int = 0) -> torch.Tensor:
    """A (1, 1, size, size) float32 test card in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = 0.35 + 0.3 * xx * (1 - 0.5 * yy)  # smooth shading
    r2 = (xx - 0.72) ** 2 + (yy - 0.28) ** 2
    zone = 0.5 + 0.5 * torch.cos(2 * math.pi * 60 * r2)
    img = torch.where(r2 < 0.05, 0.25 + 0.5 * zone, img)  # zone plate
    for cx, cy, rad, val in ((0.25, 0.25, 0.12, 0.9), (0.2, 0.7, 0.08, 0.1), (0.45, 0.55, 0.05, 0.8)):
        img = torch.where((xx - cx) ** 2 + (yy - cy) ** 2 < rad**2, torch.tensor(val), img)
    bars = ((xx * 24).floor() % 2 == 0) & (yy > 0.82) & (xx < 0.5)
    img = torch.where(bars, torch.tensor(0.95), torch.where((yy > 0.82) & (xx < 0.5), torch.tensor(0.15), img))
    check = (((xx * 16).floor() + (yy * 16).floor()) % 2 == 0) & (xx > 0.6) & (yy > 0.6)
    img = torch.where((xx > 0.6) & (yy > 0.6), 0.3 + 0.4 * check.float(), img)
    noise = torch.randn(1, 1, size // 8, size // 8, generator=g)
    tex = torch.nn.functional.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)[0, 0]
    img = img + 0.05 * tex
    return img.clamp(0, 1)[None, None].float()


def sample_cube(size: int = 256, bands: int = 28, wl_range: tuple[float, float] = (453.3, 648.1)) -> torch.Tensor:
    """A procedural ``(1, bands, size, size)`` test cube: the grey test card × smooth region spectra."""
    g = sample_grey(size)[0, 0]
    wl = torch.linspace(float(wl_range[0]), float(wl_range[1]), bands)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    centre = 470 + 160 * (0.6 * xx + 0.4 * yy)  # the dominant wavelength drifts across the card
    spec = 0.35 + 0.65 * torch.exp(-((wl[:, None, None] - centre) / 45) ** 2)
    return (g * spec).clamp(0, 1)[None].float()


def sample_ms(size: int = 256, bands: int = 8) -> torch.Tensor:
    """A procedural (1, bands, size, size) multispectral card: the grey test card × smooth spectra."""
    g = sample_grey(size)[0, 0]
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    b = torch.linspace(0, 1, bands)[:, None, None]
    centre = 0.2 + 0.6 * (0.6 * xx + 0.4 * yy)
    spec = 0.4 + 0.6 * torch.exp(-((b - centre) / 0.35) ** 2)
    return (0.05 + 0.9 * g * spec).clamp(0, 1)[None].float()
