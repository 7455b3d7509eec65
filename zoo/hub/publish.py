"""Push a checkpoint folder to the Hugging Face Hub and pin the resulting commit in the manifest.

Example:
    >>> from zoo.hub import publish
    >>> publish("lorun-cs-r25", "unfolding-zoo/lorun-cs-r25")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from zoo.hub.manifest import CheckpointRecord, build_record, checkpoint_files, default_checkpoints_dir, load_manifest, update_entry
from zoo.hub.resolve import hf_endpoint

__all__ = ["publish", "REQUIRED_FILES"]

log = logging.getLogger("zoo.hub")

REQUIRED_FILES = ("model.safetensors", "config.json", "README.md")


def publish(name: str, repo_id: str, folder: str | os.PathLike | None = None, token: str | None = None,
            private: bool = False) -> CheckpointRecord:
    """Upload ``checkpoints/<name>/`` to the Hub and pin the resulting commit in the manifest.

    The folder must hold ``model.safetensors``, ``config.json`` and ``README.md`` (see
    :func:`model_card`). Only the files the manifest pins are uploaded; afterwards the record's
    hashes are refreshed from the folder and ``hub`` becomes
    ``{"repo_id": repo_id, "revision": <commit sha>, "published": true}``.

    Returns:
        The updated :class:`~zoo.hub.manifest.CheckpointRecord`.
    """
    from huggingface_hub import HfApi

    m = load_manifest()
    folder = Path(folder) if folder is not None else default_checkpoints_dir() / name
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        hint = (f" Write the model card with zoo.hub.refresh_card({name!r}, {str(folder)!r})."
                if "README.md" in missing else "")
        raise FileNotFoundError(f"refusing to publish {name}: {folder} lacks {', '.join(missing)}.{hint}")
    # validates config.json / registry name before anything leaves the machine
    build_record(name, folder, previous=m.checkpoints.get(name))
    files = checkpoint_files(folder)

    api = HfApi(endpoint=hf_endpoint(), token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder), allow_patterns=files,
                             commit_message=f"Upload {name} ({', '.join(files)})")
    revision = getattr(info, "oid", None)
    log.info("published %s to %s@%s", name, repo_id, revision)
    return update_entry(name, folder, hub={"repo_id": repo_id, "revision": revision, "published": True},
                        path=m.path)
