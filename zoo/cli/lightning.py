"""``zoo fit|validate|test|predict``: Lightning's CLI over the recipes in ``recipes/<family>/<task>/*.yaml``."""

from __future__ import annotations

from typing import Sequence

import lightning as L
from lightning.pytorch.cli import LightningCLI

from zoo.training.callbacks import ExportWeights
from zoo.training.module import RestorationModule

__all__ = ["run_lightning"]


def _asks_resume(args: Sequence[str]) -> bool:
    args = list(args)
    return "--ckpt_path=last" in args or any(a == "--ckpt_path" and b == "last" for a, b in zip(args, args[1:]))


def run_lightning(args: Sequence[str]) -> LightningCLI:
    """Run ``LightningCLI`` with any zoo module/datamodule (``class_path`` in the recipe).

    ``--ckpt_path last`` must find a checkpoint: Lightning alone would only warn and start from
    scratch, so the export callback is told to refuse a run that asked to resume and found nothing.
    """
    ExportWeights.require_resume = _asks_resume(args)
    try:
        return LightningCLI(
            RestorationModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=list(args),
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
        )
    finally:
        ExportWeights.require_resume = False
