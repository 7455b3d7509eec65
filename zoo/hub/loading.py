"""Build a registered network with its verified pretrained weights.

Only safetensors is read: a ``.safetensors`` file is plain tensors, so even a hostile file
cannot run code (``torch.load`` of a pickle can), and the bytes are sha256-checked against the
manifest first anyway. Weights are loaded strictly: a missing or unexpected key means the
manifest's config does not build the network the weights were trained for.

Example:
    >>> import zoo
    >>> net = zoo.load("lorun-cs-r25", device="cuda")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn

from zoo.hub.manifest import load_manifest
from zoo.hub.resolve import files_from_path, get_record, resolve_files

__all__ = ["StateDictMismatchError", "load_pretrained", "load_state_dict_strict"]


class StateDictMismatchError(RuntimeError):
    """The weights' keys or shapes do not match the network built from the manifest config."""


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_state_dict_strict(net: nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """``net.load_state_dict(state, strict=True)`` with an error that names the offending keys.

    Raises:
        StateDictMismatchError: missing / unexpected keys or shape mismatches (a few of each named).
    """
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches (file vs network): {_few(shapes)}")
        raise StateDictMismatchError(
            f"{source} do not fit the network ({'; '.join(parts)}). The config used to build it does "
            f"not match the one the weights were trained with.")
    net.load_state_dict(state, strict=True)


def _folder_config(name: str, weights: Path) -> dict:
    cfg_path = weights.parent / "config.json"
    if not cfg_path.is_file():
        return {}
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("model") not in (None, name):
        raise ValueError(f"{cfg_path} is for model {cfg['model']!r}, not {name!r}")
    return dict(cfg.get("config", {}))


def load_pretrained(name: str, path: str | os.PathLike | None = None,
                    device: str | torch.device | None = None, verify: bool = True) -> nn.Module:
    """Resolve, verify and load the weights of ``name``; return the network in eval mode.

    Steps: :func:`~zoo.hub.resolve.resolve_files` (sha256-verified) → ``zoo.create(name,
    **record.config)`` → ``safetensors.torch.load_file`` → strict ``load_state_dict`` →
    ``.eval()`` → ``.to(device)``.

    With ``path`` and a name the manifest does not list (your own training run), the weights
    cannot be verified: the config comes from the folder's ``config.json`` and a warning is issued.
    ``verify=False`` does the same for a listed name (your own fine-tune of a published model):
    the folder's ``config.json`` wins over the manifest's config.

    Raises:
        UnknownModelError: unknown name.
        CheckpointNotFoundError: no checkpoint for ``name`` (lists the names that have one) or no
            source has the files.
        ChecksumError: a file differs from the manifest (never loaded).
        StateDictMismatchError: strict loading failed.
    """
    from safetensors.torch import load_file

    from zoo.registry import create, get_entry

    get_entry(name)
    manifest = load_manifest()
    if path is None and not verify:
        raise ValueError("verify=False applies to your own weights: pass their path too")
    if path is not None and (name not in manifest.checkpoints or not verify):
        weights = files_from_path(path, ["model.safetensors"])["model.safetensors"]
        listed = name in manifest.checkpoints
        config = {**(dict(get_record(name, manifest).config) if listed else {}), **_folder_config(name, weights)}
        why = "verify=False" if listed else f"{name} has no manifest record"
        warnings.warn(f"{why}: loading {weights} without sha256 verification", stacklevel=2)
    else:
        record = get_record(name, manifest)
        weights = resolve_files(name, path, files=["model.safetensors"], manifest=manifest)["model.safetensors"]
        config = dict(record.config)
    net = create(name, **config)
    state = load_file(str(weights), device="cpu")
    load_state_dict_strict(net, state, source=f"weights {weights}")
    net.eval()
    if device is not None:
        net.to(device)
    return net
