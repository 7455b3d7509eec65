"""zoo: a PyTorch Lightning model zoo of deep-unfolding image-restoration networks.

    >>> import zoo
    >>> names = zoo.list_models("lorun-cs-*")
    >>> net = zoo.create("lorun-cs-r25")           # random weights
    >>> net = zoo.load("lorun-cs-r25")             # doctest: +SKIP  (verified pretrained weights)

The public names are imported on first use (``import zoo`` alone does not import torch), so that
``zoo list`` and ``zoo info`` answer from the catalogue without loading the networks.
"""

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["create", "load", "list_models", "get_entry", "checkpoint", "ModelEntry", "UnknownModelError",
           "__version__"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("zoo.api"), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
