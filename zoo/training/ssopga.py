"""Lightning module of SSO-PGA and its PGA twin (thin: the base module + iterate logging).

Batches carry the multi-modal inputs (``{"ms", "pan", "ms_mask"}`` or ``{"noisy", "flash",
"sigma"}``) under ``"inputs"``; the base module's loss, metrics and optimiser are used unchanged.
``spectral=True`` (pansharpening recipes) adds SAM/ERGAS to validation.
"""

from __future__ import annotations

from typing import Any

import torch

from zoo.training.module import RestorationModule

__all__ = ["SSOPGAModule"]


class SSOPGAModule(RestorationModule):
    """:class:`RestorationModule` that also logs the smallest intermediate iterate (``*/min_iterate``)."""

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        m = getattr(self.net, "last_min_iterate", None)
        if m is not None:
            self.log("train/min_iterate", float(m), batch_size=batch["target"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        super().validation_step(batch, batch_idx, dataloader_idx)
        m = getattr(self.net, "last_min_iterate", None)
        if m is not None:
            self.log("val/min_iterate", float(m), batch_size=1, reduce_fx="min")
