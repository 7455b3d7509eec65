"""``zoo fit|validate|test|predict``: Lightning's CLI over the recipes in ``recipes/<family>/<task>/*.yaml``."""

from __future__ import annotations

from typing import Sequence

import lightning as L
from lightning.pytorch.cli import LightningCLI

from zoo.training.module import RestorationModule

__all__ = ["run_lightning"]


def run_lightning(args: Sequence[str]) -> LightningCLI:
    """Run ``LightningCLI`` with any zoo module/datamodule (``class_path`` in the recipe)."""
    return LightningCLI(
        RestorationModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=list(args),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
