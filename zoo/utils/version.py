"""The installed package's version, without importing the package face (``zoo.__version__``)."""

from __future__ import annotations

import importlib.metadata

__all__ = ["package_version"]


def package_version() -> str:
    """``unfolding-zoo``'s version from its metadata; ``0+unknown`` for a source tree that is not installed."""
    try:
        return importlib.metadata.version("unfolding-zoo")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
