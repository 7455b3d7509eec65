"""zoo: a PyTorch Lightning model zoo of deep-unfolding image-restoration networks.

    >>> import zoo
    >>> names = zoo.list_models("lorun-cs-*")
    >>> net = zoo.create("lorun-cs-r25")           # random weights
    >>> net = zoo.load("lorun-cs-r25")             # doctest: +SKIP  (verified pretrained weights)
"""

from zoo import models as _models  # noqa: F401  (importing the family files registers them)
from zoo.api import ModelEntry, UnknownModelError, checkpoint, create, get_entry, list_models, load

__version__ = "0.1.0"
__all__ = ["create", "load", "list_models", "get_entry", "checkpoint", "ModelEntry", "UnknownModelError",
           "__version__"]
