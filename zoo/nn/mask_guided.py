"""Mask-guided spectral U-Net + per-band step estimator: the RCUMP-style stage of LoRun-CASSI.

One unfolding stage of the CASSI model (``zoo.models.lorun_cassi``) is a :class:`RCUMPStage`:

* :class:`StepEstimator` — ``ρ = 2·sigmoid(f([x, r]))`` per band, ``f`` = conv1×1 → depthwise
  3×3 stride-2 conv → global average pool → three conv1×1 (LeakyReLU between). Its last conv is
  zero-initialised, so an untrained estimator gives ``ρ = 1`` (the exact GAP projection) and can
  learn per-band steps in (0, 2). [ours: RCUMP's Softplus·0.1 + bias form is unknown in detail;
  this keeps the same inputs/outputs and a stable start.]
* :class:`MaskGuidedUNet` — ``D(z, g) = z + U(z, g)``: a 3×3 head, per level
  :class:`MaskGuidedBlock` s that add a depthwise 3×3 "spectral" branch and a 1×1 "spatial"
  branch (GroupNorm + LeakyReLU each), multiplied by a sigmoid gate computed from the mask
  features of that level; 4×4 stride-2 convs down, 2×2 transposed convs up, additive skips; a
  soft-threshold ``sign(f)·relu(|f| − τ)`` (learned ``τ ≥ 0`` per channel) in the bottleneck; a
  zero-initialised 3×3 tail (an untrained denoiser is the identity).
* The guide ``g`` is ``[M, shift_back(ΦΦᵀ)/C]`` (1 + C channels): the coded aperture and, per
  band, how many bands overlap at each detector pixel — what the "shifted mask" tells a denoiser
  about the local conditioning. Its features are pooled to each level (``mask_features``) and turned
  into every block's gate (``gates``), per stage: the mask-only part, reusable while the mask stays.

Widths are configurable; ``(16, 32, 64)`` (≈0.1 M parameters, a CPU size) is the default, RCUMP
used (32, 64, 96, 128). Every convolution (strided, transposed, depthwise, 1×1) is a LoRA target.

Example:
    >>> import torch
    >>> from zoo.nn.mask_guided import RCUMPStage
    >>> st = RCUMPStage(bands=8, widths=(8, 16))
    >>> z, guide = torch.rand(1, 8, 20, 22), torch.rand(1, 9, 20, 22)
    >>> st(z, guide).shape
    torch.Size([1, 8, 20, 22])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.nn.pointwise import PointwiseConv2d, pointwise_conv
from zoo.utils.tracing import tracing

__all__ = ["StepEstimator", "MaskGuidedBlock", "MaskGuidedUNet", "RCUMPStage"]


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(4, c), c)


class StepEstimator(nn.Module):
    """Per-band step ``ρ ∈ (0, 2)^C`` from the current estimate and the data-term direction."""

    def __init__(self, bands: int, width: int = 16) -> None:
        super().__init__()
        self.inp = PointwiseConv2d(2 * bands, width)
        self.dw = nn.Conv2d(width, width, 3, stride=2, padding=1, groups=width)
        self.fc = nn.Sequential(PointwiseConv2d(width, width), nn.LeakyReLU(0.1), PointwiseConv2d(width, width),
                                nn.LeakyReLU(0.1), PointwiseConv2d(width, bands))
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        inp = self.inp
        if type(inp) is PointwiseConv2d and not tracing():
            # W [x; r] = W_x x + W_r r: two products instead of copying both cubes into a concatenation first
            c = x.shape[1]
            f = pointwise_conv(x, inp.weight[:, :c], inp.bias) + pointwise_conv(r, inp.weight[:, c:])
        else:  # a LoRA-wrapped layer (training) or an exported graph
            f = inp(torch.cat([x, r], 1))
        f = self.dw(F.leaky_relu(f, 0.1))
        return 2 * torch.sigmoid(self.fc(f.mean((-2, -1), keepdim=True)))


class MaskGuidedBlock(nn.Module):
    """``x + P((spectral(x) + spatial(x)) ⊙ σ(G(m)))`` with ``m`` the level's mask features; the gate
    ``σ(G(m))`` depends on the mask alone (:meth:`gate_of`), so it may be computed once and reused."""

    def __init__(self, c: int) -> None:
        super().__init__()
        # in-place activations: each acts on the fresh GroupNorm output (which GroupNorm's backward does not read)
        self.spec = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), _gn(c), nn.LeakyReLU(0.1, inplace=True))
        self.spat = nn.Sequential(PointwiseConv2d(c, c), _gn(c), nn.LeakyReLU(0.1, inplace=True))
        self.gate = PointwiseConv2d(c, c)
        self.proj = PointwiseConv2d(c, c)

    def gate_of(self, m: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(m))

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """``gate``: :meth:`gate_of` of the mask features (batch 1 broadcasts over ``x``'s batch)."""
        if torch.is_grad_enabled() or tracing() or gate.shape[0] > x.shape[0]:
            return x + self.proj((self.spec(x) + self.spat(x)) * gate)
        # inference: the same sums in place; at these widths every op is a pass over memory, and a fresh
        # buffer per op (page faults, cache misses) cost as much as the arithmetic
        h = self.spec(x).add_(self.spat(x))
        return self.proj(h.mul_(gate)).add_(x)


class _Level(nn.Module):
    def __init__(self, c: int, n: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([MaskGuidedBlock(c) for _ in range(n)])

    def forward(self, x: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        for b, g in zip(self.blocks, gates):
            x = b(x, g)
        return x


class MaskGuidedUNet(nn.Module):
    """The mask-guided denoiser ``D(z, mask features)`` (module docstring).

    Args:
        bands: spectral channels C.
        widths: feature width per level (top to bottom).
        blocks: :class:`MaskGuidedBlock` s per level and side.
        guide_channels: channels of the raw guide (default ``1 + bands``).
    """

    def __init__(self, bands: int = 28, widths: Sequence[int] = (16, 32, 64), blocks: int = 1,
                 guide_channels: int | None = None) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        self.bands, self.widths, self.levels = int(bands), widths, len(widths)
        gc = guide_channels if guide_channels is not None else bands + 1
        self.guide_in = PointwiseConv2d(gc, widths[0])
        self.guide_dw = nn.Conv2d(widths[0], widths[0], 3, padding=1, groups=widths[0])
        self.guide_down = nn.ModuleList([PointwiseConv2d(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.head = nn.Conv2d(bands, widths[0], 3, padding=1)
        self.enc = nn.ModuleList([_Level(w, blocks) for w in widths[:-1]])
        self.down = nn.ModuleList([nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(widths[:-1], widths[1:])])
        self.body = _Level(widths[-1], blocks)
        self.tau = nn.Parameter(torch.zeros(1, widths[-1], 1, 1))
        self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths[:-1], widths[1:])])
        self.dec = nn.ModuleList([_Level(w, blocks) for w in widths[:-1]])
        self.tail = nn.Conv2d(widths[0], bands, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def multiple(self) -> int:
        return 2 ** (self.levels - 1)

    def mask_features(self, guide: torch.Tensor) -> list[torch.Tensor]:
        """Per-level mask features of a raw guide ``(N, 1+C, H, W)`` (padded like the input)."""
        h, w = guide.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        g = F.pad(guide, (0, pw, 0, ph), mode="replicate") if (ph or pw) else guide
        f = self.guide_dw(F.leaky_relu(self.guide_in(g), 0.1))
        feats = [f]
        for conv in self.guide_down:
            f = conv(F.avg_pool2d(f, 2))
            feats.append(f)
        return feats

    def _levels(self) -> list[tuple[_Level, int]]:
        """Every level module with the index of its mask features, in :meth:`forward`'s order."""
        n = self.levels - 1
        return [(self.enc[i], i) for i in range(n)] + [(self.body, n)] + [(self.dec[i], i) for i in reversed(range(n))]

    def gates(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Every block's gate ``σ(G(m))`` from the per-level mask features, in :meth:`forward`'s order: the
        mask-only part of the denoiser (about a sixth of the network's time), reusable while the mask stays."""
        return [b.gate_of(feats[i]) for lvl, i in self._levels() for b in lvl.blocks]

    def forward(self, z: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        """Denoise ``z`` with the block gates of :meth:`gates` (``gates(mask_features(guide))``)."""
        if z.ndim != 4 or z.shape[1] != self.bands:
            raise ValueError(f"MaskGuidedUNet expects (N, {self.bands}, H, W), got {tuple(z.shape)}")
        h, w = z.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(z, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate") if (ph or pw) else z
        if gates[0].shape[-2:] != x.shape[-2:]:
            raise ValueError(f"mask features are {tuple(gates[0].shape[-2:])}, input is {tuple(x.shape[-2:])}")
        it = iter(gates)  # the levels below run in _levels() order, each taking one gate per block

        def take(level: _Level) -> list[torch.Tensor]:
            return [next(it) for _ in level.blocks]

        f = self.head(x)
        skips = []
        for enc, down in zip(self.enc, self.down):
            f = enc(f, take(enc))
            skips.append(f)
            f = down(f)
        f = self.body(f, take(self.body))
        f = torch.sign(f) * F.relu(f.abs() - F.relu(self.tau))
        for lvl in reversed(range(len(self.up))):
            f = self.dec[lvl](self.up[lvl](f) + skips[lvl], take(self.dec[lvl]))
        out = x + self.tail(f)
        return out[..., :h, :w] if (ph or pw) else out


class RCUMPStage(nn.Module):
    """One stage's learnable parts: a :class:`StepEstimator` and a :class:`MaskGuidedUNet`.

    ``forward(z, guide)`` denoises: ``denoise(z, guidance(guide))``. With LoRA each stage sees the mask
    through its own adapted convolutions, so the guidance is per stage; it depends on the mask alone, and
    :class:`~zoo.models.lorun_cassi.LoRunCASSI` reuses it across calls with the same mask.
    ``estimate_step(x, r)`` estimates the per-band step.
    """

    def __init__(self, bands: int = 28, widths: Sequence[int] = (16, 32, 64), blocks: int = 1,
                 step_width: int = 16) -> None:
        super().__init__()
        self.bands = self.channels = int(bands)
        self.estimator = StepEstimator(bands, step_width)
        self.unet = MaskGuidedUNet(bands, widths, blocks)

    def mask_features(self, guide: torch.Tensor) -> list[torch.Tensor]:
        return self.unet.mask_features(guide)

    def estimate_step(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.estimator(x, r)

    def guidance(self, guide: torch.Tensor) -> list[torch.Tensor]:
        """The block gates of a raw guide (:meth:`MaskGuidedUNet.gates` of its mask features)."""
        return self.unet.gates(self.unet.mask_features(guide))

    def guidance_parameters(self) -> list[torch.Tensor]:
        """The parameters :meth:`guidance` reads (what a cache of it must watch)."""
        u = self.unet
        mods = [u.guide_in, u.guide_dw, *u.guide_down] + [b.gate for lvl, _ in u._levels() for b in lvl.blocks]
        return [p for m in mods for p in m.parameters()]

    def denoise(self, z: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.unet(z, gates)

    def forward(self, z: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return self.unet(z, self.guidance(guide))
