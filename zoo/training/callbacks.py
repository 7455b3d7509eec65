"""Lightning callbacks of the zoo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch

from zoo.hub.files import atomic_write

__all__ = ["ExportWeights", "ThroughputLog"]


class ExportWeights(L.Callback):
    """Write the network's weights (``model.safetensors``) + ``config.json`` + a learning curve.

    Written after every validation and at the end of fit, atomically, into ``dirpath``; this is
    the folder a later phase (``phase1_weights``) or ``zoo export`` reads.
    ``learning_curve.json`` records (step, epoch, wall seconds, train loss, val metrics).
    """

    def __init__(self, dirpath: str, overwrite: bool = True) -> None:
        super().__init__()
        self.dirpath, self.overwrite = Path(dirpath), overwrite
        self.curve: list[dict] = []
        self.t0 = time.time()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.t0 = time.time()
        if (self.dirpath / "model.safetensors").exists() and not self.overwrite:
            raise FileExistsError(f"{self.dirpath}/model.safetensors exists; set overwrite: true to replace it")

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0 or trainer.sanity_checking:
            return
        from safetensors.torch import save_file

        m = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        self.curve.append({"step": trainer.global_step, "epoch": trainer.current_epoch,
                           "wall_s": round(time.time() - self.t0, 1), **m})
        sd = {k: v.detach().float().contiguous().cpu() for k, v in pl_module.net.state_dict().items()}
        with atomic_write(self.dirpath / "model.safetensors", overwrite=True) as tmp:
            save_file(sd, str(tmp))
        cfg = {"model": pl_module.hparams.model, "config": pl_module.export_config()}
        for name, obj in (("config.json", cfg), ("learning_curve.json", self.curve)):
            with atomic_write(self.dirpath / name, overwrite=True) as tmp:
                tmp.write_text(json.dumps(obj, indent=1))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)


class ThroughputLog(L.Callback):
    """Measure optimiser steps/s and samples/s after a warm-up, and write them to a JSON file.

    The first ``warmup`` steps (CUDA/cuDNN autotuning, loader start-up) are excluded. Written at
    the end of fit, atomically; used to size equal-step budgets of runs that share one machine
    (``scripts/gpu_session.sh``), not as a benchmark: shared machines are noisy.

    Example:
        ``zoo fit --config recipes/X.yaml --trainer.max_steps=60 --trainer.callbacks=zoo.training.ThroughputLog
        --trainer.callbacks.path=rate.json`` (the form ``scripts/gpu_session.sh`` uses)
    """

    def __init__(self, path: str, warmup: int = 10) -> None:
        super().__init__()
        self.path, self.warmup = Path(path), int(warmup)
        self.t_warm: float | None = None
        self.step_warm = 0
        self.samples = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self.warmup and self.t_warm is None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t_warm, self.step_warm, self.samples = time.perf_counter(), step, 0
        elif self.t_warm is not None:
            target = batch.get("target") if isinstance(batch, dict) else None
            self.samples += int(target.shape[0]) if target is not None else 0

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0 or self.t_warm is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = max(time.perf_counter() - self.t_warm, 1e-9)
        steps = trainer.global_step - self.step_warm
        rec = {"steps": steps, "seconds": round(dt, 3), "steps_per_s": steps / dt, "samples_per_s": self.samples / dt}
        with atomic_write(self.path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(rec, indent=1))
