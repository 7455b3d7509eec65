"""``zoo finetune``: the LightningCLI arguments that fine-tune a pretrained checkpoint on a folder.

LoRun models (LoRA layers) fine-tune *adapters only* by default: the LoRA factors and the per-stage
step sizes/strengths train, the shared base prior and the physics stay frozen, and the export folder
gets ``adapters.safetensors`` (tens to hundreds of KiB) beside the full ``model.safetensors``; its
metadata names the base checkpoint and the sha256 of the base weights it was trained on, which
``zoo.load(name, adapters=path)`` checks. ``full=True`` trains every weight (no adapter file).
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.api import checkpoint, create, get_entry, list_models
from zoo.nn.lora import LoRALayer
from zoo.tasks import get_task
from zoo.utils.files import sha256_file

__all__ = ["finetune_args", "has_adapters"]


def has_adapters(name: str) -> bool:
    """Whether the published ``name`` has LoRA layers (LoRun in ``mode="lora"``): adapters-only fine-tuning applies."""
    rec = checkpoint(name)
    net = create(name, **(dict(rec.config) if rec else {}))
    return any(isinstance(m, LoRALayer) for m in net.modules())


def _base(name: str, weights: str | None) -> tuple[str, str]:
    """(base name, sha256 of its model.safetensors) the adapters are trained on."""
    ref = weights or name
    rec = checkpoint(ref) if ref in list_models(pretrained=True) else None
    if rec is not None:
        return ref, rec.files["model.safetensors"].sha256
    p = Path(ref)
    if p.suffix == ".safetensors" and p.is_file():
        return str(p.resolve()), sha256_file(p)
    raise ValueError(f"--weights {ref}: adapters-only fine-tuning starts from a published name or a .safetensors file "
                     "(the adapter file records its sha256); pass --full to fine-tune all weights from a .ckpt")


def finetune_args(name: str, data: str | Path, out: str | Path, *, weights: str | None = None, lr: float = 1e-3,
                  patch: int = 99, batch_size: int = 8, samples: int = 1000, val_images: int = 2, epochs: int = 5,
                  precision: str = "32-true", accelerator: str = "auto", full: bool = False,
                  adapters_only: bool | None = None, fast_dev_run: bool = False) -> list[str]:
    """``zoo fit`` arguments: the family's Lightning module, the task's datamodule on ``data``, export to ``out/export``.

    ``adapters_only``: ``None`` (default) = on for LoRun models unless ``full``; ``True`` refuses a
    model without LoRA layers; see the module docstring.
    """
    e = get_entry(name)
    task = get_task(e.task)
    rec = checkpoint(name)
    if rec is None:
        raise ValueError(f"{name} has no pretrained checkpoint; pretrained: {list_models(pretrained=True)}")
    if full and adapters_only:
        raise ValueError("--full trains every weight and --adapters-only the adapters alone: choose one")
    folder = Path(data).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"--data {folder} is not a folder of images")
    lora = has_adapters(name)
    if adapters_only and not lora:
        raise ValueError(f"--adapters-only needs a LoRun model with LoRA adapters; {name} has none "
                         f"(with adapters: {[n for n in list_models('lorun-*', pretrained=True) if has_adapters(n)]}); "
                         "drop the flag to fine-tune all its weights")
    adapters = lora and not full if adapters_only is None else adapters_only
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
        "--trainer.callbacks.monitor=val/psnr",  # the export is the best-on-validation network
    ]
    if adapters:
        base, sha = _base(name, weights)
        args += ["--trainer.callbacks.adapters=true", f"--trainer.callbacks.base={base}",
                 f"--trainer.callbacks.base_sha256={sha}"]
    if full and lora:
        args.append("--model.freeze_base=false")
    if fast_dev_run:
        args.append("--trainer.fast_dev_run=1")
    return args
