"""LoRun: deep LoRA-unfolding networks (arXiv 2602.18697), generic over the physics.

Proximal-gradient unfolding with K stages::

    x_0 = A_dagger(y)
    z_k = x_{k-1} − ρ_k · Aᵀ(A x_{k-1} − y)          (gradient-descent module, ρ_k learnable)
    x_k = z_k + s_k · (D_{θ0 + Δθ_k}(z_k) − z_k)     (proximal module: shared base + stage LoRA)

``s_k`` is a learnable per-stage denoising strength ([ours]): the phase-1 denoiser is trained
to clean the artefacts of *one* gradient step, and applying it at full strength K times makes
the untrained unrolled network diverge (measured: 10 dB on Set11 at 25 %). Starting phase 2
with ``s_1 = 1`` and ``s_k = strength_init`` (small) for later stages makes the unrolled start as
good as phase 1; the adapters and ``s_k`` then learn each stage's strength — the per-stage
adaptation LoRun is about.

``mode`` selects the prior:

* ``"lora"``  – LoRun-K: one base denoiser ``θ0`` shared by all stages + K LoRA adapter sets.
* ``"block"`` – Block-K baseline: K independent full denoisers (same architecture).
* ``"single"`` – one stage, plain base denoiser: the phase-1 block of the two-phase training.

Two-phase training (the paper's recipe): train ``mode="single"`` (phase 1), then build the
K-stage ``"lora"`` model, :meth:`LoRun.init_from_single` copies the base denoiser (and the
physics / step size), :meth:`LoRun.phase2_trainable` freezes the base so only adapters, step sizes
and a learnable sampling operator train.

Example:
    >>> import torch, zoo
    >>> net = zoo.create("lorun-cs-r25", stages=2, widths=(8, 16))
    >>> x = torch.rand(1, 1, 66, 66)
    >>> net(**net.measure(x)).shape
    torch.Size([1, 1, 66, 66])
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from zoo.nn.lora import freeze_base, inject_lora, set_stage
from zoo.nn.unet import ResUNet
from zoo.physics.base import LinearPhysics
from zoo.physics.cs import BlockCS, load_ista_matrices
from zoo.registry import ModelEntry, register_model

__all__ = ["LoRun", "lorun_cs"]

PAPER = "Deep LoRA-Unfolding Networks (LoRun), arXiv 2602.18697, IEEE TIP 2026"


class LoRun(nn.Module):
    """Proximal-gradient unfolding with a shared base + per-stage LoRA prior (module docstring).

    Args:
        physics: a :class:`~zoo.physics.base.LinearPhysics` (owned: learnable operators train).
        denoiser: the base prior ``D_θ0`` (an ``nn.Module`` mapping ``z`` to ``x``).
        stages: K.
        mode: ``"lora"``, ``"block"`` or ``"single"``.
        gamma: LoRA rank percentage γ.
        step_init: initial ρ_k.
    """

    def __init__(
        self,
        physics: LinearPhysics,
        denoiser: nn.Module,
        stages: int = 9,
        mode: str = "lora",
        gamma: float = 10.0,
        step_init: float = 1.0,
    ) -> None:
        super().__init__()
        if mode not in ("lora", "block", "single"):
            raise ValueError(f"mode must be 'lora', 'block' or 'single', got {mode!r}")
        if mode == "single" and stages != 1:
            raise ValueError("mode='single' is the one-stage phase-1 block: use stages=1")
        self.physics, self.mode, self.stages = physics, mode, int(stages)
        self.channels = int(getattr(denoiser, "channels", 1))
        if mode == "block":
            self.denoisers = nn.ModuleList([copy.deepcopy(denoiser) for _ in range(stages)])
        else:
            self.denoiser = inject_lora(denoiser, stages, gamma) if mode == "lora" else denoiser
        self.step = nn.Parameter(torch.full((stages,), float(step_init)))
        # per-stage denoising strength s_k: x_k = z_k + s_k (D_k(z_k) − z_k)
        self.strength = nn.Parameter(torch.ones(stages), requires_grad=(mode != "single"))

    # -- the zoo model contract -----------------------------------------------------------------
    @property
    def tile_multiple(self) -> int:
        """Tiles aligned to this many pixels are measured exactly like the whole image."""
        return int(getattr(self.physics, "block", 1))

    def measure(self, x: torch.Tensor) -> dict[str, Any]:
        """Simulate the measurement of a clean image: the keyword inputs of :meth:`forward`."""
        return {"y": self.physics.A(x), "img_size": tuple(x.shape[-2:])}

    def prior(self, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.mode == "block":
            return self.denoisers[k]
        set_stage(self.denoiser, k if self.mode == "lora" else None)
        return self.denoiser

    def forward(
        self, y: torch.Tensor, img_size: Sequence[int] | None = None, return_all: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Reconstruct from ``y``; ``return_all`` gives every stage output (deep supervision)."""
        size = tuple(int(s) for s in img_size) if img_size is not None else None
        x = self.physics.A_dagger(y, img_size=size)
        outs = []
        for k in range(self.stages):
            # physics runs in fp32 (see zoo.physics.base.fp32); the prior follows autocast
            z = x - self.step[k] * self.physics.gradient(x, y)
            x = z + self.strength[k] * (self.prior(k)(z) - z)
            outs.append(x)
        return outs if return_all else x

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before the per-stage strength existed: full strength, as they were trained
        key = prefix + "strength"
        if key not in state_dict and prefix + "step" in state_dict:
            state_dict[key] = torch.ones_like(self.strength)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- two-phase training -----------------------------------------------------------------------
    @torch.no_grad()
    def init_from_single(
        self, single: "LoRun | dict[str, torch.Tensor]", physics: bool = True, strength_init: float = 0.0
    ) -> None:
        """Start phase 2 (or Block-K) from a trained phase-1 ``single`` model or its state dict.

        ``physics=False`` keeps this model's own operator (a base trained at another CS ratio
        reused with new adapters: the shared-base-across-tasks use of LoRA). Stage 1 gets the
        phase-1 strength, later stages ``strength_init`` (see the module docstring).
        """
        sd = single.state_dict() if isinstance(single, nn.Module) else single
        if physics:
            phys = {k[len("physics."):]: v for k, v in sd.items() if k.startswith("physics.")}
            self.physics.load_state_dict(phys, strict=True)
        den = {k[len("denoiser."):]: v for k, v in sd.items() if k.startswith("denoiser.")}
        if self.mode == "block":
            for d in self.denoisers:
                d.load_state_dict(den, strict=True)
        else:
            target = self.denoiser
            # base weights of a LoRA layer live under "<layer>.base.<param>"
            remap = {}
            own = target.state_dict()
            for k, v in den.items():
                if k in own:
                    remap[k] = v
                else:
                    head, _, leaf = k.rpartition(".")
                    remap[f"{head}.base.{leaf}"] = v
            missing = [k for k in own if k not in remap and ".lora_" not in k]
            if missing:
                raise ValueError(f"phase-1 state dict lacks {missing[:3]}: same widths/architecture?")
            target.load_state_dict(remap, strict=False)
        self.step.fill_(float(sd["step"][0]))
        self.strength.fill_(float(strength_init))
        self.strength[0] = float(sd["strength"][0]) if "strength" in sd else 1.0

    def phase2_trainable(self) -> None:
        """Freeze the shared base denoiser; adapters, step sizes, strengths and learnable physics train."""
        if self.mode != "lora":
            raise ValueError("phase 2 applies to mode='lora'")
        freeze_base(self.denoiser)


# ---------------------------------------------------------------------------------------------
# registered constructors (timm style: at the bottom of the family's file)


def lorun_cs(
    ratio: float = 0.25,
    stages: int = 9,
    mode: str = "lora",
    widths: Sequence[int] = (16, 32, 64),
    blocks: int = 1,
    gamma: float = 10.0,
    phi_init: str = "gaussian",
    qinit: bool | None = None,
    learnable_phi: bool = True,
    data_root: str | None = None,
    seed: int = 0,
) -> LoRun:
    """LoRun for 33×33 block compressive sensing of grey images.

    Args:
        ratio: CS ratio.
        stages, mode, gamma: see :class:`LoRun`.
        widths, blocks: the :class:`~zoo.nn.unet.ResUNet` base denoiser.
        phi_init: ``"ista"`` reads the published ISTA-Net Φ (and Qinit) from
            ``$ZOO_DATA/cs/phi``; ``"gaussian"`` a seeded orthonormal Gaussian Φ; ``"checkpoint"``
            allocates Φ/Qinit to be filled by a state dict.
        qinit: use a learned-linear initial estimate matrix (default: when ``phi_init="ista"``
            and its file exists).
        learnable_phi: train Φ (and Qinit) with the network.
    """
    q = None
    if phi_init == "ista":
        from zoo.data.paths import find_data

        root = find_data("cs/phi", data_root, layout="cs/phi/phi_0_{r}_1089.mat + Initialization_Matrix_{r}.mat",
                         source="github.com/jianzhangcs/ISTA-Net-PyTorch")
        phi, q = load_ista_matrices(root, ratio)
        if qinit is False:
            q = None
        elif qinit and q is None:
            raise FileNotFoundError(f"no Initialization_Matrix for ratio {ratio} in {root}; set qinit=False")
        physics = BlockCS(ratio, phi=phi, qinit=q, learnable=learnable_phi)
    elif phi_init in ("gaussian", "checkpoint"):
        physics = BlockCS(ratio, learnable=learnable_phi, seed=seed)
        if qinit:
            n = physics.block**2
            q0 = physics.phi.detach().T.clone() if phi_init == "gaussian" else torch.zeros(n, physics.m)
            physics = BlockCS(ratio, phi=physics.phi.detach(), qinit=q0, learnable=learnable_phi)
    else:
        raise ValueError(f"phi_init must be 'ista', 'gaussian' or 'checkpoint', got {phi_init!r}")
    return LoRun(physics, ResUNet(1, widths, blocks), stages=stages, mode=mode, gamma=gamma)


_CS_COMMON = dict(architecture="lorun", task="cs", builder=lorun_cs, paper=PAPER)

for _r in (1, 4, 10, 25, 30, 40, 50):
    register_model(ModelEntry(
        name=f"lorun-cs-r{_r}", default_config={"ratio": _r / 100, "stages": 9, "mode": "lora"},
        test_config={"widths": (8, 16), "stages": 2},
        description=f"LoRun-9 block CS at {_r} %: shared ResUNet base + 9 LoRA adapter sets", **_CS_COMMON))
    register_model(ModelEntry(
        name=f"lorun-cs-base-r{_r}", default_config={"ratio": _r / 100, "stages": 1, "mode": "single"},
        test_config={"widths": (8, 16)},
        description=f"LoRun phase-1 block (GDM + base denoiser) for CS at {_r} %", **_CS_COMMON))
    register_model(ModelEntry(
        name=f"block9-cs-r{_r}", default_config={"ratio": _r / 100, "stages": 9, "mode": "block"},
        test_config={"widths": (8, 16), "stages": 2},
        description=f"Block-9 baseline for CS at {_r} %: 9 independent ResUNet denoisers",
        **{**_CS_COMMON, "architecture": "blockk"}))
