"""LoRA adapters with one shared base weight and K stage-specific adapter sets.

For a layer with base weight ``W0`` the stage-``k`` weight is

    W_k = W0 + (α / r) · reshape(B_k · A_k),

with ``A_k ∈ R^{r×(fan)}`` (Kaiming-initialised), ``B_k ∈ R^{(out)×r}`` zero-initialised (every
stage starts equal to the base) and rank ``r = ceil(min(c_in, c_out)·γ/100)`` (≥ 1). For a plain
k×k convolution this is exactly the "k×k conv c_in→r, then 1×1 conv r→c_out" pair, written in
weight space so that grouped/depthwise and transposed convolutions work the same way and one
convolution (not two) runs per call. The active stage is chosen at call time with
:func:`set_stage`; ``None`` means the bare base layer (phase-1 training).

Example:
    >>> import torch, torch.nn as nn
    >>> from zoo.nn.lora import inject_lora, set_stage, merge_lora, count_parameters
    >>> net = inject_lora(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1)), num_stages=3)
    >>> set_stage(net, 1); y = net(torch.rand(1, 8, 5, 5))
    >>> len(merge_lora(net)), count_parameters(net)["base"]
    (3, 584)
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.utils.files import atomic_write

__all__ = [
    "load_base",
    "lora_rank",
    "LoRALayer",
    "inject_lora",
    "set_stage",
    "freeze_base",
    "is_adapter_key",
    "merge_lora",
    "lora_state_dict",
    "save_adapters",
    "load_adapters",
    "grow_adapters",
    "count_parameters",
]

_TARGETS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def lora_rank(c_in: int, c_out: int, gamma: float = 10.0) -> int:
    """``r = ceil(min(c_in, c_out)·γ/100)``, at least 1."""
    return max(1, math.ceil(min(c_in, c_out) * gamma / 100.0))


class LoRALayer(nn.Module):
    """Wrap a ``Conv2d`` / ``ConvTranspose2d`` / ``Linear`` with ``num_stages`` LoRA adapters."""

    def __init__(self, base: nn.Module, num_stages: int, gamma: float = 10.0, alpha: float | None = None) -> None:
        super().__init__()
        if not isinstance(base, _TARGETS):
            raise TypeError(f"LoRA supports {[t.__name__ for t in _TARGETS]}, got {type(base).__name__}")
        if num_stages < 1:
            raise ValueError("num_stages must be ≥ 1")
        self.base = base
        w = base.weight
        if isinstance(base, nn.Linear):
            c_in, c_out = base.in_features, base.out_features
        elif isinstance(base, nn.ConvTranspose2d):
            c_in, c_out = w.shape[0], w.shape[1] * base.groups
        else:
            c_in, c_out = w.shape[1] * base.groups, w.shape[0]
        self.rank = lora_rank(c_in, c_out, gamma)
        self.scale = (alpha if alpha is not None else self.rank) / self.rank
        rows = w.shape[0]  # B_k multiplies the first weight axis
        fan = w[0].numel()
        self.lora_A = nn.ParameterList([nn.Parameter(torch.empty(self.rank, fan)) for _ in range(num_stages)])
        self.lora_B = nn.ParameterList([nn.Parameter(torch.zeros(rows, self.rank)) for _ in range(num_stages)])
        for a in self.lora_A:
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        self.stage: int | None = None

    @property
    def num_stages(self) -> int:
        return len(self.lora_A)

    def delta(self, k: int) -> torch.Tensor:
        """The stage-``k`` weight update, shaped like the base weight."""
        return (self.lora_B[k] @ self.lora_A[k]).view_as(self.base.weight) * self.scale

    def weight_for(self, k: int | None) -> torch.Tensor:
        w = self.base.weight
        return w if k is None else w + self.delta(k).to(w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.stage
        if k is None:
            return self.base(x)
        if not 0 <= k < self.num_stages:
            raise IndexError(f"stage {k} out of range for {self.num_stages} adapter sets")
        b, w = self.base, self.weight_for(k)
        if isinstance(b, nn.Linear):
            return F.linear(x, w, b.bias)
        if isinstance(b, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, b.bias, b.stride, b.padding, b.output_padding, b.groups, b.dilation)
        if b.padding_mode != "zeros":
            pad = b._reversed_padding_repeated_twice
            return F.conv2d(F.pad(x, pad, mode=b.padding_mode), w, b.bias, b.stride, 0, b.dilation, b.groups)
        return F.conv2d(x, w, b.bias, b.stride, b.padding, b.dilation, b.groups)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, stages={self.num_stages}, scale={self.scale:g}"


def _lora_layers(module: nn.Module) -> Iterator[LoRALayer]:
    for m in module.modules():
        if isinstance(m, LoRALayer):
            yield m


def inject_lora(module: nn.Module, num_stages: int, gamma: float = 10.0, alpha: float | None = None) -> nn.Module:
    """Replace every Conv2d / ConvTranspose2d / Linear in ``module`` (in place) by a :class:`LoRALayer`."""
    for name, child in list(module.named_children()):
        if isinstance(child, LoRALayer):
            continue
        if isinstance(child, _TARGETS):
            setattr(module, name, LoRALayer(child, num_stages, gamma, alpha))
        else:
            inject_lora(child, num_stages, gamma, alpha)
    return module


def load_base(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load the state dict of the plain (pre-LoRA) module into ``module``, injected or not: the base weights of a
    LoRA layer live under ``<layer>.base.<param>``; adapters keep their values. A missing base weight is refused."""
    own = module.state_dict()
    remap = {}
    for k, v in state.items():
        head, _, leaf = k.rpartition(".")
        remap[k if k in own else f"{head}.base.{leaf}"] = v
    missing = [k for k in own if k not in remap and ".lora_" not in k]
    if missing:
        raise ValueError(f"phase-1 state dict lacks {missing[:3]}: same widths/architecture?")
    module.load_state_dict(remap, strict=False)


def is_adapter_key(name: str) -> bool:
    """Whether a parameter / state-dict key names a LoRA factor (else it is a base weight)."""
    return ".lora_A." in f".{name}" or ".lora_B." in f".{name}"


def set_stage(module: nn.Module, stage: int | None) -> None:
    """Select adapter set ``stage`` (0-based) in every LoRA layer; ``None`` = base weights only."""
    for m in _lora_layers(module):
        m.stage = stage


def freeze_base(module: nn.Module, frozen: bool = True) -> None:
    """Freeze (or unfreeze) every parameter that is not a LoRA factor."""
    for name, p in module.named_parameters():
        if not is_adapter_key(name):
            p.requires_grad_(not frozen)


def merge_lora(module: nn.Module) -> nn.ModuleList:
    """K plain copies of ``module`` with stage ``k``'s adapters merged into the weights (inference)."""
    layers = list(_lora_layers(module))
    if not layers:
        raise ValueError("module has no LoRA layers to merge")
    out = nn.ModuleList()
    for k in range(layers[0].num_stages):
        clone = copy.deepcopy(module)
        _replace_merged(clone, k)
        out.append(clone)
    return out


@torch.no_grad()
def _replace_merged(module: nn.Module, k: int) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, LoRALayer):
            base = child.base
            base.weight.copy_(child.weight_for(k))
            setattr(module, name, base)
        else:
            _replace_merged(child, k)


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors of ``module`` (keys as in ``module.state_dict()``)."""
    return {k: v for k, v in module.state_dict().items() if is_adapter_key(k)}


def save_adapters(module: nn.Module, path: str | Path, overwrite: bool = False) -> Path:
    """Write the adapters alone to a safetensors file (atomically; refuses to overwrite unless asked)."""
    from safetensors.torch import save_file


    path = Path(path)
    sd = {k: v.detach().contiguous().cpu() for k, v in lora_state_dict(module).items()}
    if not sd:
        raise ValueError("module has no LoRA adapters to save")
    with atomic_write(path, overwrite=overwrite) as tmp:
        save_file(sd, str(tmp), metadata={"format": "zoo-lora-adapters"})
    return path


def load_adapters(module: nn.Module, path: str | Path) -> None:
    """Load an adapter file written by :func:`save_adapters`; keys must match exactly."""
    from safetensors.torch import load_file

    sd = load_file(str(path))
    want = set(lora_state_dict(module))
    missing, unexpected = want - set(sd), set(sd) - want
    if missing or unexpected:
        raise ValueError(
            f"adapter file {path} does not fit this model: {len(missing)} missing keys "
            f"(e.g. {sorted(missing)[:2]}), {len(unexpected)} unexpected (e.g. {sorted(unexpected)[:2]}); "
            "was it saved from a model with another architecture, width or stage count?"
        )
    module.load_state_dict(sd, strict=False)


@torch.no_grad()
def grow_adapters(
    state_dict: dict[str, torch.Tensor], module: nn.Module, source_scale: float | None = None
) -> dict[str, torch.Tensor]:
    """Embed the adapters of ``state_dict`` (rank ``r``) into ``module``'s higher rank ``r' ≥ r``.

    ``A' = [A; A_new]`` keeps ``module``'s own Kaiming rows for the new directions and
    ``B' = [B·s/s', 0]`` zero columns, so every stage weight ``W0 + s'·B'A'`` equals the source's
    ``W0 + s·BA`` exactly: training resumes from the same function with more capacity (a larger
    γ). ``s = source_scale`` is the source's α/r (default: the same as ``module``'s, i.e. α = r).
    Non-adapter tensors pass through unchanged; the result loads with ``strict=True``.

    Example:
        >>> import torch.nn as nn
        >>> small = inject_lora(nn.Sequential(nn.Conv2d(20, 20, 3)), 2, gamma=10)
        >>> big = inject_lora(nn.Sequential(nn.Conv2d(20, 20, 3)), 2, gamma=20)
        >>> big.load_state_dict(grow_adapters(small.state_dict(), big))
        <All keys matched successfully>
    """
    out = dict(state_dict)
    for name, layer in module.named_modules():
        if not isinstance(layer, LoRALayer):
            continue
        pre = f"{name}." if name else ""
        for k in range(layer.num_stages):
            ka, kb = f"{pre}lora_A.{k}", f"{pre}lora_B.{k}"
            if ka not in state_dict or kb not in state_dict:
                raise KeyError(f"state dict lacks adapter {ka!r}/{kb!r}: saved from another architecture or stage count?")
            a, b = state_dict[ka], state_dict[kb]
            own_a = layer.lora_A[k]
            r, r_new = a.shape[0], layer.rank
            if a.shape[1:] != own_a.shape[1:] or b.shape[0] != layer.lora_B[k].shape[0] or b.shape[1] != r:
                raise ValueError(f"adapter {ka} has shape {tuple(a.shape)}/{tuple(b.shape)}, not a lower-rank "
                                 f"version of this layer's {tuple(own_a.shape)}: another width or kernel?")
            if r > r_new:
                raise ValueError(f"adapter {ka} has rank {r} > this model's {r_new}: build the model with a larger "
                                 "gamma (grow_adapters only adds rank)")
            ratio = (layer.scale if source_scale is None else source_scale) / layer.scale
            a_new = own_a.detach().clone().to(device=a.device, dtype=a.dtype)
            a_new[:r] = a
            b_new = torch.zeros(b.shape[0], r_new, dtype=b.dtype, device=b.device)
            b_new[:, :r] = b * ratio
            out[ka], out[kb] = a_new, b_new
    return out


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Parameter counts: ``base`` (everything not LoRA), ``adapters`` and ``total``."""
    ad = sum(p.numel() for n, p in module.named_parameters() if is_adapter_key(n))
    tot = sum(p.numel() for p in module.parameters())
    return {"base": tot - ad, "adapters": ad, "total": tot}
