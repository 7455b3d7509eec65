"""Spectral metrics: one SAM convention per use, one ERGAS.

* :func:`sam` — hyperspectral (CASSI) convention, also logged in training: the estimate clipped to
  [0, 1], mean over the pixels whose *reference* spectrum is non-zero of
  ``acos(⟨x̂, x⟩ / (‖x̂‖‖x‖))`` in degrees; an estimate that is all zero where the reference is not
  scores 90° there (it is not skipped, so blacking out dark pixels is not rewarded).
* :func:`sam_toolbox` — Vivone et al.'s pansharpening toolbox: float64, no clipping, pixels where
  either norm is zero left out. Pansharpening tables report this one, to compare with the literature.
* :func:`ergas` — the toolbox's ``100/r · √(mean_b RMSE_b² / μ_b²)`` (μ_b the reference band mean).

Example:
    >>> import torch
    >>> from zoo.metrics.spectral import sam, ergas
    >>> x = torch.rand(1, 4, 8, 8) + 0.1
    >>> float(sam(x.clamp(0, 1), x.clamp(0, 1))[0]) < 1e-2, float(ergas(x, x)[0])
    (True, 0.0)
"""

from __future__ import annotations

import torch

from zoo.metrics.image import crop_border

__all__ = ["sam", "sam_toolbox", "ergas"]


@torch.no_grad()
def sam(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean spectral angle (degrees) per image over pixels with a non-zero reference spectrum, (N,)."""
    p, t = pred.float().clamp(0, 1), target.float()
    dot = (p * t).sum(1)
    nt, np_ = t.norm(dim=1), p.norm(dim=1)
    valid = nt > eps
    cos = (dot / (nt * np_).clamp_min(eps)).clamp(-1, 1)
    ang = torch.rad2deg(torch.acos(cos))
    return torch.stack([a[v].mean() if v.any() else a.new_tensor(float("nan")) for a, v in zip(ang, valid)])


_EPS = torch.finfo(torch.float64).eps


def _prep(pred: torch.Tensor, target: torch.Tensor, border: int) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must both be (N, C, H, W) of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return crop_border(pred.double(), border), crop_border(target.double(), border)


@torch.no_grad()
def sam_toolbox(pred: torch.Tensor, target: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Spectral angle mapper in degrees, per image (N,): the pansharpening toolbox definition."""
    p, t = _prep(pred, target, border)
    dot = (p * t).sum(1)
    nrm = torch.sqrt((p * p).sum(1) * (t * t).sum(1))
    out = []
    for d, n in zip(dot, nrm):
        ok = n > 0
        out.append(torch.rad2deg(torch.acos((d[ok] / n[ok]).clamp(-1, 1)).mean()))
    return torch.stack(out).float()


@torch.no_grad()
def ergas(pred: torch.Tensor, target: torch.Tensor, ratio: float = 4.0, border: int = 0) -> torch.Tensor:
    """ERGAS per image (N,)."""
    p, t = _prep(pred, target, border)
    rmse2 = ((p - t) ** 2).flatten(2).mean(2)
    mu2 = t.flatten(2).mean(2) ** 2
    return (100.0 / ratio * torch.sqrt((rmse2 / mu2).mean(1))).float()


