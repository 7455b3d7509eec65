"""What the hub needs to know of a model (architecture, task, card text), without importing the registry.

The hub sits below the registry's users: it must not import ``zoo.registry`` or the model files
(storage tooling such as ``zoo prefetch`` would otherwise build every network's module). The one
place that joins them, :mod:`zoo.api`, installs a provider at ``import zoo``; the hub asks it
through :func:`model_meta` (dependency inversion, so the import graph stays one-way).
"""

from __future__ import annotations

from typing import Callable, Mapping

__all__ = ["ModelMeta", "set_meta_provider", "model_meta"]

ModelMeta = Mapping[str, str]  # architecture, task, description, paper, licence

_provider: Callable[[str], ModelMeta] | None = None


def set_meta_provider(fn: Callable[[str], ModelMeta]) -> None:
    """Install the function that answers :func:`model_meta` (done by :mod:`zoo.api`)."""
    global _provider
    _provider = fn


def model_meta(name: str) -> ModelMeta:
    """``{"architecture", "task", "description", "paper", "licence"}`` of registry name ``name``.

    Raises the registry's unknown-name error (with close matches) for a name it does not know.
    """
    if _provider is None:  # only reachable if zoo.hub is loaded without the package face
        raise RuntimeError("no model metadata provider: `import zoo` installs it (zoo.api)")
    return _provider(name)
