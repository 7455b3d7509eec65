"""LoRun for SD-CASSI spectral compressive imaging (LoRun-9, Block-9, phase-1 base, real system).

Unfolding with the GAP-normalised data step and the mask-guided RCUMP-style stage
(:mod:`zoo.nn.mask_guided`)::

    x_0 = shift_back(y / C · 2)                                (benchmark initial estimate)
    r_k = Aᵀ((y − A x_{k-1}) / ΦΦᵀ)                             (GAP projection direction)
    z_k = x_{k-1} + ρ_k ⊙ r_k,   ρ_k = c_k · E_k(x_{k-1}, r_k)  (per-band step, E_k ∈ (0, 2)^C)
    x_k = D_k(z_k, [M, shift_back(ΦΦᵀ)/C])                      (mask-guided denoiser)

``c_k`` is the learned step scale (parameter ``step``; one for all stages in the tied phase-1
model), ``E_k`` the stage's step estimator. The LoRun denoising strength ``s_k`` of the CS
unfolding is not used here (the parameter is kept so the weights of every LoRun load alike).

``ρ = 1`` is the exact GAP projection onto ``{A x = y}``, so an untrained model (zero tails, zero
adapters, estimator at 1) returns the minimum-correction GAP solution; training starts there.
``E_k`` and ``D_k`` are one :class:`~zoo.nn.mask_guided.RCUMPStage`: in LoRun-K the stage is one shared
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
from zoo.nn.mask_guided import RCUMPStage
from zoo.physics.base import check_finite
from zoo.physics.cassi import SDCASSI, operator_to_real, real_to_operator
from zoo.registry import ModelEntry, register_model
from zoo.utils.tracing import tracing

__all__ = ["LoRunCASSI", "lorun_cassi", "real_to_operator", "operator_to_real", "GUIDANCE_CACHE"]

#: Inference cache of the mask-only gates (:meth:`LoRunCASSI.forward`): the most bytes one model keeps; 0 turns
#: it off (to time the uncached path).
GUIDANCE_CACHE = {"bytes": 256 * 2**20}


class LoRunCASSI(LoRun):
    """:class:`~zoo.models.LoRun` with the SD-CASSI data step and a mask-conditioned stage.

    ``mode="single"`` accepts ``stages > 1``: the one phase-1 block applied K times with tied
    weights. [ours] A block trained only as a single stage learns a map specific to the first
    iterate and diverges when unrolled (with zero adapters; the card of
    ``lorun-cassi-base`` records by how much), so our phase 1 ends with a few hundred steps of the tied 3-stage unrolling;
    the base is then a prior that tolerates repetition and LoRA only specialises it per stage.

    Args:
        physics: an :class:`~zoo.physics.SDCASSI` operator (its mask is a buffer of the model).
        denoiser: the base :class:`~zoo.nn.mask_guided.RCUMPStage`.
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
        ph.check_cube(x)
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

    def export_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The mask is a buffer of the weights: the checkpoint rebuilds with ``mask_init="checkpoint"``."""
        cfg = dict(config)
        cfg.update(mask_init="checkpoint", mask_size=[int(s) for s in self.physics.mask.shape])
        for k in ("data_root", "mask_file", "mask"):
            cfg.pop(k, None)
        return cfg

    def guide(self, mask: torch.Tensor, phis: torch.Tensor) -> torch.Tensor:
        """``[M, shift_back(ΦΦᵀ)/C]``: the raw mask guide of every stage (batch of the mask: one mask
        broadcasts over a batch of measurements)."""
        ph: SDCASSI = self.physics
        sb = ph.shift_back(phis) / ph.bands
        n = max(mask.shape[0], sb.shape[0])
        return torch.cat([mask.expand(n, -1, -1, -1), sb.expand(n, -1, -1, -1)], 1)

    def _guidance(self, k: int, stage: nn.Module, g: torch.Tensor, hit: bool) -> list[torch.Tensor]:
        """Stage ``k``'s block gates, from the cache when ``hit`` (same mask as the last call) and the stage's
        guidance weights are those it was computed with (their ``_version``/``data_ptr``: an optimiser step,
        ``load_state_dict``, ``.to()`` or re-merged adapters all move them)."""
        # inference tensors (merged copies built under torch.inference_mode) have no version counter
        key = tuple((0 if p.is_inference() else p._version, p.data_ptr()) for p in stage.guidance_parameters())
        cached = self._gates_cache["stages"].get(k) if hit else None
        if cached is not None and cached[0] is stage and cached[1] == key:
            return cached[2]
        gates = stage.guidance(g)
        if sum(t.numel() * t.element_size() for t in gates) * self.stages <= GUIDANCE_CACHE["bytes"]:
            # the entry holds the stage itself: its parameters' storage cannot be freed and reused by a
            # rebuilt merged copy whose (version, data_ptr) would then read as the cached one
            self._gates_cache["stages"][k] = (stage, key, gates)
        return gates

    def _cache_hit(self, m: torch.Tensor, dtype: torch.dtype) -> bool:
        """Whether this call's mask (and compute dtype) is the cached one; otherwise a fresh, empty cache."""
        c = self.__dict__.get("_gates_cache")
        sig = (tuple(m.shape), m.dtype, m.device, dtype)
        if c is not None and c["sig"] == sig and torch.equal(c["mask"], m):
            return True
        self.__dict__["_gates_cache"] = {"sig": sig, "mask": m.detach().clone(), "stages": {}}
        return False

    def _layout(self) -> torch.memory_format:
        """The memory format of the stages' convolution weights (channels-last after ``zoo.load`` on a CPU)."""
        # a k×k weight with several input channels: 1×1 and depthwise weights read as both layouts
        w = next((p for p in self.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1), None)
        return _format_of(w) if w is not None else torch.contiguous_format

    def clear_guidance_cache(self) -> None:
        """Drop the cached mask gates (rebuilt on the next inference call)."""
        self.__dict__.pop("_gates_cache", None)

    def train(self, mode: bool = True) -> "LoRunCASSI":
        self.clear_guidance_cache()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # .to()/.half(): the cache holds tensors of the old device/dtype
        self.clear_guidance_cache()
        return super()._apply(fn, recurse)

    def __getstate__(self):  # deepcopy/pickle: a copy rebuilds its own cache
        state = self.__dict__.copy()
        state.pop("_gates_cache", None)
        return state

    def forward(self, y: torch.Tensor, mask: torch.Tensor | None = None, img_size: Sequence[int] | None = None,
                return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Reconstruct ``(N, C, H, W)`` from ``y`` ``(N, 1, H, W + s(C−1))`` and its ``mask``.

        The mask-only part of every stage (guide features and block gates, about a sixth of the time) is
        computed once per mask: a mask expanded over the batch (as :meth:`measure` gives) is used at batch 1,
        and at inference (eval, no grad) the gates are kept for the next call with an equal mask, within
        :data:`GUIDANCE_CACHE` ``["bytes"]`` (256 MiB: a 256² cube's nine stages take 123 MB; larger
        inputs recompute them, as tiles with their own mask windows do).
        """
        ph: SDCASSI = self.physics
        check_finite(y, "measurement")
        m = ph.resolve_mask(mask, y.float())
        if m.shape[0] > 1 and m.stride(0) == 0:  # one mask expanded over the batch: broadcast it instead
            m = m[:1]
        # the stages run in their weights' memory layout (channels-last as zoo.load gives them on a CPU): inputs
        # in the other layout would make every convolution and residual add convert on the fly
        x = ph.A_dagger(y, mask=m, img_size=img_size).contiguous(memory_format=self._layout())
        phis = ph.phi_phit(m, like=y.float())
        g = self.guide(m, phis)
        cache = not (self.training or torch.is_grad_enabled() or tracing()) and GUIDANCE_CACHE["bytes"] > 0
        hit = cache and self._cache_hit(m, torch.get_autocast_dtype(y.device.type)
                                        if torch.is_autocast_enabled(y.device.type) else g.dtype)
        outs, prior = [], self.priors()
        for k in range(self.stages):
            stage = prior(k)  # stage k's adapters (merged at inference) or the k-th block
            # the shear's output is strided (N, H, C, W) memory: laid out like x (channels-last after a stage whose
            # weights are), the adds and the estimator's concatenation below run at memory speed, not 3-5x slower
            r = _like(ph.A_adjoint((y - ph.A(x, mask=m)) / phis, mask=m), x)
            c_k = self.step[min(k, self.step.numel() - 1)]  # one scale when the stages are tied
            z = x + c_k * stage.estimate_step(x, r) * r
            x = stage.denoise(z, self._guidance(k, stage, g, hit) if cache else stage.guidance(g))
            outs.append(x)
        return [o.contiguous() for o in outs] if return_all else x.contiguous()

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


def _format_of(x: torch.Tensor) -> torch.memory_format:
    """Channels-last if ``x`` is laid out that way (and not also plain contiguous), else NCHW."""
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def _like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``t`` in ``x``'s memory layout (channels-last or NCHW)."""
    return t.contiguous(memory_format=_format_of(x))


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
    mask: torch.Tensor | None = None,
    mask_file: str = "cassi/mask_256.mat",
    mask_size: int | Sequence[int] = 256,
    noise: bool = False,
    step_width: int = 16,
    seed: int = 0,
) -> LoRunCASSI:
    """LoRun for SD-CASSI.

    Args:
        stages, mode, gamma: see :class:`~zoo.models.LoRun`.
        widths, blocks, step_width: the :class:`~zoo.nn.mask_guided.RCUMPStage`.
        bands, step: the disperser (28 bands, 2 px/band in the benchmark).
        mask_init: ``"random"``/``"checkpoint"`` allocate a seeded binary ``mask_size`` mask (a
            checkpoint's state dict then carries the real one); ``"mat"`` names ``mask_file`` in the
            data folder, which :func:`zoo.data.resolve_model_files` reads into ``mask`` (recipes do this).
        mask: a 2-D coded aperture (wins over ``mask_init``).
        mask_file: the coded aperture file, key ``mask`` (``cassi/mask_256.mat``, ``cassi/real/mask_660.mat``).
        noise: simulate the real system's shot noise in ``measure``.
    """
    if mask is not None:
        physics = SDCASSI(torch.as_tensor(mask, dtype=torch.float32), bands=bands, step=step)
    elif mask_init == "mat":
        raise ValueError(f"mask_init='mat' names the file {mask_file} in the data folder: read it with "
                         "zoo.data.resolve_model_files(name, {'mask_init': 'mat', ...}) (recipes do this) and pass mask=")
    elif mask_init in ("random", "checkpoint"):
        physics = SDCASSI(None, bands=bands, step=step, mask_size=mask_size, seed=seed)
    else:
        raise ValueError(f"mask_init must be 'mat', 'random' or 'checkpoint', got {mask_init!r}")
    stage = RCUMPStage(bands, widths, blocks, step_width)
    return LoRunCASSI(physics, stage, stages=stages, mode=mode, gamma=gamma, noise=noise)


_COMMON = dict(architecture="lorun", task="cassi", builder=lorun_cassi, paper=PAPER,
               lightning_module="zoo.training.lorun_cassi.LoRunCASSIModule")
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
