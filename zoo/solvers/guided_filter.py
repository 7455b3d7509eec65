"""He et al.'s guided filter (ECCV 2010 / TPAMI 2013): the classical flash/no-flash floor (no learning).

With box means ``m(·)`` of radius ``r``, per window ``a = cov(I, p) / (var(I) + ε)``, ``b = m(p) − a·m(I)``,
and the output ``m(a)·I + m(b)``: a local linear model of the guide ``I`` fitted to the input ``p``.

Example:
    >>> import torch
    >>> from zoo.solvers import guided_filter
    >>> guided_filter(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32), r=2, eps=1e-2).shape
    torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["guided_filter", "box_mean"]


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over ``(2r+1)²`` windows with reflected borders (same size as ``x``)."""
    k = 2 * r + 1
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), k, stride=1)


@torch.no_grad()
def guided_filter(p: torch.Tensor, guide: torch.Tensor, r: int = 4, eps: float = 1e-2) -> torch.Tensor:
    """Guided filter of every channel of ``p`` (N, C, H, W) with a grey ``guide`` (N, 1, H, W)."""
    I = guide.float()
    mI, mp = box_mean(I, r), box_mean(p.float(), r)
    cov = box_mean(I * p, r) - mI * mp
    var = box_mean(I * I, r) - mI * mI
    a = cov / (var + eps)
    b = mp - a * mI
    return box_mean(a, r) * I + box_mean(b, r)
