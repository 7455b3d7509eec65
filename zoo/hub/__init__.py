"""Checkpoints: manifest, resolution (local → cache → Hub), sha256 verification, publish.

    >>> import zoo.hub
    >>> zoo.hub.load_manifest().checkpoints            # doctest: +SKIP
    >>> zoo.hub.prefetch(["lorun-cs-r25"])             # doctest: +SKIP
"""

from zoo.hub.files import FileExistsRefusal, atomic_write, sha256_file
from zoo.hub.loading import StateDictMismatchError, load_pretrained, load_state_dict_strict
from zoo.hub.manifest import (
    BenchInfo,
    CheckpointRecord,
    FileRecord,
    HubInfo,
    Manifest,
    ManifestError,
    TrainingInfo,
    checkpoint_files,
    default_checkpoints_dir,
    load_manifest,
    manifest_path,
    set_bench,
    update_entry,
    validate_manifest,
)
from zoo.hub.publish import model_card, prefetch, publish, refresh_card
from zoo.hub.resolve import CheckpointNotFoundError, ChecksumError, get_record, resolve_files, verify_file

__all__ = [
    "atomic_write", "sha256_file", "FileExistsRefusal",
    "Manifest", "CheckpointRecord", "FileRecord", "HubInfo", "TrainingInfo", "BenchInfo", "ManifestError",
    "load_manifest", "manifest_path", "validate_manifest", "checkpoint_files", "update_entry", "set_bench",
    "resolve_files", "verify_file", "get_record", "ChecksumError", "CheckpointNotFoundError",
    "load_pretrained", "load_state_dict_strict", "StateDictMismatchError",
    "prefetch", "publish", "model_card", "refresh_card", "default_checkpoints_dir",
]
