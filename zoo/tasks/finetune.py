"""``zoo finetune``: the LightningCLI arguments that fine-tune a pretrained checkpoint on a folder."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.api import checkpoint, get_entry, list_models
from zoo.tasks import get_task

__all__ = ["finetune_args"]


def finetune_args(name: str, data: str | Path, out: str | Path, *, weights: str | None = None, lr: float = 1e-3,
                  patch: int = 99, batch_size: int = 8, samples: int = 1000, val_images: int = 2, epochs: int = 5,
                  precision: str = "32-true", accelerator: str = "auto", full: bool = False,
                  fast_dev_run: bool = False) -> list[str]:
    """``zoo fit`` arguments: the family's Lightning module, the task's datamodule on ``data``, export to ``out/export``.

    LoRun fine-tunes its adapters and step sizes only unless ``full``.
    """
    e = get_entry(name)
    task = get_task(e.task)
    rec = checkpoint(name)
    if rec is None:
        raise ValueError(f"{name} has no pretrained checkpoint; pretrained: {list_models(pretrained=True)}")
    folder = Path(data).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"--data {folder} is not a folder of images")
    out = Path(out)
    args = [
        "fit",
        f"--model={e.lightning_module}", f"--model.model={name}", f"--model.model_config={json.dumps(rec.config)}",
        f"--model.init_weights={weights or name}", f"--model.lr={lr}",
        f"--data={task.datamodule}", *task.finetune_data_args(str(folder)),
        f"--data.patch={patch}", f"--data.batch_size={batch_size}", f"--data.samples_per_epoch={samples}",
        f"--data.val_images={val_images}",
        f"--trainer.max_epochs={epochs}", f"--trainer.default_root_dir={out}", "--trainer.enable_checkpointing=false",
        f"--trainer.precision={precision}", f"--trainer.accelerator={accelerator}",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={out}",
        "--trainer.callbacks=zoo.training.ExportWeights", f"--trainer.callbacks.dirpath={out / 'export'}",
    ]
    if full:
        args.append("--model.freeze_base=false")
    if fast_dev_run:
        args.append("--trainer.fast_dev_run=1")
    return args
