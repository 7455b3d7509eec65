"""Guide-conditioned proximal networks with a non-negative output (the prior of SSO-PGA).

``GuidedProx(y, guide, extra) = softplus_β(y + U([y, guide, extra]) + b_k)``: a compact residual
U-Net ``U`` whose input is the current iterate, the guide (PAN or flash image) and optional
side information (noise-level map, band-availability mask); a per-stage feature bias ``b_k``
lets one weight-shared network act differently at each stage. The softplus with a large β is the
identity above ``20/β`` and stays strictly positive below, so iterates remain positive (the
multiplicative SSO step needs ``x > 0``: a zero coordinate could never grow again). The tail is
zero-initialised: an untrained prox is ``softplus_β(y)`` ≈ the identity.

Example:
    >>> import torch
    >>> from zoo.nn.guided_prox import GuidedProx
    >>> p = GuidedProx(channels=4, guide_channels=1, widths=(8, 16))
    >>> out = p(torch.rand(2, 4, 30, 34), torch.rand(2, 1, 30, 34))
    >>> tuple(out.shape), bool((out > 0).all())
    ((2, 4, 30, 34), True)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.nn.unet import UNetTrunk
from zoo.utils.tracing import tracing

__all__ = ["GuidedProx", "positive"]


def positive(z: torch.Tensor, beta: float = 100.0) -> torch.Tensor:
    """Smooth strictly positive map: identity for ``z > 20/β``, ``softplus_β`` below."""
    return F.softplus(z, beta=beta, threshold=20.0)


class GuidedProx(UNetTrunk):
    """Residual U-Net prox with guide input and non-negative output (module docstring).

    Args:
        channels: image channels (in and out).
        guide_channels: guide channels (1 for PAN, 3 for a flash image).
        extra_channels: side-information channels (noise map, masks).
        widths: feature widths per level; ``blocks`` residual blocks per level and side.
        stages: number of per-stage feature biases (1 = none).
        beta: softplus sharpness of the output.
    """

    def __init__(self, channels: int, guide_channels: int = 1, extra_channels: int = 0,
                 widths: Sequence[int] = (16, 32, 48), blocks: int = 1, stages: int = 1, beta: float = 100.0) -> None:
        super().__init__()
        widths = list(widths)
        self.channels, self.guide_channels, self.extra_channels = channels, guide_channels, extra_channels
        self.beta = beta
        self.head = nn.Conv2d(channels + guide_channels + extra_channels, widths[0], 3, padding=1)
        self.stage_bias = nn.Parameter(torch.zeros(max(1, stages), widths[0]))
        self._init_trunk(widths, blocks)
        self.act = nn.LeakyReLU(0.1)
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, y: torch.Tensor, guide: torch.Tensor, extra: torch.Tensor | None = None, stage: int = 0) -> torch.Tensor:
        parts = [y, guide] + ([extra] if extra is not None else [])
        z = torch.cat(parts, 1)
        if z.shape[1] != self.head.in_channels:
            raise ValueError(f"GuidedProx expects {self.head.in_channels} input channels (image {self.channels} + guide "
                             f"{self.guide_channels} + extra {self.extra_channels}), got {z.shape[1]}")
        h, w = z.shape[-2:]
        ph, pw = self.pad_amount(h, w)
        if tracing() or ph or pw:  # traced: always (a branch on the size would fix the graph's H×W)
            z = F.pad(z, (0, pw, 0, ph), mode="replicate")
        f = self.act(self.head(z) + self.stage_bias[min(stage, self.stage_bias.shape[0] - 1)][None, :, None, None])
        r = self.tail(self.trunk(f))[..., :h, :w]
        return positive(y + r.to(y.dtype), self.beta)
