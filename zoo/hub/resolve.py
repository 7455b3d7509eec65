"""Find a checkpoint's files and prove they are the pinned bytes.

Resolution order for ``resolve_files(name)`` (the first source that has the files wins):

1. explicit ``path``: a checkpoint folder, or a ``.safetensors`` file (used as ``model.safetensors``);
2. ``$ZOO_CHECKPOINTS/<name>/``, then the git checkout's ``checkpoints/<name>/`` (next to the manifest);
3. the Hugging Face cache, at the manifest's pinned commit (no network);
4. a download from the Hub at that commit (``$HF_ENDPOINT`` honoured; refused if ``$HF_HUB_OFFLINE``).

Whatever the source, every file is checked against the manifest's sha256 and size
(:func:`verify_file`) before it is returned; a mismatch raises :class:`ChecksumError` and
nothing is loaded. huggingface_hub reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HOME``
only when it is imported, so they are read here at call time and passed explicitly.

Example:
    >>> from zoo.hub.resolve import resolve_files
    >>> resolve_files("lorun-cs-r25")["model.safetensors"]   # doctest: +SKIP
    PosixPath('.../checkpoints/lorun-cs-r25/model.safetensors')
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from pathlib import Path
from typing import Iterable

from zoo.hub.meta import model_meta
from zoo.utils.files import sha256_file
from zoo.hub.manifest import CheckpointRecord, FileRecord, Manifest, default_checkpoints_dir, load_manifest

__all__ = [
    "ChecksumError",
    "CheckpointNotFoundError",
    "verify_file",
    "get_record",
    "prefetch",
    "resolve_files",
    "download_files",
    "hf_cache_dir",
    "hf_endpoint",
    "hf_offline",
    "local_candidates",
    "files_from_path",
]

log = logging.getLogger("zoo.hub")

DEFAULT_ENDPOINT = "https://huggingface.co"


class ChecksumError(RuntimeError):
    """A checkpoint file's sha256 or size differs from the manifest; it was not loaded."""


class CheckpointNotFoundError(FileNotFoundError):
    """No source has the checkpoint (not in the manifest, not published, offline and not cached...)."""


# ---------------------------------------------------------------------------------------------
# environment, read at call time


def _version() -> str:
    try:
        return importlib.metadata.version("unfolding-zoo")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return "0+unknown"


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


# ---------------------------------------------------------------------------------------------
# verification


def _cache_fix(name: str | None, real: Path) -> str:
    return f"re-fetch it with `zoo prefetch --force {name or 'NAME'}` (or delete {real} and load again)"


def _local_fix(name: str | None, real: Path) -> str:
    # a local folder wins over the cache, so re-fetching alone would not help
    n = name or "NAME"
    return (f"restore the original file, or delete {real.parent} to fall back to the Hub copy "
            f"(`zoo prefetch {n}`); if you retrained {n} on purpose, record the new hashes with "
            f"zoo.hub.update_entry({n!r}, {str(real.parent)!r})")


def verify_file(path: str | os.PathLike, sha256: str, size: int, *, name: str | None = None,
                filename: str | None = None, local: bool = False) -> Path:
    """Return ``path`` if its size and sha256 equal the manifest's, else raise :class:`ChecksumError`.

    The size is compared too so that a truncated download is reported as such. For a file in
    the Hugging Face cache (a symlink into ``blobs/``) the message names the blob to delete;
    ``local=True`` (a checkpoint folder) words the fix for a folder instead.

    Example:
        >>> verify_file("checkpoints/x/model.safetensors", rec.sha256, rec.size)  # doctest: +SKIP
    """
    p = Path(path)
    real = p.resolve()
    fname = filename or p.name
    what = f"{fname} of {name}" if name else fname
    fix = (_local_fix if local else _cache_fix)(name, real)
    if not p.is_file():
        raise ChecksumError(f"{what}: {p} is missing (expected sha256 {sha256}, size {size} bytes); {fix}")
    actual_size = p.stat().st_size
    actual = sha256_file(p)
    if actual != sha256 or actual_size != size:
        kind = "truncated" if actual_size < size else "corrupt or modified"
        raise ChecksumError(
            f"checksum mismatch for {what} ({kind}); it was NOT loaded.\n"
            f"  file:     {p}" + (f" -> {real}" if real != p.absolute() else "") + "\n"
            f"  expected: sha256 {sha256}, size {size} bytes (checkpoints_manifest.json)\n"
            f"  actual:   sha256 {actual}, size {actual_size} bytes\n"
            f"  fix: {fix}"
        )
    return p


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


def _verify_all(found: dict[str, Path], record: CheckpointRecord, local: bool = False) -> dict[str, Path]:
    for f, p in found.items():
        fr: FileRecord = record.files[f]
        try:
            verify_file(p, fr.sha256, fr.size, name=record.name, filename=f, local=local)
        except ChecksumError as e:
            if local or record.hub.published:
                raise
            raise ChecksumError(f"{e}\n  note: published is false: the files changed after {record.hub.repo_id}"
                                f"@{record.hub.revision} was pushed; run `zoo publish {record.name} --repo-id "
                                f"{record.hub.repo_id}` to push them") from None
    return found


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
        return _verify_all(found, record, local=True)

    looked = []
    for folder in local_candidates(name, m):
        looked.append(str(folder))
        if all((folder / f).is_file() for f in wanted):
            log.info("%s: using local folder %s", name, folder)
            return _verify_all({f: folder / f for f in wanted}, record, local=True)

    if record.hub.revision is None:
        raise CheckpointNotFoundError(
            f"{name} is not published on the Hub yet (hub.revision is null in {m.path}), and no local "
            f"folder has {', '.join(wanted)}. Its weights come from a git checkout's checkpoints/{name}/ "
            f"folder or from $ZOO_CHECKPOINTS/{name}/ (looked in: {', '.join(looked) or 'nothing'}); "
            f"or pass path= to a folder or .safetensors file.")
    return download_files(record, wanted, cache_dir=cache_dir, looked=looked)


def download_files(record: CheckpointRecord, files: Iterable[str] | None = None, *,
                   cache_dir: str | os.PathLike | None = None, force: bool = False,
                   looked: list[str] | None = None) -> dict[str, Path]:
    """Files of ``record`` from the Hugging Face cache, downloading what is missing; all verified.

    The revision is the manifest's pinned commit, so a cached file needs no network at all.
    ``force`` re-downloads (and thereby repairs a corrupt cached blob).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    wanted = list(files) if files is not None else sorted(record.files)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()
    rev = record.hub.revision
    if rev is None:
        raise CheckpointNotFoundError(f"{record.name} has no pinned Hub revision (not published)")
    common = dict(repo_id=record.hub.repo_id, revision=rev, cache_dir=str(cache),
                  library_name="unfolding-zoo", library_version=_version())
    where = f"looked in: {', '.join(looked)}" if looked else "no local folder configured"

    found: dict[str, Path] = {}
    if not force:
        try:
            for f in wanted:
                found[f] = Path(hf_hub_download(filename=f, local_files_only=True, **common))
        except LocalEntryNotFoundError:
            found = {}
        else:
            log.info("%s: using the Hugging Face cache %s", record.name, cache)
            return _verify_all(found, record)

    if hf_offline():
        raise CheckpointNotFoundError(
            f"{record.name} is not in the Hugging Face cache ({cache}) at revision {rev} and HF_HUB_OFFLINE is "
            f"set ({where}; no download tried). On a machine with network run `zoo prefetch {record.name}` "
            f"(same HF_HOME / --cache-dir), or copy the checkpoint folder to $ZOO_CHECKPOINTS/{record.name}/.")
    endpoint = hf_endpoint()
    try:
        for f in wanted:
            found[f] = Path(hf_hub_download(filename=f, endpoint=endpoint, force_download=force, **common))
    except LocalEntryNotFoundError as e:
        # huggingface_hub's wording for "could not reach the server and not cached"
        raise CheckpointNotFoundError(
            f"could not download {record.name} from {endpoint} ({record.hub.repo_id}@{rev}) and it is not "
            f"cached in {cache} ({where}). Check the network / HF_ENDPOINT, or run "
            f"`zoo prefetch {record.name}` where the Hub is reachable. Cause: {e}") from e
    except HfHubHTTPError as e:
        # 401/404...: the manifest points at a repo, revision or file the endpoint does not serve
        raise CheckpointNotFoundError(
            f"{endpoint} refused {record.name} ({record.hub.repo_id}@{rev}): {str(e).rstrip('.')}. Check hub.repo_id / "
            f"hub.revision in the manifest, HF_ENDPOINT, and HF_TOKEN for a private repo.") from e
    log.info("%s: downloaded from %s into %s", record.name, endpoint, cache)
    return _verify_all(found, record)


def prefetch(names: Iterable[str] | None = None, cache_dir: str | os.PathLike | None = None,
             force: bool = False) -> dict[str, dict[str, Path]]:
    """Download and verify every file of each checkpoint into the Hugging Face cache.

    Args:
        names: registry names; default: every checkpoint with ``published: true`` (others are
            skipped with a log line). A named checkpoint without a revision is an error.
        cache_dir: Hub cache folder (default ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).
        force: re-download even if cached (repairs a corrupt blob).

    Returns:
        name → file name → verified path in the cache (huggingface_hub shows its own progress bars).

    Raises:
        CheckpointNotFoundError: a named checkpoint is unknown to the manifest or unpublished.
        ChecksumError: a downloaded or cached file differs from the manifest.
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
        out[n] = download_files(rec, cache_dir=cache_dir, force=force)
    return out
