"""Compact residual U-Net denoiser (the grey-image prior of LoRun-CS).

``D(z) = z + U(z)``: a 3×3 head, one residual block per level, 2×2 stride-2 convolutions down,
2×2 transposed convolutions up, additive skips, a 3×3 tail. With widths (16, 32, 64) and one
block per level it has 141,057 parameters (0.135 M = /2²⁰) and ≈30 k multiply-adds per pixel,
small enough to train on two CPU cores. The tail is zero-initialised (an untrained denoiser is the
identity).
Inputs of any size are reflect-padded to a multiple of ``2**(levels-1)`` and cropped back.

Example:
    >>> import torch
    >>> from zoo.nn.unet import ResUNet
    >>> ResUNet(1, widths=(8, 16))(torch.rand(1, 1, 33, 35)).shape
    torch.Size([1, 1, 33, 35])
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ResBlock", "UNetTrunk", "ResUNet"]


class ResBlock(nn.Module):
    """``x + conv(act(conv(x)))`` without normalisation (USRNet style)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class UNetTrunk(nn.Module):
    """Encoder–decoder core shared by the zoo's U-Nets: per level residual blocks, 2×2 stride-2
    convolutions down, 2×2 transposed convolutions up, additive skips. Subclasses add head/tail."""

    def _init_trunk(self, widths: Sequence[int], blocks: int) -> None:
        widths = list(widths)
        self.levels = len(widths)
        self.enc = nn.ModuleList([nn.Sequential(*[ResBlock(w) for _ in range(blocks)]) for w in widths[:-1]])
        self.down = nn.ModuleList([nn.Conv2d(a, b, 2, stride=2) for a, b in zip(widths[:-1], widths[1:])])
        self.body = nn.Sequential(*[ResBlock(widths[-1]) for _ in range(blocks)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths[:-1], widths[1:])])
        self.dec = nn.ModuleList([nn.Sequential(*[ResBlock(w) for _ in range(blocks)]) for w in widths[:-1]])

    def pad_amount(self, h: int, w: int) -> tuple[int, int]:
        """Bottom/right padding that makes ``h×w`` divisible by ``2**(levels-1)``."""
        m = 2 ** (self.levels - 1)
        return (-h) % m, (-w) % m

    def trunk(self, f: torch.Tensor) -> torch.Tensor:
        skips = []
        for enc, down in zip(self.enc, self.down):
            f = enc(f)
            skips.append(f)
            f = down(f)
        f = self.body(f)
        for up, dec, s in zip(reversed(self.up), reversed(self.dec), reversed(skips)):
            f = dec(up(f) + s)
        return f


class ResUNet(UNetTrunk):
    """Residual U-Net; see module docstring.

    Args:
        channels: image channels in and out.
        widths: feature width per level (top to bottom).
        blocks: residual blocks per level on each side.
        cond_channels: extra input maps concatenated to the image (USRNet's noise-level map:
            ``D(z, c) = z + U([z, c])``); ``forward(z, cond)`` then takes them.
    """

    def __init__(self, channels: int = 1, widths: Sequence[int] = (16, 32, 64), blocks: int = 1,
                 cond_channels: int = 0) -> None:
        super().__init__()
        widths = list(widths)
        self.channels, self.cond_channels = channels, int(cond_channels)
        self.head = nn.Conv2d(channels + self.cond_channels, widths[0], 3, padding=1)
        self._init_trunk(widths, blocks)
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1)
        # zero tail: an untrained denoiser is the identity, so training starts from the
        # classical (gradient-step) reconstruction instead of noise
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 4 or z.shape[1] != self.channels:
            raise ValueError(f"ResUNet expects (N, {self.channels}, H, W), got {tuple(z.shape)}")
        if (cond is None) != (self.cond_channels == 0) or (cond is not None and cond.shape[1] != self.cond_channels):
            raise ValueError(f"this ResUNet takes {self.cond_channels} conditioning maps, got "
                             f"{None if cond is None else tuple(cond.shape)}")
        h, w = z.shape[-2:]
        ph, pw = self.pad_amount(h, w)
        inp = z if cond is None else torch.cat([z, cond.expand(z.shape[0], -1, h, w).to(z.dtype)], 1)
        x = F.pad(inp, (0, pw, 0, ph), mode="reflect") if (ph or pw) else inp
        out = x[:, : self.channels] + self.tail(self.trunk(self.head(x)))
        return out[..., :h, :w]
