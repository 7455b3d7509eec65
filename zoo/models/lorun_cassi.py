"""LoRun for SD-CASSI spectral compressive imaging (LoRun-9, Block-9, phase-1 base, real system).

Unfolding with the GAP-normalised data step and the mask-guided RCUMP-style stage
(:mod:`zoo.nn.rcump`)::

    x_0 = shift_back(y / C · 2)                                (benchmark initial estimate)
    r_k = Aᵀ((y − A x_{k-1}) / ΦΦᵀ)                             (projection direction)
    z_k = x_{k-1} + ρ_k ⊙ r_k,   ρ_k = s_k · E_k(x_{k-1}, r_k)  (per-band step, E_k ∈ (0, 2)^C)
    x_k = D_k(z_k, [M, shift_back(ΦΦᵀ)/C])                      (mask-guided denoiser)

``ρ = 1`` is the exact GAP projection onto ``{A x = y}``, so an untrained model (zero tails, zero
adapters, estimator at 1) returns the minimum-correction GAP solution; training starts there.
``E_k`` and ``D_k`` are one :class:`~zoo.nn.rcump.RCUMPStage`: in LoRun-K the stage is one shared
base + stage-``k`` LoRA adapters on every convolution (the estimator included), in Block-K K
independent copies, in the phase-1 model a single plain stage (see :class:`zoo.models.LoRun`).

The measurement carries its mask: ``net.measure(x)`` returns ``{"y", "mask"}``; the mask is the
operator's whole coded aperture when the cube has its size, else a window of it (random while
training — "random mask crops" — and the centre window in eval mode). Real-system models
(``noise=True``) add MST's shot noise to simulated measurements and read real captures scaled by
``C / (2·1.2)`` (:func:`real_to_operator`).

Example:
    >>> import torch, zoo
    >>> net = zoo.create("lorun-cassi-9stg", stages=2, widths=(8, 16), bands=8, mask_size=24).eval()
    >>> x = torch.rand(1, 8, 24, 24)
    >>> net(**net.measure(x)).shape
    torch.Size([1, 8, 24, 24])
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from zoo.models.lorun import PAPER, LoRun
from zoo.nn.rcump import RCUMPStage
from zoo.physics.base import check_finite
from zoo.physics.cassi import REAL_SCALE, SDCASSI, load_cassi_mask
from zoo.registry import ModelEntry, register_model

__all__ = ["LoRunCASSI", "lorun_cassi", "real_to_operator", "operator_to_real"]


def real_to_operator(meas: torch.Tensor, bands: int = 28) -> torch.Tensor:
    """A real capture normalised like MST's (``y/C·2·1.2``) → operator units ``y``."""
    return meas * (bands / REAL_SCALE)


def operator_to_real(y: torch.Tensor, bands: int = 28) -> torch.Tensor:
    return y * (REAL_SCALE / bands)


class LoRunCASSI(LoRun):
    """:class:`~zoo.models.LoRun` with the SD-CASSI data step and a mask-conditioned stage.

    ``mode="single"`` accepts ``stages > 1``: the one phase-1 block applied K times with tied
    weights. [ours] A block trained only as a single stage learns a map specific to the first
    iterate and diverges when unrolled (measured: 21.9 dB after stage 1 → 4.5 dB after stage 9 with
    zero adapters), so our phase 1 ends with a few hundred steps of the tied 3-stage unrolling;
    the base is then a prior that tolerates repetition and LoRA only specialises it per stage.

    Args:
        physics: an :class:`~zoo.physics.SDCASSI` operator (its mask is a buffer of the model).
        denoiser: the base :class:`~zoo.nn.rcump.RCUMPStage`.
        stages, mode, gamma, step_init: see :class:`~zoo.models.LoRun`.
        noise: simulate the real system's shot noise in :meth:`measure`.
    """

    def __init__(self, physics: SDCASSI, denoiser: RCUMPStage, stages: int = 9, mode: str = "lora",
                 gamma: float = 10.0, step_init: float = 1.0, noise: bool = False) -> None:
        tied = mode == "single" and int(stages) > 1
        super().__init__(physics, denoiser, stages=1 if tied else stages, mode=mode, gamma=gamma, step_init=step_init)
        # mode="single" with stages > 1: the phase-1 block unrolled K times with tied weights (one
        # step scale), so the base learns to be applied repeatedly (see the class docstring)
        self.stages = int(stages)
        self.channels = physics.bands
        self.noise = bool(noise)

    @property
    def tile_multiple(self) -> int:
        return 1

    # -- the zoo model contract -----------------------------------------------------------------
    def measure(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
        """Simulate ``{"y", "mask"}`` for clean cubes ``x`` (N, C, H, W) (module docstring)."""
        ph: SDCASSI = self.physics
        ph._check_cube(x)
        n, _, h, w = x.shape
        if mask is None:
            mh, mw = ph.mask.shape
            if (h, w) == (mh, mw):
                mask = ph.mask[None, None].expand(n, 1, h, w)
            elif self.training:
                mask = ph.crop_mask(h, w, batch=n)
            else:
                mask = ph.crop_mask(h, w, top=(mh - h) // 2, left=(mw - w) // 2).expand(n, 1, h, w)
        mask = mask.to(x.device)
        y = ph.A(x, mask=mask)
        if self.noise:
            y = SDCASSI.shot_noise(y, ph.bands)
        return {"y": y, "mask": mask}

    def example_inputs(self, size: int) -> dict[str, Any]:
        """Inputs for cost profiling: a random ``C×size×size`` cube under the mask's centre window."""
        return self.measure(torch.rand(1, self.channels, size, size))

    def guide(self, mask: torch.Tensor, phis: torch.Tensor) -> torch.Tensor:
        """``[M, shift_back(ΦΦᵀ)/C]``: the raw mask guide of every stage."""
        ph: SDCASSI = self.physics
        sb = ph.shift_back(phis) / ph.bands
        n = max(mask.shape[0], sb.shape[0])
        return torch.cat([mask.expand(n, -1, -1, -1), sb.expand(n, -1, -1, -1)], 1)

    def forward(self, y: torch.Tensor, mask: torch.Tensor | None = None, img_size: Sequence[int] | None = None,
                return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Reconstruct ``(N, C, H, W)`` from ``y`` ``(N, 1, H, W + s(C−1))`` and its ``mask``."""
        ph: SDCASSI = self.physics
        check_finite(y, "measurement")
        m = ph._resolve_mask(mask, y.float())
        x = ph.A_dagger(y, mask=m, img_size=img_size)
        phis = ph.phi_phit(m, like=y.float())
        g = self.guide(m, phis)
        outs = []
        for k in range(self.stages):
            stage = self.prior(k)  # selects stage k's adapters (or the k-th block)
            r = ph.A_adjoint((y - ph.A(x, mask=m)) / phis, mask=m)
            s_k = self.step[min(k, self.step.numel() - 1)]
            z = x + s_k * stage.step(x, r) * r
            x = stage(z, g)
            outs.append(x)
        return outs if return_all else x

    # -- transfer -------------------------------------------------------------------------------
    @torch.no_grad()
    def init_from_model(self, other: nn.Module | Mapping[str, torch.Tensor], physics: bool = False) -> None:
        """Copy every weight of a same-architecture model (adapters included), by default not its mask.

        The real-system model starts from the simulation LoRun-9 this way and then trains new
        adapters (the base stays frozen).
        """
        sd = other.state_dict() if isinstance(other, nn.Module) else dict(other)
        if not physics:
            sd = {k: v for k, v in sd.items() if not k.startswith("physics.")}
            sd.update({f"physics.{k}": v for k, v in self.physics.state_dict().items()})
        self.load_state_dict(sd, strict=True)


# ---------------------------------------------------------------------------------------------
# registered constructors


def lorun_cassi(
    stages: int = 9,
    mode: str = "lora",
    widths: Sequence[int] = (16, 32, 64),
    blocks: int = 1,
    gamma: float = 10.0,
    bands: int = 28,
    step: int = 2,
    mask_init: str = "random",
    mask_file: str = "cassi/mask_256.mat",
    mask_size: int | Sequence[int] = 256,
    noise: bool = False,
    step_width: int = 16,
    data_root: str | None = None,
    seed: int = 0,
) -> LoRunCASSI:
    """LoRun for SD-CASSI.

    Args:
        stages, mode, gamma: see :class:`~zoo.models.LoRun`.
        widths, blocks, step_width: the :class:`~zoo.nn.rcump.RCUMPStage`.
        bands, step: the disperser (28 bands, 2 px/band in the benchmark).
        mask_init: ``"mat"`` reads ``mask_file`` (relative to ``ZOO_DATA`` or absolute);
            ``"random"``/``"checkpoint"`` allocate a seeded binary ``mask_size`` mask (a checkpoint's
            state dict then carries the real one).
        mask_file: the coded aperture, key ``mask`` (``cassi/mask_256.mat``, ``cassi/real/mask_660.mat``).
        noise: simulate the real system's shot noise in ``measure``.
    """
    if mask_init == "mat":
        from zoo.data.paths import find_data

        path = find_data(mask_file, data_root, layout=f"{mask_file} (key 'mask', 2-D)",
                         source="github.com/mengziyi64/TSA-Net (TSA_Net_simulation/Data/mask.mat, TSA_Net_realdata/Data/mask.mat)")
        physics = SDCASSI(load_cassi_mask(path), bands=bands, step=step)
    elif mask_init in ("random", "checkpoint"):
        physics = SDCASSI(None, bands=bands, step=step, mask_size=mask_size, seed=seed)
    else:
        raise ValueError(f"mask_init must be 'mat', 'random' or 'checkpoint', got {mask_init!r}")
    stage = RCUMPStage(bands, widths, blocks, step_width)
    return LoRunCASSI(physics, stage, stages=stages, mode=mode, gamma=gamma, noise=noise)


_COMMON = dict(architecture="lorun", task="cassi", builder=lorun_cassi, paper=PAPER)
_REAL = {"mask_size": 660, "mask_file": "cassi/real/mask_660.mat", "noise": True}

register_model(ModelEntry(
    name="lorun-cassi-9stg", default_config={"stages": 9, "mode": "lora"},
    description="LoRun-9 SD-CASSI (28 bands, 256² simulation mask): shared mask-guided U-Net + 9 LoRA sets",
    **_COMMON))
register_model(ModelEntry(
    name="lorun-cassi-base", default_config={"stages": 1, "mode": "single"},
    description="LoRun-CASSI phase-1 block (GAP step + step estimator + mask-guided U-Net)", **_COMMON))
register_model(ModelEntry(
    name="block9-cassi", default_config={"stages": 9, "mode": "block"},
    description="Block-9 SD-CASSI baseline: 9 independent mask-guided U-Nets", **{**_COMMON, "architecture": "blockk"}))
register_model(ModelEntry(
    name="lorun-cassi-9stg-real", default_config={"stages": 9, "mode": "lora", **_REAL},
    description="LoRun-9 for the real TSA-Net CASSI system (660² mask, shot noise): sim base + real-mask adapters",
    **_COMMON))
