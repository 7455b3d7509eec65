"""Lightning callbacks of the zoo."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.loggers import CSVLogger

from zoo.utils.files import atomic_write

__all__ = ["ExportWeights", "RunCSVLogger", "ThroughputLog"]


class RunCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` whose ``save_dir`` defaults to the trainer's ``default_root_dir``.

    With ``save_dir=None`` the folder is resolved when fit/validate starts (by ``ExportWeights.setup``,
    the first hook that sees the trainer; without that callback, by the first write, from the working
    directory), so a recipe names its run folder once, in ``trainer.default_root_dir``, and the logs
    land in ``<default_root_dir>/<name>/version_N`` as with an explicit ``save_dir``.
    """

    def __init__(self, save_dir: str | None = None, name: str = "logs", version: int | str | None = None,
                 prefix: str = "", flush_logs_every_n_steps: int = 100) -> None:
        super().__init__(save_dir if save_dir is not None else os.curdir, name=name, version=version, prefix=prefix,
                         flush_logs_every_n_steps=flush_logs_every_n_steps)
        self._follows_root, self._given_version = save_dir is None, version

    def follow(self, root_dir: str | os.PathLike) -> None:
        """Point an unresolved logger (``save_dir=None``) at ``root_dir``; an explicit ``save_dir`` stays."""
        if not self._follows_root:
            return
        self._follows_root = False
        self._save_dir = self._root_dir = os.fspath(root_dir)
        self._fs = get_filesystem(self._root_dir)
        self._experiment = None
        self._version = self._given_version  # a version counted in the provisional folder (the profiler asks early)

    def _resolved(self) -> "RunCSVLogger":
        if self._follows_root:  # nothing pointed it at a run folder (no ExportWeights): the working directory
            self.follow(os.getcwd())
        return self

    @property
    def experiment(self):  # type: ignore[override]
        # Lightning creates the experiment before any callback hook runs (``_call_setup_hook``); an unresolved logger
        # answers None then, instead of creating ./<name>/version_0, and is resolved by ExportWeights.setup.
        return None if self._follows_root else super().experiment

    def log_hyperparams(self, params=None) -> None:
        CSVLogger.log_hyperparams(self._resolved(), params)

    def log_metrics(self, metrics, step=None) -> None:
        CSVLogger.log_metrics(self._resolved(), metrics, step)

    def save(self) -> None:
        CSVLogger.save(self._resolved())


class ExportWeights(L.Callback):
    """Write the network's weights (``model.safetensors``) + ``config.json`` + a learning curve.

    Written after every validation and at the end of fit, atomically, into ``dirpath``; this is
    the folder a later phase (``phase1_weights``) or ``zoo export`` reads. ``dirpath=None`` (the
    recipes' default) means ``<trainer.default_root_dir>/export``, resolved in ``setup``, where the
    trainer is known; a ``RunCSVLogger`` with ``save_dir=None`` is pointed at the same run folder
    there. ``learning_curve.json`` records (step, epoch, wall seconds, train loss, val metrics).
    """

    def __init__(self, dirpath: str | None = None, overwrite: bool = True) -> None:
        super().__init__()
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.overwrite = overwrite
        self.curve: list[dict] = []
        self.t0 = time.time()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir) / "export"
        for logger in trainer.loggers:
            if isinstance(logger, RunCSVLogger):
                logger.follow(trainer.default_root_dir)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.t0 = time.time()
        if self.dirpath is None:  # setup not called (a hand-driven loop): resolve here
            self.dirpath = Path(trainer.default_root_dir) / "export"
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
    (``experiments/gpu_session.sh``), not as a benchmark: shared machines are noisy.

    Example:
        ``zoo fit --config recipes/_base/trainer.yaml --config recipes/ssopga/flash/train.yaml --trainer.max_steps=60
        --trainer.callbacks=zoo.training.ThroughputLog --trainer.callbacks.path=rate.json`` (the form
        ``experiments/gpu_session.sh`` uses)
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
