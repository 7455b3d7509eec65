"""The public face: ``create``, ``load``, ``list_models`` — the one module that joins registry and hub.

``load(name)`` checks the name once against the registry, resolves and verifies the weights in
:mod:`zoo.hub` (explicit path → ``ZOO_CHECKPOINTS`` / ``checkpoints/`` → Hugging Face cache →
download at the pinned revision, every file sha256-checked), builds the network from the
registry and loads the weights strictly.

Example:
    >>> import zoo
    >>> "lorun-cs-r25" in zoo.list_models("lorun-cs-*", pretrained=True)
    True
    >>> net = zoo.load("lorun-cs-r25")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
import typing
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from zoo.hub.loading import folder_config, load_state_dict_strict, read_safetensors
from zoo.hub.manifest import CheckpointRecord, load_manifest
from zoo.hub.meta import set_meta_provider
from zoo.hub.resolve import files_from_path, get_record, read_verified_file
from zoo.models.base import Restorer
from zoo.nn.lora import load_adapters
from zoo.registry import ModelEntry, UnknownModelError, create, get_entry, registered
from zoo.utils.files import sha256_file

__all__ = ["create", "load", "list_models", "get_entry", "checkpoint", "ModelEntry", "UnknownModelError"]


def _onnx_blocker(e: ModelEntry) -> str:
    """The ``onnx_blocker`` of the class the entry's builder returns (its return annotation), without building it."""
    try:
        cls = typing.get_type_hints(e.builder).get("return")
    except (NameError, TypeError):
        return ""
    return (cls.onnx_blocker or "") if isinstance(cls, type) and issubclass(cls, Restorer) else ""


def _meta(name: str) -> dict[str, str]:
    e = get_entry(name)
    return {"architecture": e.architecture, "task": e.task, "description": e.description, "paper": e.paper,
            "licence": e.licence, "onnx_blocker": _onnx_blocker(e)}


set_meta_provider(_meta)


def list_models(pattern: str = "*", task: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Sorted registry names matching a glob ``pattern``.

    Args:
        pattern: shell-style glob, e.g. ``"lorun-*"``.
        task: keep only this task (``cs``, ``cassi``, ...).
        pretrained: ``True`` keeps names with a checkpoint in the manifest, ``False`` those without.
    """
    names = registered(pattern, task)
    if pretrained is None:
        return names
    have = set(load_manifest().checkpoints)
    return [n for n in names if (n in have) == pretrained]


def checkpoint(name: str) -> CheckpointRecord | None:
    """The manifest record of ``name``'s pretrained weights (``None`` if it has none)."""
    get_entry(name)
    return load_manifest().checkpoints.get(name)


def _check_config(name: str, config: dict[str, Any], sources: dict[str, Path | None]) -> None:
    """Refuse keys ``name``'s builder does not take, naming them, the file each came from and the accepted keys."""
    params = inspect.signature(get_entry(name).builder).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    bad: dict[str, list[str]] = {}
    for k in config:
        if k not in accepted:
            bad.setdefault(str(sources.get(k) or "the manifest"), []).append(k)
    if bad:
        where = "; ".join(f"{', '.join(sorted(keys))} (in the config of {src})" for src, keys in bad.items())
        raise ValueError(f"{name}: config key(s) its builder {get_entry(name).builder.__name__}() does not accept: "
                         f"{where}; accepted keys: {', '.join(accepted)}. Fix or remove them in that file "
                         f"(a typo, or a config of another model?).")


def load(name: str, *, path: str | os.PathLike | None = None, device: str | torch.device | None = None,
         verify: bool = True, adapters: str | os.PathLike | None = None,
         channels_last: bool | None = None) -> nn.Module:
    """Build ``name`` with its verified pretrained weights, in eval mode.

    ``channels_last``: keep the 4-D weights in the NHWC memory format (``None``: on CPU, where it makes
    the CS, SR, pansharpening and flash networks 1.1–1.5× faster at 256²–512² (LLEMamba and CASSI: within ±8 %),
    ``results/deploy/channels_last``; the values and the state dict's keys and shapes are unchanged).

    ``adapters``: an ``adapters.safetensors`` from ``zoo finetune`` (LoRun models): loaded on top of the
    base with :func:`zoo.nn.lora.load_adapters` after checking it was written for ``name`` and trained on
    exactly these base weights (the sha256 in its metadata). To switch between adapter sets later,
    call ``zoo.nn.lora.load_adapters(net, other_path)`` on the loaded network (no reload of the base).

    ``verify=False`` with a ``path`` loads your own weights of a published model (a fine-tune:
    their hashes differ from the manifest's) with the config of the folder's ``config.json``, and
    warns that nothing was verified; a ``path`` for a name the manifest does not list does the same.
    Verified weights are read once: the bytes that were hashed are the bytes that are loaded.

    Raises:
        UnknownModelError: unknown name.
        CheckpointNotFoundError: no checkpoint for ``name`` (lists the names that have one) or no
            source has the files.
        ChecksumError: a file differs from the manifest (never loaded).
        ValueError: the weights are not a valid safetensors file, or the config has a key the
            model's builder does not accept (the file and the key(s) are named); an adapter file of
            another model, base, rank or stage count, edited, not an adapter file, or with NaN/Inf.
        StateDictMismatchError: strict loading failed.

    Example:
        >>> import zoo
        >>> net = zoo.load("lorun-cs-r25")  # doctest: +SKIP
    """
    get_entry(name)
    manifest = load_manifest()
    if path is None and not verify:
        raise ValueError("verify=False applies to your own weights: pass their path too")
    config: dict[str, Any]
    if path is not None and (name not in manifest.checkpoints or not verify):
        weights = files_from_path(path, ["model.safetensors"])["model.safetensors"]
        listed = name in manifest.checkpoints
        own = folder_config(name, weights)
        config = {**(dict(get_record(name, manifest).config) if listed else {}), **own}
        sources = {k: weights.parent / "config.json" if k in own else manifest.path for k in config}
        why = "verify=False" if listed else f"{name} has no manifest record"
        warnings.warn(f"{why}: loading {weights} without sha256 verification", stacklevel=2)
        state = read_safetensors(weights)
        base_sha = sha256_file(weights) if adapters is not None else None
        bad = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
        if bad:  # unverified weights: say it is the weights, not the image, that hold NaN/Inf
            raise ValueError(f"{weights}: weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} contain NaN/Inf "
                             "values (a diverged training run?): use an earlier export")
    else:
        record = get_record(name, manifest)
        weights, data = read_verified_file(name, "model.safetensors", path, manifest=manifest)
        config = dict(record.config)
        sources = {k: manifest.path for k in config}
        state = read_safetensors(weights, data)  # parsed from the hashed bytes, not read again
        base_sha = record.files["model.safetensors"].sha256
    _check_config(name, config, sources)
    net = create(name, **config)
    load_state_dict_strict(net, state, source=f"weights {weights}")
    if adapters is not None:
        load_adapters(net, adapters, expect={"model": name, "base_sha256": base_sha})
    net.eval()
    if device is not None:
        net.to(device)
    p = next(net.parameters(), None)
    if channels_last or (channels_last is None and (p is None or p.device.type == "cpu")):
        net.to(memory_format=torch.channels_last)
    return net
