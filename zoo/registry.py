"""Model registry: typed metadata for every restorer in the zoo. A leaf: it imports nothing of ``zoo``.

Names follow ``family-task-variant`` (``lorun-cs-r25``). Each family file registers its entries at
its bottom (timm's pattern); the first lookup imports :mod:`zoo.models`, which runs them. Pretrained
weights are a separate concern: :mod:`zoo.api` joins this catalogue with :mod:`zoo.hub`.

Example (after the package is imported): ``get_entry("lorun-cs-r25").task`` is ``"cs"``, and
``create("lorun-cs-r25", stages=3)`` builds a 3-stage LoRun with random weights.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["ModelEntry", "register_model", "registered", "get_entry", "create", "UnknownModelError"]


class UnknownModelError(KeyError):
    """Raised for a model name the registry does not know; lists close matches."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class ModelEntry:
    """Typed metadata of one registered model.

    Attributes:
        name: registry name, e.g. ``lorun-cs-r25``.
        architecture: network family (``lorun``, ``blockk``, ...).
        task: ``cs``, ``cassi``, ``sr``, ``pansharpen``, ``flash`` or ``lowlight`` (a :mod:`zoo.tasks` file).
        builder: callable returning the ``nn.Module`` from keyword config.
        default_config: keyword arguments for ``builder``; ``create`` overrides merge into it.
        paper: citation of the method.
        licence: licence of the weights/code.
        description: one line for ``zoo list``.
        test_config: overrides that make a tiny instance for fast tests (timm's test config).
        lightning_module: class path of the family's Lightning module (``zoo finetune`` trains with it).
    """

    name: str
    architecture: str
    task: str
    builder: Callable[..., nn.Module]
    default_config: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    licence: str = "Apache-2.0"
    description: str = ""
    test_config: dict[str, Any] = field(default_factory=dict)
    lightning_module: str = "zoo.training.RestorationModule"

    def build(self, **overrides: Any) -> nn.Module:
        cfg = {**self.default_config, **overrides}
        return self.builder(**cfg)


_REGISTRY: dict[str, ModelEntry] = {}
_DISCOVERED = {"done": False}


def _discover() -> None:
    """Import :mod:`zoo.models` once (its family files register themselves), whoever asks first: the
    registry stays a leaf that names no family, and ``import zoo`` stays cheap."""
    if not _DISCOVERED["done"]:
        _DISCOVERED["done"] = True
        importlib.import_module("zoo.models")


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry (a duplicate name is a programming error)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def registered(pattern: str = "*", task: str | None = None) -> list[str]:
    """Sorted registered names matching a glob ``pattern`` (and ``task``)."""
    _discover()
    return sorted(n for n, e in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and (task is None or e.task == task))


def get_entry(name: str) -> ModelEntry:
    """Return the entry for ``name`` or raise :class:`UnknownModelError` with close matches."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Run `zoo list` (or zoo.list_models()) to see all names."
        ) from None


def create(name: str, **overrides: Any) -> nn.Module:
    """Build the network ``name`` with random weights; ``overrides`` change its config."""
    return get_entry(name).build(**overrides)
