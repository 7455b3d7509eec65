"""LoRun for non-blind super-resolution with blur kernels (arXiv 2602.18697, the USRNet protocol).

Degradation ``y = (x ⊛ k)↓s + n`` with kernel ``k``, scale ``s`` and noise level ``σ`` given
(:mod:`zoo.physics.sr`). USRNet's unfolding (Zhang et al., CVPR 2020) with LoRun's prior::

    (α_k, β_k)_{k=1..K} = H(σ, s)                                   (hyper-network, softplus outputs)
    x_0 = bicubic↑s(y)                                               (MATLAB imresize)
    z_k = argmin_x ‖(x ⊛ k)↓s − y‖² + α_k ‖x − x_{k−1}‖²           (closed-form FFT data step)
    x_k = z_k + t_k · (D_{θ0 + Δθ_k}(z_k, β_k) − z_k)              (shared ResUNet + stage LoRA)

``D`` is a compact residual U-Net taking the image and a constant map of ``β_k`` (USRNet's noise
level map); ``t_k`` a per-stage strength as in :class:`~zoo.models.lorun.LoRun` ([ours]: phase 2
starts with ``t_1 = 1`` and ``t_k = 0`` for later stages, so the unrolled network starts as good as
the phase-1 block). ``mode="block"`` is the Block-K twin (K unshared denoisers), ``mode="single"``
the one-stage phase-1 block. One network serves every scale in ``scales`` (``s`` is an input of the
data step and of ``H``): the registry names ``lorun-sr-x2/x3/x4`` are that one network with a
different default scale.

Borders ([ours]): the data step assumes a circular image; the LR input is reflect-padded by
``pad`` pixels (+ the kernel's reach) before the stages and the result cropped, so real
(non-periodic) LR images get no wrap-around ringing at their borders.

Example:
    >>> import torch, zoo
    >>> net = zoo.create("lorun-sr-x4", stages=2, widths=(8, 16))
    >>> inputs = net.measure(torch.rand(1, 3, 32, 32))
    >>> inputs["lr"].shape, net(**inputs).shape
    (torch.Size([1, 3, 8, 8]), torch.Size([1, 3, 32, 32]))
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.models.base import Restorer
from zoo.nn.lora import freeze_base, inject_lora, is_adapter_key, load_base, set_stage, stage_layers, stage_selector
from zoo.nn.unet import ResUNet
from zoo.physics.base import check_finite, tracing
from zoo.physics.sr import BlurDownsample, bicubic_kernel, check_kernel, imresize
from zoo.registry import ModelEntry, register_model

__all__ = ["LoRunSR", "HyperNet", "lorun_sr"]

PAPER = "Deep LoRA-Unfolding Networks (LoRun), arXiv 2602.18697, IEEE TIP 2026; USRNet (Zhang et al., CVPR 2020)"


def _inv_softplus(v: float) -> float:
    return math.log(math.expm1(v))


class HyperNet(nn.Module):
    """``(σ, s) → (α_1..α_K, β_1..β_K)``: a 2-layer MLP with softplus outputs (USRNet's HyPaNet).

    Inputs are normalised as ``(σ·255/10, s/4)``; the output biases start at ``α = alpha_init``,
    ``β = beta_init`` with small weights, so every stage starts with the same settings.
    """

    def __init__(self, stages: int, hidden: int = 64, alpha_init: float = 0.02, beta_init: float = 0.1) -> None:
        super().__init__()
        self.stages = int(stages)
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * stages))
        last = self.mlp[-1]
        nn.init.normal_(last.weight, std=1e-3)
        with torch.no_grad():
            last.bias[:stages] = _inv_softplus(alpha_init)
            last.bias[stages:] = _inv_softplus(beta_init)

    def forward(self, sigma: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.full_like(sigma, float(scale))
        h = F.softplus(self.mlp(torch.stack([sigma * (255 / 10), s / 4], -1)))
        return h[:, : self.stages] + 1e-6, h[:, self.stages :]


class LoRunSR(Restorer):
    """K-stage USRNet-style unfolding with a LoRun prior (see the module docstring).

    Args:
        denoiser: the base ``ResUNet`` with one conditioning map (``cond_channels=1``).
        scale: default scale ``s`` (when ``forward`` is not given one).
        scales: the scales the network was trained for (others are refused).
        stages, mode, gamma: as :class:`~zoo.models.lorun.LoRun`.
        pad: LR pixels of reflect padding around the input, beyond the kernel's reach (border handling). An
            inference setting, not a weight: the recipes train with ``pad=2`` (cheap on small crops), checkpoints
            restore with the default 8, which keeps the circular wrap-around away from the image borders (same
            Set5 PSNR, and tiles then equal the whole image: results/sr/tiling).
    """

    # the closed-form data step works in complex spectra (conj, |·|², complex division, block means), for
    # which the ONNX exporter has no decompositions; TorchScript tracing records them
    onnx_blocker = ("the closed-form FFT data step (zoo.physics.sr.BlurDownsample.data_step) uses complex-valued "
                    "arithmetic that the ONNX exporter cannot convert (aten.repeat on complex input first)")

    def __init__(self, denoiser: ResUNet, scale: int = 4, scales: Sequence[int] = (2, 3, 4), stages: int = 9,
                 mode: str = "lora", gamma: float = 10.0, pad: int = 8) -> None:
        super().__init__()
        if mode not in ("lora", "block", "single"):
            raise ValueError(f"mode must be 'lora', 'block' or 'single', got {mode!r}")
        if mode == "single" and stages != 1:
            raise ValueError("mode='single' is the one-stage phase-1 block: use stages=1")
        self.scales = tuple(int(s) for s in scales)
        if int(scale) not in self.scales:
            raise ValueError(f"default scale {scale} is not among scales {self.scales}")
        self.physics = BlurDownsample(int(scale))
        self.mode, self.stages, self.pad = mode, int(stages), int(pad)
        self.channels = int(denoiser.channels)
        if mode == "block":
            self.denoisers = nn.ModuleList([copy.deepcopy(denoiser) for _ in range(stages)])
        else:
            self.denoiser = inject_lora(denoiser, stages, gamma) if mode == "lora" else denoiser
        self.hyper = HyperNet(stages)
        self.strength = nn.Parameter(torch.ones(stages), requires_grad=(mode != "single"))

    # -- the zoo model contract -----------------------------------------------------------------------
    def check_scale(self, scale: int | torch.Tensor | None) -> int:
        """``scale`` (default: the model's) if the network was trained for it, else a clear error."""
        s = self.physics.scale if scale is None else int(scale)
        if s not in self.scales:
            raise ValueError(f"scale {s} is not supported by this checkpoint (trained for ×{'/×'.join(map(str, self.scales))}): "
                             "pick one of those, or fine-tune at the new scale")
        return s

    def measure(self, x: torch.Tensor, kernel: torch.Tensor | None = None, sigma: float | torch.Tensor = 0.0,
                scale: int | None = None) -> dict[str, Any]:
        """The LR image of the HR ``x`` (cropped to a multiple of ``s``): MATLAB bicubic ``imresize`` when
        ``kernel`` is None (the benchmark LR), else ``(x ⊛ k)↓s`` (circular, as USRNet); ``+ σ·n``."""
        s = self.check_scale(scale)
        check_finite(x, "high-resolution image")
        h, w = x.shape[-2] // s * s, x.shape[-1] // s * s
        x = x[..., :h, :w]
        if kernel is None:
            y = imresize(x.float(), 1 / s)
            k = bicubic_kernel(s).to(x.device)[None, None]
        else:
            k = check_kernel(kernel, (h, w)).to(x.device, torch.float32)
            y = self.physics.A(x, k, s)
        sig = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0]).clone()
        if (sig > 0).any():
            y = y + sig.view(-1, 1, 1, 1) * torch.randn_like(y)
        return {"lr": y, "kernel": k, "sigma": sig, "scale": s}

    def example_inputs(self, size: int) -> dict[str, Any]:
        """Inputs whose restoration is ``size × size`` (the HR size) at the default scale."""
        return self.measure(torch.rand(1, self.channels, size, size))

    def prior(self, k: int) -> nn.Module:
        if self.mode == "block":
            return self.denoisers[k]
        set_stage(self.denoiser, k if self.mode == "lora" else None, stage_layers(self, self.denoiser))
        return self.denoiser

    def priors(self) -> Callable[[int], nn.Module]:
        """``k ↦`` stage ``k``'s prior, resolved once per forward (see :meth:`zoo.models.LoRun.priors`)."""
        return stage_selector(self, self.denoiser) if self.mode == "lora" else self.prior

    def _inputs(self, lr: torch.Tensor, kernel: torch.Tensor | None, sigma: Any, scale: Any
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        if not torch.is_tensor(lr) or lr.ndim != 4:
            raise ValueError(f"lr must be a (N, C, h, w) tensor, got {getattr(lr, 'shape', type(lr).__name__)}")
        if lr.shape[1] != self.channels:
            hint = " (convert a grey image to RGB: x.expand(-1, 3, -1, -1))" if lr.shape[1] == 1 else ""
            raise ValueError(f"this model restores {self.channels}-channel images, got {lr.shape[1]} channels{hint}")
        if min(lr.shape[-2:]) < 1:
            raise ValueError(f"lr is empty: {tuple(lr.shape)}")
        check_finite(lr, "low-resolution image")
        s = self.check_scale(scale.reshape(-1)[0] if torch.is_tensor(scale) else scale)
        k = check_kernel(bicubic_kernel(s) if kernel is None else kernel)
        if k.shape[0] not in (1, lr.shape[0]):
            raise ValueError(f"{k.shape[0]} kernels for {lr.shape[0]} images: give one kernel or one per image")
        sig = torch.as_tensor(0.0 if sigma is None else sigma, device=lr.device).to(lr.dtype).reshape(-1)
        if sig.numel() not in (1, lr.shape[0]) or (not tracing() and (not torch.isfinite(sig).all() or (sig < 0).any())):
            raise ValueError(f"sigma must be one noise level >= 0 (on the [0, 1] scale) or one per image, got {sig.tolist()}")
        return k.to(lr.device, lr.dtype), sig.expand(lr.shape[0]), lr, s

    def forward(self, lr: torch.Tensor, kernel: torch.Tensor | None = None, sigma: Any = 0.0, scale: Any = None,
                return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Super-resolve ``lr`` (N, C, h, w) → (N, C, s·h, s·w); ``return_all`` gives every stage output."""
        k, sig, lr, s = self._inputs(lr, kernel, sigma, scale)
        h, w = lr.shape[-2:]
        # reflect padding (border handling, module docstring): the kernel's reach in LR pixels + pad
        p = min(self.pad + math.ceil(max(k.shape[-2:]) / (2 * s)), h - 1, w - 1)
        y = F.pad(lr, (p, p, p, p), mode="reflect") if p > 0 else lr
        hs, ws = y.shape[-2] * s, y.shape[-1] * s
        if max(k.shape[-2:]) > min(h * s, w * s):
            raise ValueError(f"kernel {tuple(k.shape[-2:])} is larger than the {h * s}×{w * s} output: "
                             "use a larger image or a smaller kernel")
        alpha, beta = self.hyper(sig, s)
        x = self.physics.A_dagger(y, scale=s).to(lr.dtype)
        outs, prior = [], self.priors()
        for i in range(self.stages):
            z = self.physics.data_step(x, y, alpha[:, i], k, s).to(lr.dtype)
            level = beta[:, i].view(-1, 1, 1, 1).expand(-1, 1, hs, ws).to(z.dtype)
            x = z + self.strength[i] * (prior(i)(z, level) - z)
            outs.append(x[..., p * s : p * s + h * s, p * s : p * s + w * s])
        return outs if return_all else outs[-1]

    # -- two-phase training (as LoRun) -------------------------------------------------------------------
    @torch.no_grad()
    def init_from_single(self, single: "LoRunSR | dict[str, torch.Tensor]", physics: bool = True,
                         strength_init: float = 0.0) -> None:
        """Start phase 2 (or Block-K) from a trained one-stage model: the base denoiser in every stage, the
        hyper-network's stage-1 settings for every stage, strength 1 for stage 1 and ``strength_init`` after."""
        sd = single.state_dict() if isinstance(single, nn.Module) else single
        den = {k[len("denoiser."):]: v for k, v in sd.items() if k.startswith("denoiser.")}
        if self.mode == "block":
            for d in self.denoisers:
                d.load_state_dict(den, strict=True)
        else:
            load_base(self.denoiser, den)
        hyp = {k[len("hyper."):]: v for k, v in sd.items() if k.startswith("hyper.")}
        last = f"mlp.{len(self.hyper.mlp) - 1}."
        n1 = hyp[last + "bias"].numel() // 2
        if n1 < 1:
            raise ValueError("phase-1 state dict has no hyper-network")
        rows = [min(i, n1 - 1) for i in range(self.stages)] + [n1 + min(i, n1 - 1) for i in range(self.stages)]
        for key in ("weight", "bias"):
            hyp[last + key] = hyp[last + key][rows].clone()
        self.hyper.load_state_dict(hyp, strict=True)
        self.strength.fill_(float(strength_init))
        self.strength[0] = float(sd["strength"][0]) if "strength" in sd else 1.0

    def phase2_trainable(self) -> None:
        """Freeze the shared base; adapters, hyper-network and strengths train."""
        if self.mode != "lora":
            raise ValueError("phase 2 applies to mode='lora'")
        freeze_base(self.denoiser)

    def set_trainable(self, phase: str = "finetune") -> None:
        super().set_trainable(phase)
        if phase == "finetune" and self.mode == "lora":
            self.phase2_trainable()

    def parameter_roles(self) -> dict[str, str]:
        def role(n: str) -> str:
            if n.startswith("hyper.") or n == "strength":
                return "stage"
            return "prior_adapters" if is_adapter_key(n) else "prior_base"

        return {n: role(n) for n, _ in self.named_parameters()}

    @property
    def tile_multiple(self) -> int:
        return 1

    def export_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The training config without ``pad`` (an inference setting: checkpoints use the default)."""
        return {k: v for k, v in config.items() if k != "pad"}


def lorun_sr(scale: int = 4, scales: Sequence[int] = (2, 3, 4), stages: int = 9, mode: str = "lora",
             widths: Sequence[int] = (16, 32, 64), blocks: int = 1, gamma: float = 10.0, channels: int = 3,
             pad: int = 8) -> LoRunSR:
    """LoRun-SR: a ``ResUNet(channels, widths, blocks, cond_channels=1)`` base (USRNet-tiny-like) in a
    K-stage USRNet unfolding; see :class:`LoRunSR`."""
    return LoRunSR(ResUNet(channels, widths, blocks, cond_channels=1), scale=scale, scales=scales, stages=stages,
                   mode=mode, gamma=gamma, pad=pad)


_SR = dict(architecture="lorun", task="sr", builder=lorun_sr, paper=PAPER, lightning_module="zoo.training.LoRunModule")
register_model(ModelEntry(
    name="lorun-sr-base", default_config={"stages": 1, "mode": "single", "scale": 4},
    test_config={"widths": (8, 16)},
    description="LoRun-SR phase-1 block (closed-form FFT data step + base ResUNet), scales ×2/×3/×4", **_SR))
for _s in (2, 3, 4):
    register_model(ModelEntry(
        name=f"lorun-sr-x{_s}", default_config={"stages": 9, "mode": "lora", "scale": _s},
        test_config={"widths": (8, 16), "stages": 2},
        description=f"LoRun-9 super-resolution ×{_s} with blur kernels: shared ResUNet + 9 LoRA sets "
                    "(one ×2/×3/×4 network; the name sets the default scale)", **_SR))
register_model(ModelEntry(
    name="block9-sr-x4", default_config={"stages": 9, "mode": "block", "scale": 4},
    test_config={"widths": (8, 16), "stages": 2},
    description="Block-9 super-resolution twin: 9 independent ResUNets (×2/×3/×4; default ×4)",
    **{**_SR, "architecture": "blockk"}))
