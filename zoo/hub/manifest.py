"""``checkpoints_manifest.json``: the single source of truth for pretrained weights.

Each record pins a checkpoint's files by sha256 and size, the Hub copy by a 40-hex commit, and
keeps how it was trained and what it scores. Loading (:mod:`zoo.hub.loading`) refuses any file
whose bytes differ from the record, so a benchmark number always refers to known bytes.

The file sits next to the package (``<repo>/checkpoints_manifest.json``); ``$ZOO_MANIFEST``
overrides the location. A missing file is an empty manifest. The format is documented by
``zoo/hub/manifest_schema.json`` and checked by a small interpreter of that schema (no
``jsonschema`` dependency).

Example:
    >>> from zoo.hub.manifest import load_manifest
    >>> m = load_manifest()                          # doctest: +SKIP
    >>> m.checkpoints["lorun-cs-r25"].files["model.safetensors"].sha256  # doctest: +SKIP
    '3f5c...'
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from zoo.hub.meta import model_meta
from zoo.hub.records import BenchInfo, CheckpointRecord, FileRecord, HubInfo, TrainingInfo
from zoo.hub.schema import ManifestError, check_block, validate_manifest
from zoo.utils.files import atomic_write, file_lock, sha256_file

__all__ = [
    "SCHEMA_VERSION",
    "ManifestError",
    "FileRecord",
    "HubInfo",
    "TrainingInfo",
    "BenchInfo",
    "CheckpointRecord",
    "Manifest",
    "manifest_path",
    "default_checkpoints_dir",
    "load_manifest",
    "validate_manifest",
    "checkpoint_files",
    "build_record",
    "update_entry",
    "locked_manifest",
    "set_bench",
]

log = logging.getLogger("zoo.hub")

SCHEMA_VERSION = 1
DEFAULT_ORG = "unfolding-zoo"


@dataclass
class Manifest:
    """The parsed manifest: ``checkpoints`` by name, and the ``path`` it was read from."""

    checkpoints: dict[str, CheckpointRecord] = field(default_factory=dict)
    path: Path | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version,
                "checkpoints": {k: self.checkpoints[k].to_dict() for k in sorted(self.checkpoints)}}

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Validate, then write atomically (sorted keys, indent 2) to ``path`` or ``self.path``."""
        target = Path(path) if path is not None else (self.path or manifest_path())
        data = self.to_dict()
        validate_manifest(data)  # never write a manifest that the next load would refuse
        with atomic_write(target, overwrite=True) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        self.path = target
        return target


# ---------------------------------------------------------------------------------------------
# location, loading, validation


def manifest_path() -> Path:
    """``$ZOO_MANIFEST`` if set, else ``checkpoints_manifest.json`` next to the ``zoo`` package."""
    env = os.environ.get("ZOO_MANIFEST")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "checkpoints_manifest.json"


@contextlib.contextmanager
def locked_manifest(path: str | os.PathLike | None = None) -> Iterator[Manifest]:
    """Load the manifest under an exclusive lock, yield it for changes, save it on a clean exit.

    Every read-modify-write of the manifest goes through here, so concurrent ``zoo bench --record``,
    ``zoo export`` and ``zoo publish`` runs serialise instead of losing each other's records.
    """
    target = Path(path) if path is not None else manifest_path()
    with file_lock(target):
        m = load_manifest(target)
        yield m
        m.save(target)


def default_checkpoints_dir() -> Path:
    """The git checkout's ``checkpoints/`` folder, next to the manifest (``zoo export`` writes there)."""
    return manifest_path().resolve().parent / "checkpoints"


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Read and validate the manifest (missing file → empty :class:`Manifest`).

    Raises:
        ManifestError: invalid JSON, or a schema violation; the message names the checkpoint
            and the field, e.g. ``checkpoint 'lorun-cs-r25': files["model.safetensors"].sha256 ...``.
    """
    p = Path(path) if path is not None else manifest_path()
    if not p.exists():
        return Manifest(path=p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ManifestError(f"{p} is not valid JSON: {e}") from None
    try:
        validate_manifest(data)
    except ManifestError as e:
        raise ManifestError(f"{p}: {e}") from None
    return Manifest(checkpoints={k: CheckpointRecord.from_dict(k, v) for k, v in data["checkpoints"].items()},
                    path=p, schema_version=data["schema_version"])



# ---------------------------------------------------------------------------------------------
# writing


def checkpoint_files(folder: str | os.PathLike) -> list[str]:
    """Names of the files of a checkpoint folder that the manifest pins.

    ``model.safetensors``, ``config.json``, ``README.md`` and any other ``*.safetensors``
    (adapters), when present. Training by-products (``learning_curve.json``, ...) are left out.
    """
    folder = Path(folder)
    names = {n for n in ("model.safetensors", "config.json", "README.md") if (folder / n).is_file()}
    names |= {p.name for p in folder.glob("*.safetensors") if p.is_file()}
    return sorted(names)


def _as_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def build_record(name: str, folder: str | os.PathLike, *, training: Any = None, bench: Any = None,
                 hub: Any = None, previous: CheckpointRecord | None = None) -> CheckpointRecord:
    """Make the record of checkpoint folder ``folder`` for registry name ``name`` (no writing).

    ``training``/``bench``/``hub`` default to those of ``previous`` (if any); the hub block
    otherwise defaults to ``unfolding-zoo/<name>``, unpublished.
    """
    meta = model_meta(name)  # unknown name -> the registry's error with close matches
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} has no model.safetensors: not a checkpoint folder")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json (written by ExportWeights / zoo export)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if not isinstance(cfg, dict) or not isinstance(cfg.get("config", {}), dict):
        raise ManifestError(f"{cfg_path}: expected {{'model': NAME, 'config': {{...}}}}")
    if cfg.get("model") not in (None, name):
        raise ManifestError(f"{cfg_path} is for model {cfg['model']!r}, not {name!r}")
    files = {n: FileRecord(sha256_file(folder / n), (folder / n).stat().st_size) for n in checkpoint_files(folder)}
    hub_d = _as_dict(hub) if hub is not None else (
        previous.hub.to_dict() if previous else {"repo_id": f"{DEFAULT_ORG}/{name}", "revision": None,
                                                 "published": False})
    if hub is None and previous is not None and previous.hub.published and previous.files != files:
        # the Hub copy at the pinned revision no longer holds these bytes: say so until `zoo publish`
        changed = sorted(k for k in set(files) | set(previous.files) if files.get(k) != previous.files.get(k))
        log.warning("%s: %s changed since publishing; published=false until `zoo publish %s --repo-id %s`",
                    name, ", ".join(changed), name, hub_d["repo_id"])
        hub_d = {**hub_d, "published": False}
    train_d = _as_dict(training) if training is not None else (
        previous.training.to_dict() if previous and previous.training else None)
    bench_d = _as_dict(bench) if bench is not None else (
        previous.bench.to_dict() if previous and previous.bench else None)
    d = {"architecture": meta["architecture"], "task": meta["task"], "config": cfg.get("config", {}),
         "hub": hub_d, "files": {k: v.to_dict() for k, v in files.items()}}
    d.update({k: v for k, v in (("training", train_d), ("bench", bench_d)) if v is not None})
    check_block(d, {"$ref": "#/$defs/checkpoint"}, name, ())
    return CheckpointRecord.from_dict(name, d)



def update_entry(name: str, folder: str | os.PathLike, *, training: Any = None, bench: Any = None,
                 hub: Any = None, path: str | os.PathLike | None = None) -> CheckpointRecord:
    """Record (or refresh) checkpoint ``name`` from its folder and rewrite the manifest atomically.

    Hashes every pinned file of ``folder`` (see :func:`checkpoint_files`), takes architecture and
    task from the registry and ``config`` from ``folder/config.json``. Blocks not given keep their
    previous value; if the files changed, a published record becomes ``published: false`` (its
    revision is kept) until ``zoo publish`` pushes the new bytes.

    Example:
        >>> update_entry("lorun-cs-r25", "checkpoints/lorun-cs-r25",
        ...              training={"recipe": "recipes/lorun/cs/phase2_r25.yaml", "steps": 1000})  # doctest: +SKIP
    """
    with locked_manifest(path) as m:
        rec = build_record(name, folder, training=training, bench=bench, hub=hub, previous=m.checkpoints.get(name))
        m.checkpoints[name] = rec
    return rec


def set_bench(name: str, bench: Any, path: str | os.PathLike | None = None) -> CheckpointRecord:
    """Replace only the bench block of ``name`` (a dict or :class:`BenchInfo`); files stay as pinned."""
    with locked_manifest(path) as m:
        if name not in m.checkpoints:
            raise ManifestError(f"{name!r} is not in the manifest {m.path}; record it first with update_entry()")
        bench_d = _as_dict(bench)
        check_block(bench_d, {"$ref": "#/$defs/bench"}, name, ("bench",))
        m.checkpoints[name].bench = BenchInfo.from_dict(bench_d)
    return m.checkpoints[name]
