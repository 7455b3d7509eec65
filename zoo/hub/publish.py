"""Fill the Hugging Face cache ahead of time (``prefetch``), push checkpoints (``publish``), model cards.

Example:
    >>> from zoo.hub import prefetch, publish, model_card
    >>> prefetch(["lorun-cs-r25"])                       # doctest: +SKIP  (then HF_HUB_OFFLINE=1 works)
    >>> publish("lorun-cs-r25", "unfolding-zoo/lorun-cs-r25")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

from zoo.hub.files import atomic_write
from zoo.hub.manifest import (
    CheckpointRecord,
    build_record,
    checkpoint_files,
    default_checkpoints_dir,
    load_manifest,
    update_entry,
)
from zoo.hub.resolve import CheckpointNotFoundError, download_files, get_record, hf_endpoint, local_candidates

__all__ = ["prefetch", "publish", "model_card", "refresh_card", "REQUIRED_FILES"]

log = logging.getLogger("zoo.hub")

REQUIRED_FILES = ("model.safetensors", "config.json", "README.md")


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


def _yaml_list(items: list[str]) -> str:
    return "".join(f"\n- {i}" for i in items) if items else " []"


def model_card(name: str) -> str:
    """Model card (``README.md``) for ``name`` from the registry and the manifest.

    YAML front matter (``library_name: unfolding-zoo``, license, tags, datasets), then the
    description, the training block, a bench table and the one-line usage.
    """
    from zoo.registry import get_entry

    entry = get_entry(name)
    m = load_manifest()
    rec = m.checkpoints.get(name)
    training = rec.training if rec else None
    bench = rec.bench if rec else None
    datasets = [training.data] if training and training.data else []
    tags = ["image-restoration", "deep-unfolding", entry.task, entry.architecture, "pytorch", "safetensors"]
    lines = ["---", "library_name: unfolding-zoo", f"license: {entry.licence.lower()}",
             f"tags:{_yaml_list(tags)}", f"datasets:{_yaml_list(datasets)}", "---", "",
             f"# {name}", "", entry.description or f"{entry.architecture} for {entry.task}.", ""]
    if entry.paper:
        lines += [f"Paper: {entry.paper}", ""]
    lines += ["## Usage", "", "```python", "import zoo", "", f'net = zoo.load("{name}")', "```", ""]
    if rec is not None:
        lines += ["## Configuration", "", "```json"]
        import json

        lines += [json.dumps(rec.config, indent=2, sort_keys=True), "```", ""]
    if training is not None:
        lines += ["## Training", ""]
        for k, v in training.to_dict().items():
            lines.append(f"- **{k}**: {v}")
        lines.append("")
    curve = _learning_curve(name, m)
    if curve:
        keys = [k for k in ("val/psnr", "val/ssim", "train/loss") if any(k in c for c in curve)]
        lead = ["phase"] if any("phase" in c for c in curve) else []
        lead += ["step", "epoch", "wall_s"]
        lines += ["## Learning curve", "", "(validation on held-out training images, from `learning_curve.json`)", "",
                  "| " + " | ".join(lead + keys) + " |", "|" + "---|" * (len(lead) + len(keys))]
        for c in curve:
            lines.append("| " + " | ".join(str(c.get(k, "")) for k in lead) + " | "
                         + " | ".join(f"{c[k]:.4g}" if k in c else "–" for k in keys) + " |")
        lines.append("")
    if bench is not None and bench.results:
        metrics = sorted({k for r in bench.results.values() for k in r})
        lines += ["## Results", "", "| dataset | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for ds, r in bench.results.items():
            lines.append(f"| {ds} | " + " | ".join(f"{r[k]:.4g}" if k in r else "–" for k in metrics) + " |")
        lines.append("")
        if bench.command:
            lines += [f"Reproduce with `{bench.command}`.", ""]
        if bench.protocol:
            lines += ["Protocol: " + ", ".join(f"{k}={v}" for k, v in bench.protocol.items()), ""]
    lines += ["Weights are pinned by sha256 in unfolding-zoo's `checkpoints_manifest.json` and verified on load.", ""]
    return "\n".join(lines)


def _learning_curve(name: str, m) -> list[dict]:
    import json

    for f in local_candidates(name, m):
        p = Path(f) / "learning_curve.json"
        if p.is_file():
            try:
                return list(json.loads(p.read_text(encoding="utf-8")))
            except ValueError:
                return []
    return []


def refresh_card(name: str, folder: str | os.PathLike | None = None) -> Path:
    """(Re)write ``README.md`` of the checkpoint folder from :func:`model_card` and re-pin its hash.

    ``folder`` defaults to the first local folder holding ``model.safetensors``
    (``$ZOO_CHECKPOINTS/<name>``, then ``checkpoints/<name>``). If the checkpoint was already
    published, the Hub's README now differs from the manifest: ``published`` becomes false
    (the pinned revision is kept, the weights there are unchanged) until ``zoo publish`` runs again.

    Returns:
        The README path.
    """
    m = load_manifest()
    get_record(name, m)  # only cards of recorded checkpoints: the card shows their manifest data
    if folder is None:
        hits = [f for f in local_candidates(name, m) if (f / "model.safetensors").is_file()]
        if not hits:
            raise FileNotFoundError(f"no local checkpoint folder of {name} (looked in: "
                                    f"{', '.join(map(str, local_candidates(name, m)))})")
        folder = hits[0]
    folder = Path(folder)
    readme = folder / "README.md"
    text = model_card(name)
    if readme.is_file() and readme.read_text(encoding="utf-8") == text:
        return readme
    with atomic_write(readme, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    update_entry(name, folder, path=m.path)  # re-pins README.md (and flags a stale Hub copy)
    return readme
