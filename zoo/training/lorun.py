"""Lightning module of LoRun and its Block-K baseline: the paper's two-phase training.

* phase 1: ``model: lorun-cs-base-r25`` (one GDM + base denoiser), all weights train;
* phase 2: ``model: lorun-cs-r25`` with ``phase1_weights`` pointing at phase 1; the base is
  copied into every stage and frozen, only LoRA adapters, step sizes and the learnable sampling
  operator train (``freeze_base=True``);
* Block-K: ``model: block9-cs-r25`` with the same ``phase1_weights``: each stage starts from the
  same base and all weights train (equal start, equal step budget).
"""

from __future__ import annotations

from typing import Any

from zoo.nn.lora import grow_adapters, is_adapter_key
from zoo.training.module import RestorationModule, read_state_dict

__all__ = ["LoRunModule"]


class LoRunModule(RestorationModule):
    """:class:`RestorationModule` + phase-1 initialisation and base freezing.

    Args:
        phase1_weights: weights of a trained phase-1 (``mode="single"``) model to start from.
        phase1_physics: also copy the phase-1 sampling operator (``False`` when phase 1 ran at
            another CS ratio: the base denoiser is shared, Φ is this model's own).
        strength_init: denoising strength of stages 2..K at the start of phase 2 (see
            :class:`~zoo.models.lorun.LoRun`; 0 = the unrolled start equals phase 1 + gradient steps).
        freeze_base: freeze the shared base denoiser (phase 2 of LoRun).
        base_lr_scale: with ``freeze_base=False``, the learning-rate factor of the shared base's
            weights while the adapters train at the full rate (a joint fine-tune after phase 2:
            the base moves slowly, so the per-stage adapters it carries stay valid).
        grow_rank: ``init_weights`` holds adapters of a lower rank (a smaller γ): embed them with
            :func:`~zoo.nn.lora.grow_adapters`, so training resumes from the same function with
            the rank of this model's ``gamma``.
        **kwargs: see :class:`RestorationModule`.
    """

    def __init__(
        self,
        *args: Any,
        phase1_weights: str | None = None,
        phase1_physics: bool = True,
        strength_init: float = 0.0,
        freeze_base: bool = True,
        grow_rank: bool = False,
        base_lr_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not base_lr_scale > 0:
            raise ValueError(f"base_lr_scale must be > 0 (freeze the base with freeze_base=True), got {base_lr_scale}")
        if freeze_base and base_lr_scale != 1.0:
            raise ValueError("base_lr_scale applies to a trainable base: set freeze_base=False with it")
        self._grow_rank = grow_rank  # read by load_init_weights, called from the base __init__
        super().__init__(*args, **kwargs)
        if phase1_weights:
            self.net.init_from_single(read_state_dict(phase1_weights), physics=phase1_physics,
                                      strength_init=strength_init)
        if freeze_base and self.net.mode == "lora":
            self.net.phase2_trainable()

    def lr_scale(self, name: str) -> float:
        scale = super().lr_scale(name)
        if self.net.mode == "lora" and name.startswith("net.denoiser.") and not is_adapter_key(name):
            scale *= self.hparams.base_lr_scale
        return scale

    def load_init_weights(self, ref: str) -> None:
        sd = read_state_dict(ref)
        if self._grow_rank:
            sd = grow_adapters(sd, self.net)
        self.net.load_state_dict(sd, strict=True)
