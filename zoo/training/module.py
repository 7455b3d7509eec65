"""The Lightning base module every architecture subclasses (thin: loss, metrics, optimiser).

Batch contract (a dict):

* ``"target"``: the clean image ``x`` (N, C, H, W) — present for training/validation/test;
* ``"inputs"`` (optional): the keyword inputs of the network (measurement, guide, physics
  parameters). When absent they are simulated from the target with ``net.measure(target)``,
  so synthetic-measurement tasks (CS, CASSI simulation) need only clean images.

The network is built from the registry (``model`` name + ``model_config`` overrides), so a
recipe names a zoo model and the saved hyper-parameters rebuild it exactly.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.api import load
from zoo.data.model_files import resolve_model_files
from zoo.metrics import ergas, psnr, sam, ssim
from zoo.models.base import Restorer
from zoo.registry import create

__all__ = ["RestorationModule", "spectral_angle_loss", "spectral_gradient_loss", "relative_spectral_loss",
           "parse_loss"]


class RestorationModule(L.LightningModule):
    """Base Lightning module of the zoo.

    Args:
        model: registry name (``zoo list``).
        model_config: overrides of the registry's default config.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        min_lr: end of the cosine schedule.
        warmup_steps: linear warm-up steps.
        loss: ``"l1"``, ``"mse"``, ``"rmse"``, ``"charbonnier"`` or ``"psnr"`` (the mean over images of
            ``10·log10 MSE_i``: the benchmark's per-image mean PSNR, negated), optionally followed by spectral terms
            joined with ``+`` (multi-/hyper-spectral data, bands on dim 1): ``"rmse+sam"``, ``"rmse+sgrad"``,
            ``"rmse+rel"``, ``"rmse+sam+sgrad"`` … — see :func:`parse_loss`.
        spectral_weights: λ of each spectral term (default :data:`SPECTRAL_WEIGHTS`), e.g. ``{sam: 0.2}``.
        supervise_last: deep supervision on the last n stage outputs (1 = final output only).
        supervise_weights: weights of those outputs, last first (default all 1).
        spectral: also log SAM/ERGAS (multi-/hyper-spectral data).
        init_weights: a ``.safetensors`` / Lightning ``.ckpt`` / zoo checkpoint name to start from.
        physics_lr_scale: learning-rate factor of learnable physics (Φ, Qinit), whose entries are
            small (≈1/√n) and would be wrecked by the denoiser's rate.
        schedule_steps: length of the cosine schedule (default: the trainer's total steps); set it
            with ``trainer.max_steps`` to stop a run part-way along a longer schedule.
    """

    def __init__(
        self,
        model: str,
        model_config: dict[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
        loss: str = "l1",
        supervise_last: int = 1,
        supervise_weights: Sequence[float] | None = None,
        spectral: bool = False,
        init_weights: str | None = None,
        physics_lr_scale: float = 0.1,
        schedule_steps: int | None = None,
        spectral_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self._base_loss, self._spectral = parse_loss(loss, spectral_weights)
        # data files a config names (ISTA Φ, a CASSI mask) are read here, never by the builders
        self.net: Restorer = create(model, **resolve_model_files(model, model_config))
        if init_weights:
            self.load_init_weights(init_weights)
        self.test_names: list[str] = []

    # -- hooks for subclasses -----------------------------------------------------------------
    def load_init_weights(self, ref: str) -> None:
        """Load network weights (strict) from a file or a pretrained zoo name."""
        self.net.load_state_dict(read_state_dict(ref), strict=True)

    def lr_scale(self, name: str) -> float:
        """Learning-rate factor of parameter ``name`` (a ``named_parameters`` key of this module)."""
        return self.hparams.physics_lr_scale if name.startswith("net.physics.") else 1.0

    def export_config(self) -> dict[str, Any]:
        """The registry config that rebuilds ``self.net`` for a zoo checkpoint (no data files)."""
        return self.net.export_config(dict(self.hparams.model_config or {}))

    # -- forward ---------------------------------------------------------------------------------
    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        if "inputs" in batch:
            return batch["inputs"]
        return self.net.measure(batch["target"])

    def forward(self, **inputs: Any) -> torch.Tensor:
        return self.net(**inputs)

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kind = self._base_loss
        pred, target = pred.float(), target.float()
        if kind == "l1":
            out = F.l1_loss(pred, target)
        elif kind == "mse":
            out = F.mse_loss(pred, target)
        elif kind == "rmse":
            out = torch.sqrt(F.mse_loss(pred, target) + 1e-12)
        elif kind == "psnr":  # a 1e-8 floor keeps a perfect image finite (100 dB) without changing any real score
            out = 10 * torch.log10((pred - target).pow(2).flatten(1).mean(1) + 1e-8).mean()
        else:
            out = torch.sqrt((pred - target) ** 2 + 1e-6).mean()
        for name, w in self._spectral.items():
            out = out + w * SPECTRAL_TERMS[name](pred, target)
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        target = batch["target"]
        n = int(self.hparams.supervise_last)
        if n > 1:
            outs = self.net(**self.inputs(batch), return_all=True)[-n:][::-1]
            w = list(self.hparams.supervise_weights or [1.0] * n)
            loss = sum(wi * self._loss(o, target) for wi, o in zip(w, outs)) / sum(w[: len(outs)])
        else:
            loss = self._loss(self(**self.inputs(batch)), target)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at step {self.global_step}: lower lr or use fp32")
        self.log("train/loss", loss, prog_bar=True, batch_size=target.shape[0])
        for k, v in self.net.diagnostics().items():
            self.log(f"train/{k}", v, batch_size=target.shape[0])
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        target = batch["target"]
        pred = self(**self.inputs(batch)).float()
        m = {"psnr": psnr(pred, target), "ssim": ssim(pred, target)}
        if self.hparams.spectral:
            m["sam"], m["ergas"] = sam(pred, target), ergas(pred, target)
        prefix = stage
        if stage == "test" and self.test_names:
            prefix = f"test/{self.test_names[dataloader_idx]}"
        for k, v in m.items():
            self.log(f"{prefix}/{k}", v.mean(), batch_size=target.shape[0], add_dataloader_idx=False,
                     prog_bar=(k == "psnr"), sync_dist=True)
        return m

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val", dataloader_idx)
        for k, v in self.net.diagnostics().items():  # e.g. the smallest iterate: its worst case
            self.log(f"val/{k}", v, batch_size=1, reduce_fx="min")

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "test", dataloader_idx)

    def on_test_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        self.test_names = list(getattr(dm, "test_names", []) or [])

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self(**self.inputs(batch)).float().clamp(0, 1)

    # -- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self):
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("no trainable parameters (everything is frozen)")
        lr = self.hparams.lr
        groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
        for n, p in named:
            physics = n.startswith("net.physics.")
            groups.setdefault((float(self.lr_scale(n)), physics), []).append(p)
        # no weight decay on the physics: its entries are tiny and a pull to 0 is not a prior
        param_groups = [{"params": ps, "lr": lr * scale, **({"weight_decay": 0.0} if physics else {})}
                        for (scale, physics), ps in groups.items()]
        opt = torch.optim.AdamW(param_groups, lr=lr, weight_decay=self.hparams.weight_decay)
        total = int(self.hparams.schedule_steps or 0) or max(1, int(self.trainer.estimated_stepping_batches))
        warm, floor = int(self.hparams.warmup_steps), self.hparams.min_lr / self.hparams.lr

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


# -- spectral loss terms (bands on dim 1): 0 for identical cubes, finite gradients at zero pixels --
def spectral_angle_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean spectral angle (radians) over the pixels whose reference spectrum is non-zero.

    ``θ = 2·asin(‖p̂ − t̂‖/2)`` with ``v̂ = v / √(‖v‖² + ε²)``: the angle between the unit vectors (equal
    to ``acos⟨p̂, t̂⟩`` for non-zero spectra, as :func:`zoo.metrics.sam`, in radians), but without acos'
    infinite slope at θ = 0, so identical cubes give ≈0 loss (1e-6) and a finite gradient. Every
    non-zero pixel weighs the same whatever its brightness: dark pixels, where √MSE hardly looks, set
    the spectral shape here. A zero estimate scores 60° (the metric says 90°), still with a finite
    gradient. The estimate is not clipped (a clip would cut its gradient).
    """
    def unit(v: torch.Tensor) -> torch.Tensor:
        return v / torch.sqrt((v * v).sum(1, keepdim=True) + eps * eps)

    chord = torch.sqrt(((unit(pred) - unit(target)) ** 2).sum(1) + 1e-12)
    ang = 2 * torch.asin((chord / 2).clamp(max=1 - 1e-6))
    valid = (target.norm(dim=1) > eps).to(ang.dtype)
    return (ang * valid).sum() / valid.sum().clamp_min(1.0)


def spectral_gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """√MSE of the band differences ``x_{c+1} − x_c``: the slope of each spectrum, not its level."""
    dp, dt = pred.diff(dim=1), target.diff(dim=1)
    return torch.sqrt(F.mse_loss(dp, dt) + 1e-12)


def relative_spectral_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    """Mean over pixels of ``‖p − t‖ / (‖t‖ + ε√C)``: the error relative to the local spectral norm.

    ``ε`` (per band, in data units) keeps noise-level pixels from dominating; above it a dark pixel's
    error counts as much as a bright one's.
    """
    err = torch.sqrt(((pred - target) ** 2).sum(1) + 1e-12)
    ref = torch.sqrt((target * target).sum(1) + 1e-12) + eps * math.sqrt(target.shape[1])
    return (err / ref).mean()


SPECTRAL_TERMS = {"sam": spectral_angle_loss, "sgrad": spectral_gradient_loss, "rel": relative_spectral_loss}
# λ per term: each about the size of the √MSE term (≈0.05–0.08) at the start of a CASSI fine-tune
SPECTRAL_WEIGHTS = {"sam": 0.1, "sgrad": 1.0, "rel": 0.1}
_BASE_LOSSES = ("l1", "mse", "rmse", "charbonnier", "psnr")


def parse_loss(loss: str, weights: dict[str, float] | None = None) -> tuple[str, dict[str, float]]:
    """``"rmse+sam"`` → ``("rmse", {"sam": λ})``: the base loss and the spectral terms with their weights."""
    base, *terms = [t.strip() for t in str(loss).split("+")]
    if base not in _BASE_LOSSES:
        raise ValueError(f"loss must start with one of {', '.join(_BASE_LOSSES)} (then +sam, +sgrad, +rel), "
                         f"got {loss!r}")
    bad = [t for t in terms if t not in SPECTRAL_TERMS]
    if bad or len(set(terms)) != len(terms):
        raise ValueError(f"loss {loss!r}: spectral terms are {', '.join(SPECTRAL_TERMS)}, each at most once; "
                         f"got {terms}")
    weights = dict(weights or {})
    unused = set(weights) - set(terms)
    if unused:
        raise ValueError(f"spectral_weights names {sorted(unused)}, which loss {loss!r} does not use; add them to loss "
                         f"(e.g. {base}+{'+'.join(sorted(unused))})")
    out = {t: float(weights.get(t, SPECTRAL_WEIGHTS[t])) for t in terms}
    if any(not (math.isfinite(w) and w >= 0) for w in out.values()):
        raise ValueError(f"spectral_weights must be finite and >= 0, got {out}")
    return base, out


def read_state_dict(ref: str) -> dict[str, torch.Tensor]:
    """State dict of a network from a ``.safetensors`` file, a Lightning ``.ckpt`` or a zoo name."""
    from pathlib import Path

    p = Path(ref)
    if p.suffix == ".safetensors" and p.is_file():
        from safetensors.torch import load_file

        return load_file(str(p))
    if p.suffix == ".ckpt" and p.is_file():
        # our own Lightning checkpoints: weights_only keeps pickle code execution out
        ck = torch.load(str(p), map_location="cpu", weights_only=True)
        return {k[len("net."):]: v for k, v in ck["state_dict"].items() if k.startswith("net.")}
    if p.exists():
        raise ValueError(f"cannot read weights from {p}: expected .safetensors or a Lightning .ckpt")
    return load(ref).state_dict()
