"""Checkpoints: manifest, resolution (local → cache → Hub) with sha256 verification, cards, export, publish.

The hub imports neither the registry nor the models (:mod:`zoo.hub.meta`); :mod:`zoo.api` joins them.

    >>> import zoo.hub
    >>> zoo.hub.load_manifest().checkpoints            # doctest: +SKIP
    >>> zoo.hub.prefetch(["lorun-cs-r25"])             # doctest: +SKIP
"""

from zoo.hub.card import model_card, refresh_card
from zoo.hub.export import export_run
from zoo.hub.loading import StateDictMismatchError, load_state_dict_strict
from zoo.hub.manifest import Manifest, load_manifest, set_bench, update_entry
from zoo.hub.publish import publish
from zoo.hub.records import CheckpointRecord
from zoo.hub.resolve import CheckpointNotFoundError, ChecksumError, prefetch, resolve_files
from zoo.hub.schema import ManifestError

__all__ = [
    "Manifest", "CheckpointRecord", "ManifestError", "load_manifest", "update_entry", "set_bench",
    "resolve_files", "prefetch", "ChecksumError", "CheckpointNotFoundError",
    "load_state_dict_strict", "StateDictMismatchError", "model_card", "refresh_card", "export_run", "publish",
]
