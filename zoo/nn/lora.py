"""LoRA adapters with one shared base weight and K stage-specific adapter sets.

For a layer with base weight ``W0`` the stage-``k`` weight is

    W_k = W0 + (α / r) · reshape(B_k · A_k),

with ``A_k ∈ R^{r×(fan)}`` (Kaiming-initialised), ``B_k ∈ R^{(out)×r}`` zero-initialised (every
stage starts equal to the base) and rank ``r = ceil(min(c_in, c_out)·γ/100)`` (≥ 1). For a plain
k×k convolution this is exactly the "k×k conv c_in→r, then 1×1 conv r→c_out" pair, written in
weight space so that grouped/depthwise and transposed convolutions work the same way and one
convolution (not two) runs per call. The active stage is chosen at call time with
:func:`set_stage`; ``None`` means the bare base layer (phase-1 training).

Inference (eval mode, no grad) merges each stage's ``W_k`` once and reuses it: the cache is keyed
on ``(version, data_ptr, dtype, device)`` of ``W0``, ``A_k`` and ``B_k``, so any in-place edit,
``load_state_dict``, :func:`load_adapters` or ``.to()`` invalidates it; ``train()`` clears it and
training (grad on) never uses it. :func:`merge_cache` switches it off (timings of the uncached path).
A whole unfolding network goes one step further with :func:`merged_stages`: K plain copies of the shared
module with the stage weights merged in, checked once per forward instead of once per layer call (at small
images the per-call checks were a few per cent of LoRun-9's time; the plain copies run like Block-9).

Adapter files (:func:`save_adapters` / :func:`load_adapters`) hold the factors ``A_k, B_k`` — and
optionally a few named non-LoRA tensors (LoRun's step sizes) — with metadata: the format, the
names of those extra tensors, the stage count, a sha256 of the tensors (tampering is refused)
and whatever the writer adds (``zoo finetune`` records the base checkpoint and its sha256).
Swapping one adapter set for another on a loaded network is ``load_adapters(net, path)``: the
base weights stay, only the adapter tensors are copied in.

Example:
    >>> import torch, torch.nn as nn
    >>> from zoo.nn.lora import inject_lora, set_stage, merge_lora, count_parameters
    >>> net = inject_lora(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1)), num_stages=3)
    >>> set_stage(net, 1); y = net(torch.rand(1, 8, 5, 5))
    >>> len(merge_lora(net)), count_parameters(net)["base"]
    (3, 584)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.nn.pointwise import PointwiseConv2d, pointwise_conv
from zoo.utils.files import atomic_write
from zoo.utils.tracing import tracing

__all__ = [
    "load_base",
    "lora_rank",
    "LoRALayer",
    "inject_lora",
    "set_stage",
    "stage_layers",
    "freeze_base",
    "is_adapter_key",
    "merge_lora",
    "bake_stages",
    "lora_state_dict",
    "save_adapters",
    "load_adapters",
    "read_adapters",
    "merge_cache",
    "merged_stages",
    "stage_selector",
    "ADAPTER_FORMAT",
    "grow_adapters",
    "count_parameters",
]

_TARGETS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
ADAPTER_FORMAT = "zoo-lora-adapters"
_CACHE = {"on": True, "generation": 0}  # the merge caches (off only to time the uncached path); generation moves
# whenever a LoRA layer drops its cache (.to(), .half(), load_state_dict, train/eval switch), which the per-version
# keys alone could miss (a tensor freed and reallocated at the same address with version 0)


@contextlib.contextmanager
def merge_cache(enabled: bool) -> Iterator[None]:
    """Turn the inference merge cache of all LoRA layers on/off inside a ``with`` block."""
    before, _CACHE["on"] = _CACHE["on"], bool(enabled)
    try:
        yield
    finally:
        _CACHE["on"] = before


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
        self._merged: dict[int, tuple[tuple, torch.Tensor]] = {}  # stage -> (key of the inputs, W_k)

    @property
    def num_stages(self) -> int:
        return len(self.lora_A)

    def delta(self, k: int) -> torch.Tensor:
        """The stage-``k`` weight update, shaped like the base weight."""
        return (self.lora_B[k] @ self.lora_A[k]).view_as(self.base.weight) * self.scale

    def _key(self, k: int) -> tuple:
        # _version moves on every in-place write (optimiser steps, copy_ from load_state_dict), data_ptr
        # on a replaced tensor (.data =, .to(), another dtype or device): together they say whether W0, A_k,
        # B_k are still those merged. Read from the _parameters dicts: Module/ParameterList attribute access
        # was most of the per-call cost of a cached layer (≈ 6 of 10 µs)
        sk = str(k)
        w, a, b = self.base._parameters["weight"], self.lora_A._parameters[sk], self.lora_B._parameters[sk]
        return w._version, w.data_ptr(), a._version, a.data_ptr(), b._version, b.data_ptr()

    def weight_for(self, k: int | None) -> torch.Tensor:
        w = self._modules["base"]._parameters["weight"]
        if k is None:
            return w
        if self.training or torch.is_grad_enabled() or not _CACHE["on"]:
            return self._merge(w, k)
        key, hit = self._key(k), self._merged.get(k)
        if hit is None or hit[0] != key:
            hit = self._merged[k] = (key, self._merge(w, k))
        return hit[1]

    def _merge(self, w: torch.Tensor, k: int) -> torch.Tensor:
        d = self.delta(k).to(w.dtype)
        if torch.is_grad_enabled():
            return w + d
        # with W0's exact strides (NHWC after zoo.load on CPU, even for a 1-channel input, where both layouts
        # are "contiguous"): the convolution returns the layout the rest of the network runs in, and cached
        # and uncached outputs stay bit-identical
        return torch.add(w, d, out=torch.empty_like(w))

    def clear_cache(self) -> None:
        """Drop the merged inference weights (they are rebuilt on the next no-grad eval call)."""
        self._merged.clear()
        _CACHE["generation"] += 1

    def train(self, mode: bool = True) -> "LoRALayer":
        if bool(mode) != self.training:
            self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # .to()/.half(): the merged weights would be of the old tensors
        self.clear_cache()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self.clear_cache()
        super()._load_from_state_dict(*args, **kwargs)

    def __getstate__(self):  # deepcopy/pickle: a copy rebuilds its own cache
        state = self.__dict__.copy()
        state["_merged"] = {}
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.stage
        if k is None:
            return self.base(x)
        if not 0 <= k < self.num_stages:
            raise IndexError(f"stage {k} out of range for {self.num_stages} adapter sets")
        b, w = self._modules["base"], self.weight_for(k)
        if isinstance(b, nn.Linear):
            return F.linear(x, w, b.bias)
        if isinstance(b, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, b.bias, b.stride, b.padding, b.output_padding, b.groups, b.dilation)
        if type(b) is PointwiseConv2d:
            return pointwise_conv(x, w, b.bias)
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


def set_stage(module: nn.Module, stage: int | None, layers: Sequence[LoRALayer] | None = None) -> None:
    """Select adapter set ``stage`` (0-based) in every LoRA layer; ``None`` = base weights only.
    ``layers``: the module's LoRA layers, listed once by the caller (walking the module tree at every stage
    was ≈ 5 % of a LoRun-9 forward at 66²)."""
    for m in _lora_layers(module) if layers is None else layers:
        m.__dict__["stage"] = stage  # a plain attribute: skips nn.Module.__setattr__'s registry checks


def stage_layers(owner: nn.Module, module: nn.Module) -> list[LoRALayer]:
    """The LoRA layers of ``module``, listed once and kept on ``owner`` (relisted if ``module`` is replaced)."""
    hit = owner.__dict__.get("_zoo_stage_layers")
    if hit is None or hit[0] is not module:
        hit = (module, list(_lora_layers(module)))
        owner.__dict__["_zoo_stage_layers"] = hit
    return hit[1]


def freeze_base(module: nn.Module, frozen: bool = True) -> None:
    """Freeze (or unfreeze) every parameter that is not a LoRA factor."""
    for name, p in module.named_parameters():
        if not is_adapter_key(name):
            p.requires_grad_(not frozen)


class _BakedLoRA(LoRALayer):
    """A :class:`LoRALayer` whose K stage weights are precomputed constants (:func:`bake_stages`)."""

    merged: nn.ParameterList

    @property
    def num_stages(self) -> int:
        return len(self.merged)

    def weight_for(self, k: int | None) -> torch.Tensor:
        return self.base.weight if k is None else self.merged[k]


@torch.no_grad()
def bake_stages(module: nn.Module) -> nn.Module:
    """In place: every LoRA layer keeps ``W_k = W0 + B_k A_k`` for each stage as a constant and drops its
    adapters; :func:`set_stage` still selects the stage (a graph to export holds no adapter maths).
    Returns ``module``."""
    for m in list(_lora_layers(module)):  # listed first: the loop rewrites the layers it walks
        w = m.base.weight
        merged = [nn.Parameter(w + m.delta(k).to(w.dtype), requires_grad=False) for k in range(m.num_stages)]
        del m.lora_A, m.lora_B
        m.__class__ = _BakedLoRA
        m.merged = nn.ParameterList(merged)
        m.clear_cache()
    return module


def merge_lora(module: nn.Module) -> nn.ModuleList:
    """K plain copies of ``module`` with stage ``k``'s adapters merged into the weights (inference)."""
    layers = list(_lora_layers(module))
    if not layers:
        raise ValueError("module has no LoRA layers to merge")
    out = nn.ModuleList()
    with merge_cache(False):  # the copies hold the merged weights: the layers' own caches stay empty
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


def merged_stages(owner: nn.Module, module: nn.Module) -> nn.ModuleList | None:
    """``merge_lora(module)`` cached on ``owner`` for inference, or ``None`` where it must not be used.

    ``None`` (the caller then selects stages with :func:`set_stage`) in training mode, with grad enabled, while
    tracing for export, or with :func:`merge_cache` off. The copies are rebuilt when any parameter of ``module``
    changed (its version or storage), when a LoRA layer dropped its cache (``.to()``, ``load_state_dict``) or when
    ``module`` was replaced; the check reads each parameter once per call, so call it once per forward.
    """
    if owner.training or torch.is_grad_enabled() or not _CACHE["on"] or tracing():
        return None
    hit = owner.__dict__.get("_zoo_merged_stages")
    if hit is None or hit[0] is not module:
        hit = (module, list(module.parameters()), None, None)
    params = hit[1]
    key = (_CACHE["generation"], tuple((p._version, p.data_ptr()) for p in params))
    if hit[2] != key:
        copies = merge_lora(module)
        for c in copies:
            c.requires_grad_(False)
        hit = (module, params, key, copies)
    owner.__dict__["_zoo_merged_stages"] = hit
    return hit[3]


def stage_selector(owner: nn.Module, module: nn.Module) -> Callable[[int], nn.Module]:
    """``k ↦`` ``module`` with stage ``k``'s adapters, resolved once per forward of ``owner``: the plain merged copy
    (:func:`merged_stages`) at inference, else ``module`` after :func:`set_stage` (training, export, cache off)."""
    merged = merged_stages(owner, module)
    if merged is not None:
        return merged.__getitem__
    layers = stage_layers(owner, module)

    def select(k: int) -> nn.Module:
        set_stage(module, k, layers)
        return module

    return select


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors of ``module`` (keys as in ``module.state_dict()``)."""
    return {k: v for k, v in module.state_dict().items() if is_adapter_key(k)}


def _tensors_sha256(sd: Mapping[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order: the file's own checksum."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k].detach().contiguous().cpu()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _stage_count(module: nn.Module) -> int:
    layers = list(_lora_layers(module))
    if not layers:
        raise ValueError(f"{type(module).__name__} has no LoRA layers: adapters apply to LoRun models (mode='lora')")
    return layers[0].num_stages


def save_adapters(module: nn.Module, path: str | Path, overwrite: bool = False, *, extra: Sequence[str] = (),
                  metadata: Mapping[str, str] | None = None) -> Path:
    """Write the adapters of ``module`` (+ the non-LoRA tensors named in ``extra``) to a safetensors file.

    Atomic; refuses to overwrite unless asked. ``metadata`` (strings) is stored beside the format, the
    stage count, the ``extra`` names and a sha256 of the tensors that :func:`load_adapters` checks.
    """
    from safetensors.torch import save_file

    path = Path(path)
    own = module.state_dict()
    bad = [k for k in extra if k not in own or is_adapter_key(k)]
    if bad:
        raise KeyError(f"extra tensors {bad} are not non-LoRA entries of this module's state dict")
    sd = {k: v.detach().contiguous().cpu() for k, v in lora_state_dict(module).items()}
    if not sd:
        raise ValueError("module has no LoRA adapters to save")
    sd.update({k: own[k].detach().contiguous().cpu() for k in extra})
    meta = {**{str(k): str(v) for k, v in (metadata or {}).items()}, "format": ADAPTER_FORMAT,
            "stages": str(_stage_count(module)), "extra": json.dumps(sorted(extra)),
            "tensors_sha256": _tensors_sha256(sd)}
    with atomic_write(path, overwrite=overwrite) as tmp:
        save_file(sd, str(tmp), metadata=meta)
    return path


def read_adapters(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of an adapter file, checked: a zoo adapter file, intact, finite.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file, not a ``zoo-lora-adapters`` file, tensors that differ from
            the file's own sha256 (tampered / corrupted), or NaN/Inf values.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"adapter file {path} does not exist" + (" (it is a folder: name the "
                                "adapters.safetensors inside)" if path.is_dir() else ""))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise ValueError(f"{path} is not a readable safetensors file ({e}): expected the adapters.safetensors "
                         "written by `zoo finetune` / zoo.nn.lora.save_adapters") from e
    if meta.get("format") != ADAPTER_FORMAT:
        raise ValueError(f"{path} is not a zoo adapter file (metadata format={meta.get('format')!r}, expected "
                         f"{ADAPTER_FORMAT!r}): a full model.safetensors loads with zoo.load(name, path=...)")
    want = meta.get("tensors_sha256")
    if want is not None and _tensors_sha256(sd) != want:
        raise ValueError(f"{path}: the tensors do not match the file's recorded sha256 (edited or corrupted "
                         "after it was written): re-export the adapters")
    bad = sorted(k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if bad:
        raise ValueError(f"{path}: adapters {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} contain NaN/Inf "
                         "values (a diverged fine-tune?): use an earlier export")
    return sd, meta


def load_adapters(module: nn.Module, path: str | Path, *, expect: Mapping[str, str] | None = None) -> dict[str, str]:
    """Load (or swap in) an adapter file written by :func:`save_adapters`; returns its metadata.

    Only the adapter tensors (and the file's ``extra`` tensors) are copied into ``module``; the base
    weights stay, so switching between adapter sets needs no reload of the base. Keys, shapes (the
    rank) and the stage count must match exactly; ``expect`` names metadata entries that must equal
    the given values (e.g. the base checkpoint's sha256).

    Example:
        >>> import torch.nn as nn, tempfile, os
        >>> net = inject_lora(nn.Sequential(nn.Conv2d(4, 4, 3)), num_stages=2)
        >>> f = save_adapters(net, os.path.join(tempfile.mkdtemp(), "a.safetensors"), metadata={"model": "toy"})
        >>> load_adapters(net, f, expect={"model": "toy"})["stages"]
        '2'
    """
    sd, meta = read_adapters(path)
    for k, v in (expect or {}).items():
        if k not in meta:
            raise ValueError(f"adapter file {path} records no {k} (written by save_adapters without it, e.g. the "
                             "denoiser-level adapters of lorun-cassi-9stg-real): nothing to check it against; load "
                             "it into the module it was saved from with zoo.nn.lora.load_adapters(module, path)")
        if meta.get(k) != v:
            raise ValueError(f"adapter file {path} was written for {k}={meta.get(k)!r}, not {v!r}"
                             + (f": it was trained on other base weights ({meta.get('base')!r}) — load that base"
                                if "sha256" in k else ": adapters of another model"))
    stages = _stage_count(module)
    if "stages" in meta and int(meta["stages"]) != stages:
        raise ValueError(f"adapter file {path} does not fit this model: it holds {meta['stages']} stage adapter "
                         f"sets, this model has {stages} stages")
    extra = set(json.loads(meta.get("extra", "[]")))
    own = module.state_dict()
    want = set(lora_state_dict(module)) | (extra & set(own))
    missing, unexpected = want - set(sd), set(sd) - want
    if missing or unexpected:
        raise ValueError(
            f"adapter file {path} does not fit this model: {len(missing)} missing keys "
            f"(e.g. {sorted(missing)[:2]}), {len(unexpected)} unexpected (e.g. {sorted(unexpected)[:2]}); "
            "was it saved from a model with another architecture, width or stage count?"
        )
    wrong = [k for k in sorted(sd) if tuple(sd[k].shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        raise ValueError(f"adapter file {path} does not fit this model: {k} is {tuple(sd[k].shape)}, the model's "
                         f"{tuple(own[k].shape)} ({len(wrong)} such tensors): adapters of another rank (gamma) or width")
    module.load_state_dict(sd, strict=False)
    return meta


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

