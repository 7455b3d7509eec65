"""Strict loading of verified weights into a network (used by :func:`zoo.load`).

Only safetensors is read: a ``.safetensors`` file is plain tensors, so even a hostile file
cannot run code (``torch.load`` of a pickle can), and the bytes are sha256-checked against the
manifest first anyway. Weights are loaded strictly: a missing or unexpected key means the
manifest's config does not build the network the weights were trained for.

Example:
    >>> import torch.nn as nn
    >>> from zoo.hub.loading import load_state_dict_strict
    >>> net = nn.Linear(2, 2)
    >>> load_state_dict_strict(net, nn.Linear(2, 2).state_dict())
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn

__all__ = ["StateDictMismatchError", "load_state_dict_strict", "folder_config"]


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


def folder_config(name: str, weights: Path) -> dict:
    """The ``config`` of the ``config.json`` beside ``weights`` (a training run's export), ``{}`` if none."""
    cfg_path = weights.parent / "config.json"
    if not cfg_path.is_file():
        return {}
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("model") not in (None, name):
        raise ValueError(f"{cfg_path} is for model {cfg['model']!r}, not {name!r}")
    return dict(cfg.get("config", {}))
