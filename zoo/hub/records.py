"""Typed records of ``checkpoints_manifest.json`` (one per checkpoint; plain dataclasses, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["FileRecord", "HubInfo", "TrainingInfo", "BenchInfo", "CheckpointRecord"]


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
