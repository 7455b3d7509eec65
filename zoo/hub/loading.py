"""Strict loading of verified weights into a network (used by :func:`zoo.load`).

Only safetensors is read: a ``.safetensors`` file is plain tensors, so even a hostile file
cannot run code (``torch.load`` of a pickle can), and the bytes are sha256-checked against the
manifest first anyway (:func:`read_safetensors` parses the very bytes that were hashed). A file
that is not valid safetensors (truncated, empty, a pickle, a crafted header) is a ``ValueError``
naming it. Weights are loaded strictly: a missing or unexpected key means the manifest's config
does not build the network the weights were trained for.

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

__all__ = ["StateDictMismatchError", "load_state_dict_strict", "read_safetensors", "folder_config"]


class StateDictMismatchError(RuntimeError):
    """The weights' keys or shapes do not match the network built from the manifest config."""


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def read_safetensors(weights: Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``weights`` (or of ``data``, its bytes already read), on the CPU.

    Raises:
        ValueError: not a valid safetensors file (safetensors' ``SafetensorError``), naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    try:
        return load(data) if data is not None else load_file(str(weights), device="cpu")
    except SafetensorError as e:
        raise ValueError(f"{weights}: not a valid safetensors file ({e}); expected the model.safetensors of "
                         f"a checkpoint folder (written by zoo export / ExportWeights / save_file)") from None


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
