"""Where benchmark data lives: ``ZOO_DATA``, else ``../shared/data`` when it exists, else an explicit path."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "find_data", "resolve_path", "DatasetNotFoundError"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder/file is missing; the message names the layout and the official source."""


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``root`` if given, else ``$ZOO_DATA``, else ``../shared/data`` (cwd or repo) if present."""
    if root is not None:
        return Path(root)
    env = os.environ.get("ZOO_DATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


def resolve_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """``path`` itself if absolute, else relative to :func:`data_root` (unchanged when there is none).

    Existence is not checked: callers raise :class:`DatasetNotFoundError` with their own layout.
    """
    p = Path(path)
    if p.is_absolute():
        return p
    base = data_root(root)
    return base / p if base is not None else p


def find_data(rel: str, root: str | os.PathLike | None = None, *, layout: str = "", source: str = "") -> Path:
    """Return ``data_root(root)/rel`` or raise :class:`DatasetNotFoundError` with what to do."""
    base = data_root(root)
    path = (base / rel) if base is not None else None
    if path is not None and path.exists():
        return path
    where = f"{path}" if path is not None else f"<ZOO_DATA>/{rel} (ZOO_DATA is not set and ../shared/data does not exist)"
    msg = f"dataset not found: {where}."
    if layout:
        msg += f" Expected layout: {layout}."
    if source:
        msg += f" Official source: {source}."
    msg += " Set ZOO_DATA to the folder holding it, or pass the path explicitly."
    raise DatasetNotFoundError(msg)
