"""Safe file writing and hashing: no partial files, no silent overwrites, no lost concurrent writes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "sha256_file", "check_writable", "file_lock", "FileExistsRefusal"]


class FileExistsRefusal(FileExistsError):
    """Refused to overwrite an existing file without ``overwrite=True`` / ``--overwrite``."""


def _refusal(path: Path) -> FileExistsRefusal:
    return FileExistsRefusal(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it.")


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check a file can be created in it — before any long computation.

    Raises:
        PermissionError: the folder cannot be created or written (read-only file system, permissions).
        NotADirectoryError: ``folder`` is an existing file.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder: choose another output folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".zoo-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise PermissionError(f"cannot write to {folder} ({e.strerror or e}): choose another output folder "
                              "or fix its permissions") from e
    return folder


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place atomically.

    On any error the temporary file is removed, so a crash never leaves a partial ``path``.
    Without ``overwrite`` the final step is an exclusive link (``os.link`` fails if ``path``
    exists), so of two concurrent writers exactly one wins and the other is refused.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: name an output file")
    if path.exists() and not overwrite:
        raise _refusal(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp files are 0600; give the result the mode a plain open() would (0666 & ~umask)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp_path, 0o666 & ~mask)
        if overwrite:
            os.replace(tmp_path, path)
        else:
            try:
                os.link(tmp_path, path)  # exclusive: fails if another writer created path meanwhile
            except FileExistsError:
                raise _refusal(path) from None
            except OSError as e:  # a file system without hard links: fall back to a checked rename
                if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if path.exists():
                    raise _refusal(path) from None
                os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock on ``<path>.lock`` (POSIX ``flock``; a no-op where it is unavailable).

    Read-modify-write of a shared file (the manifest) happens inside it, so concurrent writers
    serialise instead of losing each other's changes.
    """
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no flock; single-writer use is documented
        yield
        return
    with open(lock, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
