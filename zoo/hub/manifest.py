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

import json
import logging
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from zoo.hub.files import atomic_write, sha256_file

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
    "set_bench",
]

log = logging.getLogger("zoo.hub")

SCHEMA_VERSION = 1
DEFAULT_ORG = "unfolding-zoo"
_SCHEMA_PATH = Path(__file__).with_name("manifest_schema.json")


class ManifestError(ValueError):
    """The manifest is not valid JSON or does not follow ``manifest_schema.json``."""


# ---------------------------------------------------------------------------------------------
# typed records


@dataclass(frozen=True)
class FileRecord:
    """One checkpoint file: lowercase hex ``sha256`` and ``size`` in bytes."""

    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass
class HubInfo:
    """Hub location: ``repo_id`` (ORG/REPO), pinned ``revision`` (40-hex commit or None), ``published``."""

    repo_id: str
    revision: str | None = None
    published: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "published": self.published}


_TRAINING_KEYS = ("recipe", "data", "steps", "epochs", "hardware", "wall_time_s", "init")


@dataclass
class TrainingInfo:
    """How the weights were made; unknown keys are kept in ``extra`` (round-trip safe)."""

    recipe: str | None = None
    data: str | None = None
    steps: int | None = None
    epochs: int | None = None
    hardware: str | None = None
    wall_time_s: float | None = None
    init: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainingInfo":
        return cls(**{k: d.get(k) for k in _TRAINING_KEYS},
                   extra={k: v for k, v in d.items() if k not in _TRAINING_KEYS})

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _TRAINING_KEYS if getattr(self, k) is not None}
        return {**self.extra, **out}


@dataclass
class BenchInfo:
    """Benchmark block: ``command`` reproducing it, ``protocol``, ``results[dataset][metric]``."""

    results: dict[str, dict[str, float]] = field(default_factory=dict)
    command: str | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BenchInfo":
        known = ("results", "command", "protocol")
        return cls(results={k: dict(v) for k, v in d.get("results", {}).items()}, command=d.get("command"),
                   protocol=dict(d.get("protocol", {})), extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.command is not None:
            out["command"] = self.command
        if self.protocol:
            out["protocol"] = self.protocol
        out["results"] = self.results
        return out


@dataclass
class CheckpointRecord:
    """One manifest entry.

    Attributes:
        name: registry name (the manifest key).
        architecture, task: copied from the registry entry.
        config: ``zoo.create(name, **config)`` builds the network these weights fit.
        hub: :class:`HubInfo`.
        files: file name → :class:`FileRecord` (always has ``model.safetensors``).
        training: :class:`TrainingInfo` or None.
        bench: :class:`BenchInfo` or None.
    """

    name: str
    architecture: str
    task: str
    config: dict[str, Any]
    hub: HubInfo
    files: dict[str, FileRecord]
    training: TrainingInfo | None = None
    bench: BenchInfo | None = None

    @property
    def revision(self) -> str | None:
        return self.hub.revision

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> "CheckpointRecord":
        return cls(
            name=name, architecture=d["architecture"], task=d["task"], config=dict(d["config"]),
            hub=HubInfo(**d["hub"]),
            files={k: FileRecord(**v) for k, v in d["files"].items()},
            training=TrainingInfo.from_dict(d["training"]) if d.get("training") is not None else None,
            bench=BenchInfo.from_dict(d["bench"]) if d.get("bench") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "architecture": self.architecture, "task": self.task, "config": self.config,
            "hub": self.hub.to_dict(), "files": {k: v.to_dict() for k, v in self.files.items()},
        }
        if self.training is not None:
            out["training"] = self.training.to_dict()
        if self.bench is not None:
            out["bench"] = self.bench.to_dict()
        return out


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
    import zoo

    return Path(zoo.__file__).resolve().parents[1] / "checkpoints_manifest.json"


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


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _is_type(value: Any, t: str) -> bool:
    # bool is an int subclass in Python but not a JSON number
    if t in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[t])


def _where(path: tuple[str, ...]) -> str:
    """``('checkpoints', 'x', 'files', 'model.safetensors', 'sha256')`` → readable location."""
    def fmt(parts: tuple[str, ...]) -> str:
        s = ""
        for p in parts:
            s += f".{p}" if re.fullmatch(r"[A-Za-z_]\w*", p) else f'["{p}"]'
        return s.lstrip(".") or "(top level)"

    if len(path) >= 2 and path[0] == "checkpoints":
        return f"checkpoint {path[1]!r}: field {fmt(path[2:]) if path[2:] else '(record)'}"
    return f"field {fmt(path)}"


def _check(value: Any, schema: Mapping[str, Any], path: tuple[str, ...], errors: list[str]) -> None:
    """Append to ``errors`` every violation of ``schema`` (the keyword subset the schema file uses)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        schema = {**_schema()["$defs"][ref.rsplit("/", 1)[1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    desc = f" ({schema['description']})" if "description" in schema else ""
    if "anyOf" in schema:
        if not any(not _errors_of(value, s) for s in schema["anyOf"]):
            alts = " or ".join(s.get("type") or _schema()["$defs"].get(s.get("$ref", "").rsplit("/", 1)[-1], {})
                               .get("description", "?") for s in schema["anyOf"])
            errors.append(f"{_where(path)}: expected {alts}, got {value!r}")
        return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{_where(path)}: must be {schema['const']!r}, got {value!r}{desc}")
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            errors.append(f"{_where(path)}: expected {'/'.join(types)}, got {type(value).__name__} {value!r}{desc}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{_where(path)}: must be one of {schema['enum']}, got {value!r}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{_where(path)}: must not be empty{desc}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{_where(path)}: {value!r} does not match {schema['pattern']}{desc}")
    if _is_type(value, "number") and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{_where(path)}: must be >= {schema['minimum']}, got {value!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], path + (str(i),), errors)
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{_where(path + (key,))}: required key missing")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, v in value.items():
            if names is not None and "pattern" in names and not re.search(names["pattern"], key):
                ndesc = f" ({names['description']})" if "description" in names else ""
                errors.append(f"{_where(path + (key,))}: key {key!r} does not match {names['pattern']}{ndesc}")
            if key in props:
                _check(v, props[key], path + (key,), errors)
            elif extra is False:
                errors.append(f"{_where(path + (key,))}: unknown key (allowed: {', '.join(sorted(props))})")
            elif isinstance(extra, dict):
                _check(v, extra, path + (key,), errors)


def _errors_of(value: Any, schema: Mapping[str, Any]) -> list[str]:
    errs: list[str] = []
    _check(value, schema, (), errs)
    return errs


def validate_manifest(data: Any) -> None:
    """Check a parsed manifest against ``manifest_schema.json`` plus cross-field rules.

    Raises:
        ManifestError: listing every violation (checkpoint name and field for each).
    """
    errors: list[str] = []
    _check(data, _schema(), (), errors)
    if not errors:
        for name, rec in data["checkpoints"].items():
            # a published checkpoint without a pinned commit could silently follow a moving branch
            if rec["hub"]["published"] and rec["hub"]["revision"] is None:
                errors.append(f"checkpoint {name!r}: field hub.revision: published is true but revision is null")
    if errors:
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ManifestError("invalid checkpoints manifest:\n  " + "\n  ".join(errors[:20]) + more)


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
    from zoo.registry import get_entry

    entry = get_entry(name)  # unknown name -> UnknownModelError with close matches
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
    d = {"architecture": entry.architecture, "task": entry.task, "config": cfg.get("config", {}),
         "hub": hub_d, "files": {k: v.to_dict() for k, v in files.items()}}
    d.update({k: v for k, v in (("training", train_d), ("bench", bench_d)) if v is not None})
    _raise_if_invalid(d, {"$ref": "#/$defs/checkpoint"}, name, ())
    return CheckpointRecord.from_dict(name, d)


def _raise_if_invalid(value: Any, schema: Mapping[str, Any], name: str, sub: tuple[str, ...]) -> None:
    # validate caller-supplied blocks before they are turned into dataclasses
    errors: list[str] = []
    _check(value, schema, ("checkpoints", name) + sub, errors)
    if errors:
        raise ManifestError("invalid checkpoint record:\n  " + "\n  ".join(errors))


def update_entry(name: str, folder: str | os.PathLike, *, training: Any = None, bench: Any = None,
                 hub: Any = None, path: str | os.PathLike | None = None) -> CheckpointRecord:
    """Record (or refresh) checkpoint ``name`` from its folder and rewrite the manifest atomically.

    Hashes every pinned file of ``folder`` (see :func:`checkpoint_files`), takes architecture and
    task from the registry and ``config`` from ``folder/config.json``. Blocks not given keep their
    previous value; if the files changed, a published record becomes ``published: false`` (its
    revision is kept) until ``zoo publish`` pushes the new bytes.

    Example:
        >>> update_entry("lorun-cs-r25", "checkpoints/lorun-cs-r25",
        ...              training={"recipe": "recipes/lorun_cs_phase2.yaml", "steps": 1000})  # doctest: +SKIP
    """
    m = load_manifest(path)
    rec = build_record(name, folder, training=training, bench=bench, hub=hub, previous=m.checkpoints.get(name))
    m.checkpoints[name] = rec
    m.save()
    return rec


def set_bench(name: str, bench: Any, path: str | os.PathLike | None = None) -> CheckpointRecord:
    """Replace only the bench block of ``name`` (a dict or :class:`BenchInfo`); files stay as pinned."""
    m = load_manifest(path)
    if name not in m.checkpoints:
        raise ManifestError(f"{name!r} is not in the manifest {m.path}; record it first with update_entry()")
    bench_d = _as_dict(bench)
    _raise_if_invalid(bench_d, {"$ref": "#/$defs/bench"}, name, ("bench",))
    m.checkpoints[name].bench = BenchInfo.from_dict(bench_d)
    m.save()
    return m.checkpoints[name]
