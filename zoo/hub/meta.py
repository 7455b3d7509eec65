"""What the hub needs to know of a model (architecture, task, card text), without importing the registry.

The hub sits below the registry's users: it must not import ``zoo.registry`` or the model files
(storage tooling such as ``zoo prefetch`` would otherwise build every network's module). The one
place that joins them, :mod:`zoo.api`, installs a provider when it is imported (``zoo.load`` & co.
import it on first use; :func:`model_meta` imports it by name if nothing did yet); the hub asks it
through :func:`model_meta` (dependency inversion, so the import graph stays one-way).
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping

__all__ = ["ModelMeta", "set_meta_provider", "model_meta"]

ModelMeta = Mapping[str, str]  # architecture, task, description, paper, licence, onnx_blocker ("" if none)

_provider: Callable[[str], ModelMeta] | None = None


def set_meta_provider(fn: Callable[[str], ModelMeta]) -> None:
    """Install the function that answers :func:`model_meta` (done by :mod:`zoo.api`)."""
    global _provider
    _provider = fn


def model_meta(name: str) -> ModelMeta:
    """``{"architecture", "task", "description", "paper", "licence"}`` of registry name ``name``.

    Raises the registry's unknown-name error (with close matches) for a name it does not know.
    """
    if _provider is None:  # `import zoo` is lazy: the package face installs the provider when it loads
        importlib.import_module("zoo.api")
    if _provider is None:
        raise RuntimeError("no model metadata provider: zoo.api installs it")
    return _provider(name)
