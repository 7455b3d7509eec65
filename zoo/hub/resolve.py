"""Find a checkpoint's files and prove they are the pinned bytes.

Resolution order for ``resolve_files(name)`` (the first source that has the files wins):

1. explicit ``path``: a checkpoint folder, or a ``.safetensors`` file (used as ``model.safetensors``);
2. ``$ZOO_CHECKPOINTS/<name>/``, then the git checkout's ``checkpoints/<name>/`` (next to the manifest);
   a folder that exists but cannot be used (a dangling symlink, a file that is not a regular
   file, a missing file) is skipped with a warning naming it and why;
3. the Hugging Face cache, at the manifest's pinned commit (no network);
4. a download from the Hub at that commit (``$HF_ENDPOINT`` honoured; refused if ``$HF_HUB_OFFLINE``).

Whatever the source, every file is checked against the manifest's sha256 and size
(:func:`verify_file`) before it is returned; a mismatch raises :class:`ChecksumError` and
nothing is loaded. A file of the Hugging Face cache that fails is first removed from the cache
(snapshot pointer and blob), so the next load downloads it again. :func:`read_verified_file`
returns the bytes it hashed, so that what is loaded is what was verified. huggingface_hub reads
``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HOME`` only when it is imported, so they are read
here at call time and passed explicitly.

Downloads are bounded by the manifest and by time. The server's announced size (a HEAD,
``get_hf_file_metadata``) must equal the record's, or nothing is downloaded; the body is cut at
the record's size, and only a file whose size and sha256 match enters the cache. Settings
(seconds, read at call time):

- ``ZOO_HUB_TIMEOUT``: connect / read timeout of each request (default: ``HF_HUB_ETAG_TIMEOUT``
  for the HEAD and ``HF_HUB_DOWNLOAD_TIMEOUT`` for the body, else 10);
- ``ZOO_HUB_DEADLINE``: the most one file may take, resumed attempts included (default 600).

A dropped connection is resumed (3 attempts in all); a timeout, a transport error or the deadline
ends in :class:`CheckpointNotFoundError` saying what happened, that nothing was cached, and how to
retry or work offline.

Example:
    >>> from zoo.hub.resolve import resolve_files
    >>> resolve_files("lorun-cs-r25")["model.safetensors"]   # doctest: +SKIP
    PosixPath('.../checkpoints/lorun-cs-r25/model.safetensors')
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Iterable

from zoo.hub.meta import model_meta
from zoo.utils.files import sha256_file
from zoo.utils.version import package_version
from zoo.hub.manifest import CheckpointRecord, FileRecord, Manifest, default_checkpoints_dir, load_manifest

__all__ = [
    "ChecksumError",
    "CheckpointNotFoundError",
    "verify_file",
    "read_verified",
    "get_record",
    "prefetch",
    "resolve_files",
    "read_verified_file",
    "download_files",
    "hf_cache_dir",
    "hf_endpoint",
    "hf_offline",
    "hub_timeouts",
    "local_candidates",
    "files_from_path",
]

log = logging.getLogger("zoo.hub")

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_DEADLINE_S = 600.0
_ATTEMPTS = 3  # GETs per file (a dropped connection is resumed with a Range request)


class ChecksumError(RuntimeError):
    """A checkpoint file's sha256 or size differs from the manifest; it was not loaded."""


class CheckpointNotFoundError(FileNotFoundError):
    """No source has the checkpoint (not in the manifest, not published, offline and not cached...)."""


# ---------------------------------------------------------------------------------------------
# environment, read at call time


def hf_endpoint() -> str:
    """``$HF_ENDPOINT`` (without trailing slash) or ``https://huggingface.co``."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hf_offline() -> bool:
    """True when ``$HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hf_cache_dir() -> Path:
    """The Hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _seconds(default: float, *variables: str) -> float:
    """The first of ``variables`` that is set, as positive seconds, else ``default``."""
    for var in variables:
        raw = os.environ.get(var, "").strip()
        if raw:
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not value > 0:
                raise ValueError(f"${var} must be a positive number of seconds, got {raw!r}")
            return value
    return default


def hub_timeouts() -> tuple[float, float, float]:
    """``(head_timeout, body_timeout, deadline)`` in seconds for one download (see the module docstring)."""
    return (_seconds(DEFAULT_TIMEOUT_S, "ZOO_HUB_TIMEOUT", "HF_HUB_ETAG_TIMEOUT"),
            _seconds(DEFAULT_TIMEOUT_S, "ZOO_HUB_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"),
            _seconds(DEFAULT_DEADLINE_S, "ZOO_HUB_DEADLINE"))


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a broken transfer raises: httpx2 / httpx request errors (timeouts, drops...) and OSError."""
    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):  # huggingface_hub 1.x uses httpx, 2.x httpx2
        try:
            errors.append(importlib.import_module(module).RequestError)
        except ImportError:
            pass
    return tuple(errors)


def _is_timeout(e: BaseException) -> bool:
    return isinstance(e, TimeoutError) or "Timeout" in type(e).__name__


def _offline_hint(name: str) -> str:
    return (f"To work offline, run `zoo prefetch {name}` where the Hub is reachable (same HF_HOME / --cache-dir) "
            f"and set HF_HUB_OFFLINE=1, or copy the checkpoint folder to $ZOO_CHECKPOINTS/{name}/.")


# ---------------------------------------------------------------------------------------------
# verification


def _label(manifest: str | os.PathLike | None) -> str:
    return str(manifest) if manifest is not None else "the manifest"


def _shown(p: Path) -> str:
    real = p.resolve()
    return f"{p}" + (f" -> {real}" if real != p.absolute() else "")


def _mismatch(what: str, shown: str, sha256: str, size: int, actual: str, actual_size: int, fix: str,
              manifest: str | os.PathLike | None) -> ChecksumError:
    if actual_size < size:
        kind = "smaller than the manifest's size (truncated or another file)"
    elif actual_size > size:
        kind = "larger than the manifest's size (another file)"
    else:
        kind = "corrupt or modified"
    return ChecksumError(
        f"checksum mismatch for {what} ({kind}); it was NOT loaded.\n"
        f"  file:     {shown}\n"
        f"  expected: sha256 {sha256}, size {size} bytes ({_label(manifest)})\n"
        f"  actual:   sha256 {actual}, size {actual_size} bytes\n"
        f"  fix: {fix}")


def _digest(p: Path, size: int, keep: bool = False) -> tuple[str, int, bytes | None]:
    """sha256 and size of ``p``; with ``keep`` also its bytes, read once (at most ``size + 1`` held in memory)."""
    if keep:
        with open(p, "rb") as fh:
            data = fh.read(size + 1)
        if len(data) <= size:
            return hashlib.sha256(data).hexdigest(), len(data), data
    return sha256_file(p), p.stat().st_size, None  # streamed: a huge file costs no memory


def _generic_fix(name: str | None, p: Path, local: bool) -> str:
    n = name or "NAME"
    if local:
        return (f"restore the original file; if you retrained {n} on purpose, record the new hashes with "
                f"zoo.hub.update_entry({n!r}, {str(p.parent)!r})")
    return f"delete {p} (and the blob it points to), then load again to download it again"


def _checked(path: str | os.PathLike, sha256: str, size: int, keep: bool, name: str | None, filename: str | None,
             fix: str | None, manifest: str | os.PathLike | None, local: bool) -> bytes | None:
    p = Path(path)
    what = f"{filename or p.name} of {name}" if name else (filename or p.name)
    fix = fix or _generic_fix(name, p, local)
    if not p.is_file():
        raise ChecksumError(f"{what}: {p} is missing (expected sha256 {sha256}, size {size} bytes); {fix}")
    actual, actual_size, data = _digest(p, size, keep)
    if actual != sha256 or actual_size != size:
        raise _mismatch(what, _shown(p), sha256, size, actual, actual_size, fix, manifest)
    return data


def verify_file(path: str | os.PathLike, sha256: str, size: int, *, name: str | None = None,
                filename: str | None = None, local: bool = False, manifest: str | os.PathLike | None = None,
                fix: str | None = None) -> Path:
    """Return ``path`` if its size and sha256 equal the manifest's, else raise :class:`ChecksumError`.

    The size is compared too so that a truncated download is reported as such. ``fix`` is the
    advice of the error (default: restore the file for ``local=True`` (a checkpoint folder),
    delete it for a cache file); ``manifest`` names the manifest file in the message.

    Example:
        >>> verify_file("checkpoints/x/model.safetensors", rec.sha256, rec.size)  # doctest: +SKIP
    """
    _checked(path, sha256, size, False, name, filename, fix, manifest, local)
    return Path(path)


def read_verified(path: str | os.PathLike, sha256: str, size: int, *, name: str | None = None,
                  filename: str | None = None, local: bool = False, manifest: str | os.PathLike | None = None,
                  fix: str | None = None) -> bytes:
    """The bytes of ``path``, read once and checked like :func:`verify_file` (the bytes hashed are those returned)."""
    data = _checked(path, sha256, size, True, name, filename, fix, manifest, local)
    assert data is not None
    return data


# ---------------------------------------------------------------------------------------------
# resolution


def get_record(name: str, manifest: Manifest | None = None) -> CheckpointRecord:
    """The manifest record of ``name``; a clear error listing the names that have one otherwise."""
    model_meta(name)  # unknown names: the registry's error with close matches
    m = manifest if manifest is not None else load_manifest()
    if name not in m.checkpoints:
        have = ", ".join(sorted(m.checkpoints)) or "(none yet)"
        raise CheckpointNotFoundError(
            f"{name!r} is registered but has no pretrained checkpoint in {m.path}. "
            f"Models with checkpoints (zoo.list_models(pretrained=True)): {have}. "
            f"Use zoo.create({name!r}) for random weights, or pass path= to your own weights.")
    return m.checkpoints[name]


def local_candidates(name: str, manifest: Manifest | None = None) -> list[Path]:
    """Local folders searched, in order: ``$ZOO_CHECKPOINTS/<name>``, ``<repo>/checkpoints/<name>``."""
    m = manifest if manifest is not None else load_manifest()
    out = []
    if os.environ.get("ZOO_CHECKPOINTS"):
        out.append(Path(os.environ["ZOO_CHECKPOINTS"]).expanduser() / name)
    # the checkout next to *this* manifest (m.path may differ from $ZOO_MANIFEST when passed in)
    out.append((Path(m.path).resolve().parent / "checkpoints" if m.path is not None
                else default_checkpoints_dir()) / name)
    return out


def files_from_path(path: str | os.PathLike, wanted: Iterable[str]) -> dict[str, Path]:
    """Map ``wanted`` file names to files of an explicit folder / ``.safetensors`` file (no verification)."""
    path, wanted = Path(path).expanduser(), list(wanted)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ValueError(f"{path}: expected a checkpoint folder or a .safetensors file")
        # a bare weights file stands for model.safetensors; any other wanted file is its sibling
        found = {"model.safetensors": path}
        folder = path.parent
    elif path.is_dir():
        found, folder = {}, path
    else:
        raise CheckpointNotFoundError(f"path {path} does not exist")
    for f in wanted:
        if f not in found:
            if not (folder / f).is_file():
                raise CheckpointNotFoundError(f"path {path}: no {f} in {folder}")
            found[f] = folder / f
    return {f: found[f] for f in wanted}


def _unusable(folder: Path, wanted: list[str]) -> list[str]:
    """Why ``folder`` cannot serve ``wanted`` (empty: it can)."""
    why = []
    for f in wanted:
        p = folder / f
        if p.is_file():
            continue
        if p.is_symlink() and not p.exists():
            why.append(f"{f} is a dangling symlink to {os.readlink(p)}")
        elif p.exists() or p.is_symlink():
            why.append(f"{f} is not a regular file")
        else:
            why.append(f"{f} is missing")
    return why


def _fix(source: str, record: CheckpointRecord, p: Path, checkout: bool = False, evicted: str = "") -> str:
    """The advice of a checksum error, by source; it never suggests deleting a folder the zoo did not create.

    ``source`` is ``path`` (the caller's own ``path=``), ``folder`` (``$ZOO_CHECKPOINTS/<name>`` or,
    ``checkout``, the git checkout's ``checkpoints/<name>``) or ``cache`` (``evicted`` says what was
    done to the cache file).
    """
    n, folder = record.name, p.parent  # the folder that holds the file, not a symlink's target folder
    published = record.hub.revision is not None
    retrained = (f"if you retrained {n} on purpose, record the new hashes with "
                 f"zoo.hub.update_entry({n!r}, {str(folder)!r})")
    if source == "path":
        own = f"; {retrained}" if p.name == "model.safetensors" else ""
        return (f"these are not the pinned weights of {n}: restore the original file, or drop path= to use the "
                f"verified copy; load your own (e.g. fine-tuned) weights with zoo.load({n!r}, path=..., verify=False) "
                f"(CLI: --weights){own}")
    if source == "folder":
        if checkout:
            restore = f"restore it with `git checkout -- checkpoints/{n}` (or re-export it with `zoo export`)"
        else:
            restore = f"restore the original file in {folder}"
        if published:
            fallback = f", or remove {folder} to fall back to the Hub copy (`zoo prefetch {n}`)"
        elif not checkout:
            fallback = f", or remove {folder} to use the git checkout's checkpoints/{n}/"
        else:
            fallback = ""
        return f"{restore}{fallback}; {retrained}"
    return (f"{evicted or 'load again to download it again'}. If the same error comes back, the server ({hf_endpoint()}) serves other bytes than the "
            f"manifest pins: check HF_ENDPOINT and hub.repo_id / hub.revision in the manifest")


def _evict(pointer: Path, storage: Path, name: str) -> str:
    """Remove a Hugging Face cache file that failed verification: the snapshot pointer and its blob."""
    blob = pointer.resolve() if pointer.is_symlink() else None
    try:
        pointer.unlink(missing_ok=True)
        if blob is not None and blob.parent == (storage / "blobs").resolve() and blob.is_file():
            blob.unlink()  # a blob outside the cache's blobs/ is not ours to delete
    except OSError as e:
        return (f"it could not be removed from the cache ({e}): delete {pointer}"
                + (f" and {blob}" if blob is not None else "") + ", then load again")
    return (f"it was removed from the Hugging Face cache ({pointer}" + (f" and {blob}" if blob is not None else "")
            + f"): load again, or run `zoo prefetch {name}`, to download it again")


def _verify_all(found: dict[str, Path], record: CheckpointRecord, source: str, *,
                manifest: str | os.PathLike | None = None, checkout: bool = False, storage: Path | None = None,
                data: dict[str, bytes] | None = None) -> dict[str, Path]:
    """Verify ``found`` (from ``source``, see :func:`_fix`); with ``data``, read each file once into it.

    A cache file (``storage``: its repo folder of the cache) that fails is removed from the cache first.
    """
    for f, p in found.items():
        fr: FileRecord = record.files[f]
        what = f"{f} of {record.name}"
        if not p.is_file():
            raise ChecksumError(f"{what}: {p} is missing (expected sha256 {fr.sha256}, size {fr.size} bytes); "
                                f"{_fix(source, record, p, checkout=checkout)}")
        shown = _shown(p)
        actual, actual_size, raw = _digest(p, fr.size, keep=data is not None)
        if actual == fr.sha256 and actual_size == fr.size:
            if data is not None:
                assert raw is not None
                data[f] = raw
            continue
        evicted = _evict(p, storage, record.name) if source == "cache" and storage is not None else ""
        msg = str(_mismatch(what, shown, fr.sha256, fr.size, actual, actual_size,
                            _fix(source, record, p, checkout=checkout, evicted=evicted), manifest))
        if source == "cache" and not record.hub.published:
            msg += (f"\n  note: published is false: the files changed after {record.hub.repo_id}"
                    f"@{record.hub.revision} was pushed; run `zoo publish {record.name} --repo-id "
                    f"{record.hub.repo_id}` to push them")
        raise ChecksumError(msg)
    return found


def _resolve(name: str, path: str | os.PathLike | None, files: Iterable[str] | None,
             cache_dir: str | os.PathLike | None, manifest: Manifest | None,
             data: dict[str, bytes] | None) -> dict[str, Path]:
    m = manifest if manifest is not None else load_manifest()
    record = get_record(name, m)
    wanted = list(files) if files is not None else sorted(record.files)
    unknown = [f for f in wanted if f not in record.files]
    if unknown:
        raise CheckpointNotFoundError(f"{name}: the manifest lists no {', '.join(unknown)} "
                                      f"(it has {', '.join(sorted(record.files))})")

    if path is not None:
        found = files_from_path(path, wanted)
        log.info("%s: using explicit path %s", name, path)
        return _verify_all(found, record, "path", manifest=m.path, data=data)

    looked = []
    folders = local_candidates(name, m)
    for folder in folders:
        looked.append(str(folder))
        why = _unusable(folder, wanted)
        if not why:
            log.info("%s: using local folder %s", name, folder)
            return _verify_all({f: folder / f for f in wanted}, record, "folder", manifest=m.path,
                               checkout=folder == folders[-1], data=data)
        if folder.exists() or folder.is_symlink():  # there, but unusable: say so, then look further
            warnings.warn(f"{folder} cannot be used for {name} ({'; '.join(why)}): skipped, looking in the "
                          f"next source", stacklevel=4)

    if record.hub.revision is None:
        raise CheckpointNotFoundError(
            f"{name} is not published on the Hub yet (hub.revision is null in {m.path}), and no local "
            f"folder has {', '.join(wanted)}. Its weights come from a git checkout's checkpoints/{name}/ "
            f"folder or from $ZOO_CHECKPOINTS/{name}/ (looked in: {', '.join(looked) or 'nothing'}); "
            f"or pass path= to a folder or .safetensors file.")
    return _download(record, wanted, cache_dir=cache_dir, looked=looked, manifest=m.path, data=data)


def resolve_files(name: str, path: str | os.PathLike | None = None, *, files: Iterable[str] | None = None,
                  cache_dir: str | os.PathLike | None = None, manifest: Manifest | None = None) -> dict[str, Path]:
    """Map each checkpoint file of ``name`` to a verified local path (see module docstring for the order).

    Args:
        name: registry name with a manifest record.
        path: explicit folder or ``.safetensors`` file; it wins over every other source.
        files: file names to resolve (default: all files of the record).
        cache_dir: Hugging Face cache (default :func:`hf_cache_dir`).
        manifest: an already loaded manifest (default: :func:`load_manifest`).

    Raises:
        ChecksumError: a file differs from the manifest.
        CheckpointNotFoundError: no source has the files (the message says where it looked).
    """
    return _resolve(name, path, files, cache_dir, manifest, None)


def read_verified_file(name: str, filename: str = "model.safetensors", path: str | os.PathLike | None = None, *,
                       cache_dir: str | os.PathLike | None = None,
                       manifest: Manifest | None = None) -> tuple[Path, bytes]:
    """One file of ``name``, resolved like :func:`resolve_files`, and its bytes: read once, those bytes hashed.

    A file swapped on disk after the check cannot be loaded instead (what ``zoo.load`` uses).
    """
    data: dict[str, bytes] = {}
    found = _resolve(name, path, [filename], cache_dir, manifest, data)
    return found[filename], data[filename]


def download_files(record: CheckpointRecord, files: Iterable[str] | None = None, *,
                   cache_dir: str | os.PathLike | None = None, force: bool = False,
                   looked: list[str] | None = None, manifest: str | os.PathLike | None = None) -> dict[str, Path]:
    """Files of ``record`` from the Hugging Face cache, downloading what is missing; all verified.

    The revision is the manifest's pinned commit, so a cached file needs no network at all.
    ``force`` downloads again and re-points the cache at the new, verified file. ``manifest``
    names the manifest file in error messages.
    """
    return _download(record, list(files) if files is not None else sorted(record.files), cache_dir=cache_dir,
                     force=force, looked=looked, manifest=manifest, data=None)


def _download(record: CheckpointRecord, wanted: list[str], *, cache_dir: str | os.PathLike | None,
              force: bool = False, looked: list[str] | None, manifest: str | os.PathLike | None,
              data: dict[str, bytes] | None) -> dict[str, Path]:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    cache = Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()
    rev = record.hub.revision
    if rev is None:
        raise CheckpointNotFoundError(f"{record.name} has no pinned Hub revision (not published)")
    storage = cache / ("models--" + record.hub.repo_id.replace("/", "--"))
    where = f"looked in: {', '.join(looked)}" if looked else "no local folder configured"

    found: dict[str, Path] = {}
    if not force:
        for f in wanted:
            try:
                found[f] = Path(hf_hub_download(repo_id=record.hub.repo_id, filename=f, revision=rev,
                                                cache_dir=str(cache), local_files_only=True))
            except LocalEntryNotFoundError:
                pass
    missing = [f for f in wanted if f not in found]
    if not missing:
        log.info("%s: using the Hugging Face cache %s", record.name, cache)
        return _verify_all(found, record, "cache", manifest=manifest, storage=storage, data=data)

    if hf_offline():
        raise CheckpointNotFoundError(
            f"{record.name} is not in the Hugging Face cache ({cache}) at revision {rev} and HF_HUB_OFFLINE is "
            f"set ({where}; no download tried). On a machine with network run `zoo prefetch {record.name}` "
            f"(same HF_HOME / --cache-dir), or copy the checkpoint folder to $ZOO_CHECKPOINTS/{record.name}/.")
    endpoint = hf_endpoint()
    for f in missing:
        try:
            found[f] = _fetch(record, f, storage, endpoint, manifest)
        except HfHubHTTPError as e:
            # 401/404...: the manifest points at a repo, revision or file the endpoint does not serve
            raise CheckpointNotFoundError(
                f"{endpoint} refused {record.name} ({record.hub.repo_id}@{rev}): {str(e).rstrip('.')}. Check "
                f"hub.repo_id / hub.revision in the manifest, HF_ENDPOINT, and HF_TOKEN for a private repo.") from e
    log.info("%s: downloaded from %s into %s", record.name, endpoint, cache)
    return _verify_all({f: found[f] for f in wanted}, record, "cache", manifest=manifest, storage=storage, data=data)


def _fetch(record: CheckpointRecord, fname: str, storage: Path, endpoint: str,
           manifest: str | os.PathLike | None) -> Path:
    """Download ``fname`` of ``record`` into the cache folder ``storage``; return its snapshot pointer.

    Why not ``hf_hub_download``: it trusts the server's sizes (a mirror that announces 2 GB writes
    2 GB), has no overall deadline (a drip just under the read timeout runs for hours; a silent
    HEAD is retried for minutes) and points the snapshot at whatever it received, before zoo can
    verify it. Running it in a worker thread abandoned at a deadline would leave it writing. So
    the file is streamed here, with every bound in one loop: the announced size and LFS sha256
    are checked first; the body goes to a temporary file in ``blobs/``, is cut at the manifest's
    size and the deadline is checked after every chunk; only a file whose size and sha256 match
    is renamed to its blob, and the pointer is replaced atomically (which also repairs a pointer
    to a bad blob, so ``force`` really re-fetches). The layout is huggingface_hub's own
    (``blobs/<etag>``, ``snapshots/<commit>/<file>`` a relative symlink), so it finds the file
    offline later.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import build_hf_headers, get_session

    fr = record.files[fname]
    n, rev = record.name, record.hub.revision
    assert rev is not None
    head_timeout, timeout, deadline = hub_timeouts()
    t_end = time.monotonic() + deadline
    url = hf_hub_url(record.hub.repo_id, fname, revision=rev, endpoint=endpoint)
    what = f"{fname} of {n} from {endpoint} ({record.hub.repo_id}@{rev})"
    errors = _transport_errors()
    other = ("The server serves another file than the one pinned: check HF_ENDPOINT and hub.repo_id / "
             "hub.revision in the manifest.")
    try:
        meta = get_hf_file_metadata(url, timeout=head_timeout, library_name="unfolding-zoo",
                                    library_version=package_version(), endpoint=endpoint)
    except HfHubHTTPError:
        raise
    except errors as e:
        if _is_timeout(e):
            raise CheckpointNotFoundError(
                f"{endpoint} did not answer the request for {what} within {head_timeout:g} s (ZOO_HUB_TIMEOUT, "
                f"else HF_HUB_ETAG_TIMEOUT); nothing was downloaded. Check the network / HF_ENDPOINT, or raise "
                f"ZOO_HUB_TIMEOUT for a slow link. {_offline_hint(n)}") from e
        raise CheckpointNotFoundError(
            f"could not download {what} ({type(e).__name__}: {e}); nothing was downloaded. Check the network / "
            f"HF_ENDPOINT, then retry. {_offline_hint(n)}") from e
    if meta.size is not None and meta.size != fr.size:
        raise ChecksumError(f"{endpoint} announces {meta.size} bytes for {what}, but the manifest "
                            f"({_label(manifest)}) pins {fr.size} bytes; nothing was downloaded. {other}")
    etag = meta.etag or ""
    if re.fullmatch(r"[0-9a-f]{64}", etag) and etag != fr.sha256:  # an LFS file: its ETag is its sha256
        raise ChecksumError(f"{endpoint} announces sha256 {etag} for {what}, but the manifest ({_label(manifest)}) "
                            f"pins sha256 {fr.sha256}; nothing was downloaded. {other}")
    blob_name = etag if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", etag) else fr.sha256

    blobs = storage / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    # a download killed by SIGTERM/SIGKILL leaves its temporary file: never used, removed by the next
    # download of that blob once it is older than one deadline (so a concurrent download's file is kept)
    for stale in blobs.glob(f"{blob_name}.zoo-*.incomplete"):
        try:
            if time.time() - stale.stat().st_mtime > max(deadline, 60.0):
                stale.unlink()
        except OSError:
            pass
    fd, tmp_name = tempfile.mkstemp(prefix=f"{blob_name}.zoo-", suffix=".incomplete", dir=blobs)
    tmp = Path(tmp_name)
    headers = build_hf_headers(library_name="unfolding-zoo", library_version=package_version())
    headers["Accept-Encoding"] = "identity"  # the bytes as pinned, and a Content-Length to compare

    def get(out) -> None:  # append the body from out.tell(); every bound is checked here
        start = out.tell()
        if start and start >= fr.size:  # dropped after the last byte: nothing left to ask for
            return
        with get_session().stream("GET", url, headers={**headers, **({"Range": f"bytes={start}-"} if start else {})},
                                  timeout=timeout, follow_redirects=True) as r:
            if r.status_code == 200 and start:  # the server ignored the Range: start over
                out.seek(0)
                out.truncate()
                start = 0
            elif r.status_code not in (200, 206):
                raise CheckpointNotFoundError(
                    f"{endpoint} answered HTTP {r.status_code} to the download of {what}; nothing was cached. "
                    f"Check HF_ENDPOINT and hub.repo_id / hub.revision in the manifest, then retry.")
            length = r.headers.get("Content-Length", "")
            if length.isdigit() and start + int(length) > fr.size:
                raise ChecksumError(f"{endpoint} is sending {start + int(length)} bytes for {what}, but the manifest "
                                    f"({_label(manifest)}) pins {fr.size} bytes; the download was stopped and "
                                    f"nothing was cached. {other}")
            for chunk in r.iter_bytes():
                if out.tell() + len(chunk) > fr.size:
                    raise ChecksumError(f"{endpoint} sent more than the {fr.size} bytes the manifest "
                                        f"({_label(manifest)}) pins for {what}; the download was stopped and "
                                        f"nothing was cached. {other}")
                out.write(chunk)
                if time.monotonic() > t_end:
                    raise CheckpointNotFoundError(
                        f"the download of {what} did not finish within {deadline:g} s (ZOO_HUB_DEADLINE; "
                        f"{out.tell()} of {fr.size} bytes received); nothing was cached. The server is too slow: "
                        f"retry later or raise ZOO_HUB_DEADLINE. {_offline_hint(n)}")

    try:
        with os.fdopen(fd, "wb") as out:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    get(out)
                    break
                except (ChecksumError, CheckpointNotFoundError):
                    raise
                except errors as e:
                    cause = f"{type(e).__name__}: {e}".rstrip(": ")
                    if attempt == _ATTEMPTS or time.monotonic() >= t_end:
                        slow = (f" (each read waits at most {timeout:g} s: ZOO_HUB_TIMEOUT, else "
                                f"HF_HUB_DOWNLOAD_TIMEOUT)" if _is_timeout(e) else "")
                        raise CheckpointNotFoundError(
                            f"the download of {what} was interrupted after {out.tell()} of {fr.size} bytes, "
                            f"{attempt} attempts ({cause}){slow}; nothing was cached. It is safe to retry: load "
                            f"again or run `zoo prefetch {n}`. {_offline_hint(n)}") from e
                    log.warning("%s: download of %s interrupted (%s); resuming at byte %d", n, fname, cause,
                                out.tell())
                    time.sleep(min(0.5, max(0.0, t_end - time.monotonic())))
        actual, actual_size = sha256_file(tmp), tmp.stat().st_size
        if actual != fr.sha256 or actual_size != fr.size:
            raise _mismatch(f"{fname} of {n}", f"{url} (downloaded)", fr.sha256, fr.size, actual, actual_size,
                            f"nothing was cached. {other}", manifest)
        mask = os.umask(0)  # the mode a plain open() gives (mkstemp's is 0600)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        blob = blobs / blob_name
        os.replace(tmp, blob)
    finally:
        tmp.unlink(missing_ok=True)
    pointer = storage / "snapshots" / rev / Path(*fname.split("/"))
    pointer.parent.mkdir(parents=True, exist_ok=True)
    link = pointer.with_name(f".{pointer.name}.zoo-{os.getpid()}-{threading.get_ident()}")
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(os.path.relpath(blob, pointer.parent))
    except OSError:  # no symlinks here (Windows without developer mode): a copy, as huggingface_hub does
        shutil.copyfile(blob, link)
    os.replace(link, pointer)  # atomic; replaces a pointer to an old (bad) blob
    return pointer


def prefetch(names: Iterable[str] | None = None, cache_dir: str | os.PathLike | None = None,
             force: bool = False) -> dict[str, dict[str, Path]]:
    """Download and verify every file of each checkpoint into the Hugging Face cache.

    Args:
        names: registry names; default: every checkpoint with ``published: true`` (others are
            skipped with a log line). A named checkpoint without a revision is an error.
        cache_dir: Hub cache folder (default ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).
        force: re-download even if cached, and re-point the cache at the new, verified file.

    Returns:
        name → file name → verified path in the cache.

    Raises:
        CheckpointNotFoundError: a named checkpoint is unknown to the manifest or unpublished, or a
            download failed (refused, timed out, interrupted, past ``ZOO_HUB_DEADLINE``).
        ChecksumError: a downloaded or cached file differs from the manifest (a cached one is
            removed from the cache; nothing wrong is ever cached).
    """
    m = load_manifest()
    if names is None:
        todo = []
        for n, rec in sorted(m.checkpoints.items()):
            if rec.hub.published:
                todo.append(n)
            else:
                log.warning("prefetch: skipping %s (published is false in the manifest)", n)
    else:
        todo = list(names)
    out: dict[str, dict[str, Path]] = {}
    for n in todo:
        rec = get_record(n, m)
        if rec.hub.revision is None:
            raise CheckpointNotFoundError(
                f"{n} is not published on the Hub (hub.revision is null in {m.path}); nothing to prefetch. "
                f"Its weights live in a git checkout's checkpoints/{n}/ folder.")
        out[n] = download_files(rec, cache_dir=cache_dir, force=force, manifest=m.path)
    return out
