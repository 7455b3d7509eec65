"""Model registry: typed metadata for every restorer in the zoo.

Names follow ``family-task-variant`` (``lorun-cs-r25``). Each entry knows how to build its
network (``create``) and, when ``checkpoints_manifest.json`` lists it, where its verified weights
live (``load``).

Example:
    >>> import zoo
    >>> "lorun-cs-r25" in zoo.list_models("lorun-cs-*")
    True
    >>> net = zoo.create("lorun-cs-r25", stages=3)
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

__all__ = ["ModelEntry", "register_model", "list_models", "get_entry", "create", "load", "UnknownModelError"]


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
        task: ``cs``, ``cassi``, ``sr``, ``pansharpen``, ``flash`` or ``lowlight``.
        builder: callable returning the ``nn.Module`` from keyword config.
        default_config: keyword arguments for ``builder``; ``create`` overrides merge into it.
        paper: citation of the method.
        licence: licence of the weights/code.
        description: one line for ``zoo list``.
        test_config: overrides that make a tiny instance for fast tests (timm's test config).

    The checkpoint tags (hash, Hub repo/revision, training, bench) live in
    ``checkpoints_manifest.json``: :attr:`checkpoint` returns this entry's record.
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

    @property
    def checkpoint(self):
        """The manifest record of this model's pretrained weights (``None`` if it has none)."""
        from zoo.hub.manifest import load_manifest

        return load_manifest().checkpoints.get(self.name)

    @property
    def pretrained(self) -> bool:
        return self.checkpoint is not None

    def build(self, **overrides: Any) -> nn.Module:
        cfg = {**self.default_config, **overrides}
        return self.builder(**cfg)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry (a duplicate name is a programming error)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def _ensure_populated() -> None:
    # Importing the model modules runs their registrations (timm's pattern).
    import zoo.models  # noqa: F401


def get_entry(name: str) -> ModelEntry:
    """Return the entry for ``name`` or raise :class:`UnknownModelError` with close matches."""
    _ensure_populated()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Run `zoo list` (or zoo.list_models()) to see all names."
        ) from None


def list_models(pattern: str = "*", task: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Sorted registry names matching a glob ``pattern``.

    Args:
        pattern: shell-style glob, e.g. ``"lorun-*"``.
        task: keep only this task (``cs``, ``cassi``, ...).
        pretrained: ``True`` keeps names with a checkpoint in the manifest, ``False`` those without.
    """
    _ensure_populated()
    from zoo.hub.manifest import load_manifest

    have = set(load_manifest().checkpoints) if pretrained is not None else set()
    out = []
    for name, e in _REGISTRY.items():
        if not fnmatch.fnmatch(name, pattern):
            continue
        if task is not None and e.task != task:
            continue
        if pretrained is not None and (name in have) != pretrained:
            continue
        out.append(name)
    return sorted(out)


def create(name: str, **overrides: Any) -> nn.Module:
    """Build the network ``name`` with random weights; ``overrides`` change its config."""
    return get_entry(name).build(**overrides)


def load(name: str, *, path: str | None = None, device: str | None = None, verify: bool = True) -> nn.Module:
    """Build ``name`` with its verified pretrained weights, in eval mode.

    The weights are resolved in the order explicit ``path`` → ``ZOO_CHECKPOINTS`` / the repo's
    ``checkpoints/`` folder → Hugging Face cache → download at the pinned revision, and are
    sha256-checked before loading (see :mod:`zoo.hub`). ``verify=False`` with a ``path`` loads your
    own weights of a published model (a fine-tune: their hashes differ from the manifest's) with
    the config of the folder's ``config.json``, and warns that nothing was verified.

    Example:
        >>> import zoo
        >>> net = zoo.load("lorun-cs-r25")  # doctest: +SKIP
    """
    from zoo.hub.loading import load_pretrained

    return load_pretrained(name, path=path, device=device, verify=verify)
