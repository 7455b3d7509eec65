"""Checkpoints: manifest, resolution (local → cache → Hub) with sha256 verification, cards, export, publish.

The hub imports neither the registry nor the models (:mod:`zoo.hub.meta`); :mod:`zoo.api` joins them.

    >>> import zoo.hub
    >>> zoo.hub.load_manifest().checkpoints            # doctest: +SKIP
    >>> zoo.hub.prefetch(["lorun-cs-r25"])             # doctest: +SKIP
"""

import importlib
from typing import Any

from zoo.hub.card import model_card, refresh_card
from zoo.hub.manifest import Manifest, load_manifest, set_bench, update_entry
from zoo.hub.publish import publish
from zoo.hub.records import CheckpointRecord
from zoo.hub.resolve import CheckpointNotFoundError, ChecksumError, prefetch, resolve_files
from zoo.hub.schema import ManifestError

# the two modules that import torch load on first use, so that reading the manifest (`zoo list`) needs no torch
_LAZY = {"export_run": "export", "StateDictMismatchError": "loading", "load_state_dict_strict": "loading"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"zoo.hub.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'zoo.hub' has no attribute {name!r}")


__all__ = [
    "Manifest", "CheckpointRecord", "ManifestError", "load_manifest", "update_entry", "set_bench",
    "resolve_files", "prefetch", "ChecksumError", "CheckpointNotFoundError",
    "load_state_dict_strict", "StateDictMismatchError", "model_card", "refresh_card", "export_run", "publish",
]
