"""LoRun: deep LoRA-unfolding networks (arXiv 2602.18697), generic over the physics.

Proximal-gradient unfolding with K stages::

    x_0 = A_dagger(y)
    z_k = x_{k-1} − ρ_k · Aᵀ(A x_{k-1} − y)          (gradient-descent module, ρ_k learnable)
    x_k = z_k + s_k · (D_{θ0 + Δθ_k}(z_k) − z_k)     (proximal module: shared base + stage LoRA)

``s_k`` is a learnable per-stage denoising strength ([ours]): the phase-1 denoiser is trained
to clean the artefacts of *one* gradient step, and applying it at full strength K times makes
the untrained unrolled network diverge (the ``lorun-cs-r25`` card records by how much). Starting phase 2
with ``s_1 = 1`` and ``s_k = strength_init`` (small) for later stages makes the unrolled start as
good as phase 1; the adapters and ``s_k`` then learn each stage's strength — the per-stage
adaptation LoRun is about.

``mode`` selects the prior:

* ``"lora"``  – LoRun-K: one base denoiser ``θ0`` shared by all stages + K LoRA adapter sets.
* ``"block"`` – Block-K baseline: K independent full denoisers (same architecture).
* ``"single"`` – one stage, plain base denoiser: the phase-1 block of the two-phase training.

Two-phase training (the paper's recipe): train ``mode="single"`` (phase 1), then build the
K-stage ``"lora"`` model, :meth:`LoRun.init_from_single` copies the base denoiser (and the
physics / step size), :meth:`LoRun.set_trainable` (``"finetune"``) freezes the base so only
adapters, step sizes and a learnable sampling operator train.

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

from zoo.models.base import Restorer
from zoo.nn.lora import freeze_base, inject_lora, is_adapter_key, load_base, set_stage, stage_layers, stage_selector
from zoo.nn.unet import ResUNet
from zoo.physics.base import LinearPhysics
from zoo.physics.cs import BlockCS
from zoo.registry import ModelEntry, register_model

__all__ = ["LoRun", "lorun_cs"]

PAPER = "Deep LoRA-Unfolding Networks (LoRun), arXiv 2602.18697, IEEE TIP 2026"


class LoRun(Restorer):
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
        self.channels = int(denoiser.channels)
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
        """Tiles aligned to this many pixels are measured exactly like the whole image (the CS block)."""
        return int(self.physics.tile_multiple)

    def measure(self, x: torch.Tensor) -> dict[str, Any]:
        """Simulate the measurement of a clean image: the keyword inputs of :meth:`forward`."""
        return {"y": self.physics.A(x), "img_size": tuple(x.shape[-2:])}

    def prior(self, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Stage ``k``'s prior: the k-th block, or the shared denoiser with stage ``k``'s adapters selected."""
        if self.mode == "block":
            return self.denoisers[k]
        set_stage(self.denoiser, k if self.mode == "lora" else None, stage_layers(self, self.denoiser))
        return self.denoiser

    def priors(self) -> Callable[[int], nn.Module]:
        """``k ↦`` stage ``k``'s prior, resolved once per forward: at inference LoRun-K's stages are plain merged
        copies (:func:`~zoo.nn.lora.stage_selector`), which run like Block-K's; otherwise :meth:`prior`."""
        return stage_selector(self, self.denoiser) if self.mode == "lora" else self.prior

    def forward(
        self, y: torch.Tensor, img_size: Sequence[int] | None = None, return_all: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Reconstruct from ``y``; ``return_all`` gives every stage output (deep supervision)."""
        size = tuple(int(s) for s in img_size) if img_size is not None else None
        x = self.physics.A_dagger(y, img_size=size)
        outs, prior = [], self.priors()
        for k in range(self.stages):
            # physics runs in fp32 (see zoo.physics.base.fp32); the prior follows autocast
            z = x - self.step[k] * self.physics.gradient(x, y)
            x = z + self.strength[k] * (prior(k)(z) - z)
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
            load_base(self.denoiser, den)
        self.step.fill_(float(sd["step"][0]))
        self.strength.fill_(float(strength_init))
        self.strength[0] = float(sd["strength"][0]) if "strength" in sd else 1.0

    def phase2_trainable(self) -> None:
        """Freeze the shared base denoiser; adapters, step sizes, strengths and learnable physics train."""
        if self.mode != "lora":
            raise ValueError("phase 2 applies to mode='lora'")
        freeze_base(self.denoiser)

    def set_trainable(self, phase: str = "finetune") -> None:
        """``"finetune"``: LoRun-K trains its adapters and stage scalars (base frozen); others train all."""
        super().set_trainable(phase)
        if phase == "finetune" and self.mode == "lora":
            self.phase2_trainable()

    def parameter_roles(self) -> dict[str, str]:
        def role(n: str) -> str:
            if n.startswith("physics."):
                return "physics"
            if n in ("step", "strength"):
                return "stage"
            return "prior_adapters" if is_adapter_key(n) else "prior_base"

        return {n: role(n) for n, _ in self.named_parameters()}

    def export_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The weights carry Φ (and Qinit): the checkpoint rebuilds with ``phi_init="checkpoint"``."""
        cfg = dict(config)
        cfg.update(phi_init="checkpoint", qinit=self.physics.qinit is not None)
        for k in ("data_root", "phi"):
            cfg.pop(k, None)
        return cfg


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
    phi: torch.Tensor | None = None,
    qinit: bool | torch.Tensor | None = None,
    learnable_phi: bool = True,
    seed: int = 0,
) -> LoRun:
    """LoRun for 33×33 block compressive sensing of grey images.

    Args:
        ratio: CS ratio.
        stages, mode, gamma: see :class:`LoRun`.
        widths, blocks: the :class:`~zoo.nn.unet.ResUNet` base denoiser.
        phi_init: ``"gaussian"`` a seeded orthonormal Gaussian Φ; ``"checkpoint"`` allocates Φ/Qinit
            to be filled by a state dict; ``"ista"`` the published ISTA-Net Φ, which is a data file:
            :func:`zoo.data.resolve_model_files` reads it into ``phi``/``qinit`` (recipes do this).
        phi: a sampling matrix ``(m, 1089)`` (wins over ``phi_init``).
        qinit: a learned-linear initial estimate: a ``(1089, m)`` matrix, or ``True`` for Φᵀ
            (``"gaussian"``) / zeros to be filled (``"checkpoint"``).
        learnable_phi: train Φ (and Qinit) with the network.
    """
    if phi is not None:
        q = qinit if isinstance(qinit, torch.Tensor) else None
        physics = BlockCS(ratio, phi=phi, qinit=q, learnable=learnable_phi)
    elif phi_init == "ista":
        raise ValueError("phi_init='ista' names the ISTA-Net files in the data folder: read them with "
                         "zoo.data.resolve_model_files(name, {'phi_init': 'ista', ...}) (recipes do this) and pass phi=")
    elif phi_init in ("gaussian", "checkpoint"):
        physics = BlockCS(ratio, learnable=learnable_phi, seed=seed)
        if qinit is not None and qinit is not False:
            n = physics.block**2
            q0 = physics.phi.detach().T.clone() if phi_init == "gaussian" else torch.zeros(n, physics.m)
            physics = BlockCS(ratio, phi=physics.phi.detach(), qinit=q0, learnable=learnable_phi)
    else:
        raise ValueError(f"phi_init must be 'ista', 'gaussian' or 'checkpoint', got {phi_init!r}")
    return LoRun(physics, ResUNet(1, widths, blocks), stages=stages, mode=mode, gamma=gamma)


_CS_COMMON = dict(architecture="lorun", task="cs", builder=lorun_cs, paper=PAPER,
                  lightning_module="zoo.training.LoRunModule")

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
