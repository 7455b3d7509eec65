"""Lightning callbacks of the zoo."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn

from zoo.models.base import Restorer
from zoo.nn.lora import lora_state_dict, save_adapters
from zoo.utils.files import atomic_write

__all__ = ["EMA", "ExportWeights", "RunCheckpoint", "RunCSVLogger", "ThroughputLog"]


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

    A run never replaces another run's export unless asked, because later phases and ``zoo export`` read it:

    * a fresh fit refuses, at fit start, a folder that holds a real run's weights (``overwrite: true`` replaces them);
    * a resumed fit (``ckpt_path`` given) continues into it: the curve and the wall seconds are part of the
      checkpoint (``state_dict``), so the curve keeps the history before the kill and ``wall_s`` goes on;
    * ``fast_dev_run`` writes a smoke-test export, marked by a ``FAST_DEV_RUN`` file, into ``dirpath`` only when that
      holds no real run's weights (smoke tests of chained recipes read it there), else into
      ``<dirpath>-fast-dev-run``; a real run replaces a smoke-test export without asking;
    * only ``fit`` writes: ``validate`` leaves the export alone.

    ``monitor`` (e.g. ``"val/psnr"``, as ``zoo finetune`` and ``recipes/_base/trainer.yaml`` set it): the weights
    are written only when that validation metric improves on the best so far (``mode`` ``"max"`` or ``"min"``),
    so the export is the best-on-validation network; the learning curve is written at every validation either
    way, its rows marked ``"exported"``. Without a monitor every validation replaces the export.
    A fit whose validation never logs the metric exports its last weights, with a warning.

    With a weight-averaging callback in the trainer (:class:`EMA`), validation scores the averaged weights, and
    those are what is exported (and what the learning curve's metrics describe).

    ``adapters=True`` (``zoo finetune`` of a LoRun model): only the LoRA factors and the per-stage
    scalars (step sizes, strengths: role ``"stage"``) train — the base prior and the physics (a learned
    Φ is the sensor the user's data were measured with) are frozen at fit start — and they are also
    written alone to ``adapters.safetensors`` (:func:`zoo.nn.lora.save_adapters`), whose metadata names
    the model, the base checkpoint ``base`` and its sha256 ``base_sha256``; every frozen tensor is checked
    unchanged before the file is written. Load it with ``zoo.load(name, adapters=path)``.
    """

    SMOKE = "FAST_DEV_RUN"  # marks a fast_dev_run export: disposable, a real run replaces it
    require_resume = False  # set by `zoo fit --ckpt_path last`: a run that finds no checkpoint must not start fresh

    def __init__(self, dirpath: str | None = None, overwrite: bool = False, adapters: bool = False,
                 base: str | None = None, base_sha256: str | None = None, monitor: str | None = None,
                 mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"ExportWeights(mode={mode!r}): use 'max' (PSNR, SSIM) or 'min' (a loss, SAM)")
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None  # best monitored value exported so far
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.overwrite = overwrite
        if adapters and not (base and base_sha256):
            raise ValueError("ExportWeights(adapters=True) needs base (the checkpoint name) and base_sha256 "
                             "(its model.safetensors): the adapter file names the weights it was trained on")
        self.adapters, self.base, self.base_sha256 = bool(adapters), base, base_sha256
        self._frozen: dict[str, torch.Tensor] = {}  # adapters mode: the tensors that must not move
        self.curve: list[dict] = []
        self.t0 = time.time()
        self.wall_before = 0.0  # wall seconds of the run before a resume (from the checkpoint)
        self._out: Path | None = None  # the folder this fit writes: dirpath, or its -fast-dev-run sibling
        self._restored = False

    def state_dict(self) -> dict:
        return {"curve": list(self.curve), "wall_s": self._wall(), "best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.curve = list(state_dict.get("curve", []))
        self.wall_before = float(state_dict.get("wall_s", 0.0))
        self.best = state_dict.get("best")
        self._restored = True

    def _wall(self) -> float:
        return self.wall_before + time.time() - self.t0

    @classmethod
    def holds_run(cls, folder: Path) -> bool:
        """Whether ``folder`` holds the weights of a real (not ``fast_dev_run``) run."""
        return (folder / "model.safetensors").exists() and not (folder / cls.SMOKE).exists()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir) / "export"
        for logger in trainer.loggers:
            if isinstance(logger, RunCSVLogger):
                logger.follow(trainer.default_root_dir)
        if self.adapters and stage == "fit":  # before configure_optimizers: the optimiser sees the adapters only
            net = pl_module.net
            keys = set(lora_state_dict(net))
            if not keys:
                raise ValueError(f"adapters-only fine-tuning needs LoRA layers (a LoRun model); "
                                 f"{pl_module.hparams.model} has none: fine-tune all its weights instead")
            keys |= set(_stage_keys(net))
            for n, p in net.named_parameters():
                p.requires_grad_(n in keys)
            self._frozen = {k: v.detach().clone() for k, v in net.state_dict().items() if k not in keys}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # runs after Lightning restored the checkpoint (load_state_dict), before the first step
        self.t0 = time.time()
        if self.dirpath is None:  # setup not called (a hand-driven loop): resolve here
            self.dirpath = Path(trainer.default_root_dir) / "export"
        resumed, self._restored = trainer.ckpt_path is not None or self._restored, False
        if self.require_resume and not resumed:
            raise FileNotFoundError(f"--ckpt_path last: {_no_checkpoint(trainer)}, so nothing to resume; drop "
                                    "--ckpt_path to start a fresh run, or point --trainer.default_root_dir at the killed run")
        if trainer.fast_dev_run:
            self._out = self.dirpath
            if self.holds_run(self.dirpath):
                self._out = self.dirpath.with_name(f"{self.dirpath.name}-fast-dev-run")
                rank_zero_warn(f"fast_dev_run: {self.dirpath} holds a run's weights; the smoke test exports to {self._out}")
            return
        self._out = self.dirpath
        if resumed:
            return
        self.curve, self.wall_before, self.best = [], 0.0, None
        last = _last_checkpoint(trainer)
        if (self.holds_run(self.dirpath) or last is not None) and not self.overwrite:
            held = f"{self.dirpath} holds the weights of an earlier run" if self.holds_run(self.dirpath) else (
                f"{self.dirpath.parent} holds an earlier run's checkpoint {last}")
            raise FileExistsError(
                f"{held}, which this fresh run would replace (and its learning curve). Resume that run with "
                f"`--ckpt_path last` ({f'from {last}' if last else _no_checkpoint(trainer)}), give this run its own "
                f"folder (`--trainer.default_root_dir=runs/<new name>`), or replace the run on purpose with "
                f"`overwrite: true` on ExportWeights.")

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, final: bool = False) -> None:
        if (trainer.global_rank != 0 or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING
                or self._out is None):
            return
        from safetensors.torch import save_file

        out, smoke = self._out, self._out / self.SMOKE
        if trainer.fast_dev_run and not smoke.exists():  # marked before the weights land: never taken for a real run
            with atomic_write(smoke, overwrite=True) as tmp:
                tmp.write_text("Written by a fast_dev_run smoke test: not trained weights; a real run replaces them.\n")
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        export = self._improves(m, final)
        self.curve.append({"step": trainer.global_step, "epoch": trainer.current_epoch,
                           "wall_s": round(self._wall(), 1), **m, **({"exported": export} if self.monitor else {})})
        if not export:
            with atomic_write(out / "learning_curve.json", overwrite=True) as tmp:
                tmp.write_text(json.dumps(self.curve, indent=1))
            return
        src = _validated(trainer, pl_module)
        sd = {k: v.detach().float().contiguous().cpu() for k, v in src.net.state_dict().items()}
        with atomic_write(out / "model.safetensors", overwrite=True) as tmp:
            save_file(sd, str(tmp))
        cfg = {"model": pl_module.hparams.model, "config": pl_module.export_config()}
        for name, obj in (("config.json", cfg), ("learning_curve.json", self.curve)):
            with atomic_write(out / name, overwrite=True) as tmp:
                tmp.write_text(json.dumps(obj, indent=1))
        if self.adapters:
            self._write_adapters(src, out)
        if not trainer.fast_dev_run:
            smoke.unlink(missing_ok=True)  # a real run's export from now on

    def _improves(self, metrics: dict[str, float], final: bool) -> bool:
        """Whether this write exports the weights (always without a monitor; else only on a new best)."""
        if self.monitor is None:
            return True
        v = metrics.get(self.monitor)
        if v is None or v != v:  # not logged (no validation loop) or NaN
            if final and self.best is None:
                rank_zero_warn(f"ExportWeights(monitor={self.monitor!r}): the metric was never logged; "
                               "exporting the last weights")
                return True
            return False
        if self.best is not None and not (v > self.best if self.mode == "max" else v < self.best):
            return False
        self.best = v
        return True

    def _write_adapters(self, pl_module: L.LightningModule, out: Path) -> None:
        net = pl_module.net
        sd = net.state_dict()
        moved = [k for k, v in self._frozen.items() if not torch.equal(sd[k].detach().cpu(), v.cpu())]
        if moved:  # e.g. a buffer updated in training: the adapters alone would not reproduce this network
            raise RuntimeError(f"adapters-only fine-tune: frozen tensors changed ({', '.join(moved[:3])}); "
                               f"{out / 'model.safetensors'} holds the whole network, no adapter file was written")
        save_adapters(net, out / "adapters.safetensors", overwrite=True, extra=_stage_keys(net),
                      metadata={"model": pl_module.hparams.model, "base": self.base,
                                "base_sha256": self.base_sha256})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, final=True)


def _validated(trainer: L.Trainer, pl_module: L.LightningModule) -> L.LightningModule:
    """The module whose weights the last validation scored: a weight-averaging callback's average (swapped in for
    validation and back out before ``on_validation_end``), else ``pl_module``."""
    for cb in trainer.callbacks:
        avg = getattr(cb, "_average_model", None) if isinstance(cb, WeightAveraging) else None
        if avg is not None:
            return avg.module
    return pl_module


class EMA(EMAWeightAveraging):
    """An exponential moving average of the weights, ``θ̄ ← d·θ̄ + (1 − d)·θ`` after every optimiser step, that
    validation scores and :class:`ExportWeights` exports (Lightning's ``EMAWeightAveraging``; buffers are averaged
    too, which leaves constant ones such as a CASSI mask unchanged).

    ``decay`` 0.997 averages over about ``1 / (1 − d)`` ≈ 330 steps: the horizon of our continuation stages, whose
    validation PSNR moves by ±0.5 dB from one 100-step check to the next at a constant rate. The average starts
    from the initial weights, so use it for fine-tuning from a trained export, or start it later
    (``update_starting_at_step``).
    """

    def __init__(self, decay: float = 0.997, update_starting_at_step: int | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA(decay={decay}): the decay must lie in (0, 1), e.g. 0.997 (≈ 330-step average)")
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)
        self.decay = float(decay)


def _stage_keys(net: Restorer) -> list[str]:
    """The per-stage scalars (role ``"stage"``) an adapter set carries besides the LoRA factors."""
    return sorted(n for n, r in net.parameter_roles().items() if r == "stage")


def _checkpoint_dirs(trainer: L.Trainer) -> list[Path]:
    return [Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath]


def _last_checkpoint(trainer: L.Trainer) -> Path | None:
    """The checkpoint ``--ckpt_path last`` would resume from (the newest ``last*.ckpt``), if any."""
    found = [p for d in _checkpoint_dirs(trainer) for p in d.glob("last*.ckpt")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _no_checkpoint(trainer: L.Trainer) -> str:
    dirs = _checkpoint_dirs(trainer)
    if not dirs:
        return "no checkpoint: this run saves none; the recipes' RunCheckpoint does"
    return f"no checkpoint to resume from in {', '.join(map(str, dirs))}"


class RunCheckpoint(ModelCheckpoint):
    """``last.ckpt`` in ``<trainer.default_root_dir>/checkpoints``, for ``zoo fit ... --ckpt_path last``.

    Saved every ``every_n_train_steps`` optimiser steps and after every validation (right after ``ExportWeights``
    wrote the export, so both hold the same weights). Lightning's default folder is the logger's
    ``version_N/checkpoints``, a new one each run, where ``ckpt_path="last"`` never finds the killed run's
    checkpoint; the run folder stays. Only ``last.ckpt`` is kept (``save_top_k=0``): it is for resuming (weights,
    optimiser, schedule, loop and callback states), the export is what later stages and ``zoo export`` read.
    ``dirpath=None`` is resolved from the trainer before Lightning looks for the last checkpoint.
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int = 100) -> None:
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, every_n_train_steps=every_n_train_steps)

    def _in_run_dir(self, trainer: L.Trainer) -> None:
        if self.dirpath is None:
            self.dirpath = os.path.realpath(os.path.join(trainer.default_root_dir, "checkpoints"))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._in_run_dir(trainer)
        super().setup(trainer, pl_module, stage)

    def _find_last_checkpoints(self, trainer: L.Trainer) -> set[str]:
        self._in_run_dir(trainer)  # ckpt_path="last" is resolved before any setup hook
        return super()._find_last_checkpoints(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning saves last.ckpt at a validation only with a top-k save (none here), and runs checkpoint callbacks
        # after the others: saved here (again, if a step save came first), the checkpoint holds this validation's
        # curve entry and the weights ExportWeights just wrote.
        super().on_validation_end(trainer, pl_module)
        if not (trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run:  # Lightning saves last.ckpt here even in a smoke test: a real run's would go
            super().on_train_end(trainer, pl_module)


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
