"""``zoo export``: a training run's export folder → ``checkpoints/<name>/`` + its manifest record.

All or nothing: the manifest is read and validated and the weights are checked to load strictly into
the registered architecture before anything is written; weights, config, learning curve and card
are written into a staging folder next to the destination, the manifest is written once, and then
the staged folder is swapped into place (the old one is kept until the swap succeeded). On any
failure the old checkpoint folder and the manifest are as they were, and no folder is left behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from zoo.hub.card import refresh_card
from zoo.hub.loading import StateDictMismatchError, load_state_dict_strict, read_safetensors
from zoo.hub.manifest import (CheckpointRecord, Manifest, build_record, default_checkpoints_dir, load_manifest,
                              manifest_path)
from zoo.utils.files import atomic_write, file_lock

__all__ = ["export_run"]

OWN = ("model.safetensors", "config.json", "learning_curve.json", "README.md")  # what an export (re)writes


def export_run(run_dir: str | Path, name: str, build: Callable[..., nn.Module], *, dest: str | Path | None = None,
               dtype: str = "float32", overwrite: bool = False, recipe: str = "", data: str = "", init: str = "",
               hardware: str = "", notes: str = "", extra_training: dict[str, Any] | None = None) -> CheckpointRecord:
    """Copy the run's ``model.safetensors`` (in ``dtype``) + ``config.json`` into the checkpoint folder.

    Args:
        run_dir: the run's export folder (written by :class:`~zoo.training.ExportWeights`).
        name: registry name the weights are for (must match ``config.json``).
        build: ``build(**config)`` returns the registered network (``zoo.create`` bound to ``name``).
        dest: checkpoint folder (default ``checkpoints/<name>``).
        dtype: storage dtype; ``float16`` halves the file, loading casts back to float32.
        overwrite: replace existing weights (only when the new ones are better on validation data).
        recipe, data, init, hardware, notes, extra_training: the manifest's ``training`` block.

    Other files of an existing checkpoint folder (e.g. ``adapters.safetensors``) are carried over.
    """
    src = Path(run_dir)
    for f in ("model.safetensors", "config.json"):
        if not (src / f).is_file():
            raise FileNotFoundError(f"{src/f} missing: point at a run's export folder (ExportWeights callback)")
    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model") != name:
        raise ValueError(f"{src} holds weights of {cfg.get('model')!r}, not {name!r}")
    dst = Path(dest) if dest else default_checkpoints_dir() / name
    if (dst / "model.safetensors").exists() and not overwrite:
        raise FileExistsError(f"{dst}/model.safetensors exists; pass --overwrite (only when the new weights are better)")
    with file_lock(manifest_path()):  # one manifest read-modify-write at a time (bench --record, export, publish)
        m = load_manifest()  # an unreadable manifest fails here, before anything is written
        sd = read_safetensors(src / "model.safetensors")
        try:
            net = build(**cfg["config"])
        except TypeError as e:  # an unknown or missing option
            raise ValueError(f"{src}/config.json does not build {name}: {e}") from None
        try:
            load_state_dict_strict(net, sd, source=f"the weights in {src}")
        except StateDictMismatchError as e:
            raise StateDictMismatchError(f"zoo export {name}: {e}") from None
        curve = json.loads((src / "learning_curve.json").read_text()) if (src / "learning_curve.json").is_file() else []
        # a monitored run (ExportWeights(monitor=...)) marks the rows it exported: the weights are the last of those
        sel = ([r for r in curve if r.get("exported")] or curve[-1:] or [None])[-1]
        selected = {} if sel is None or sel["step"] == curve[-1]["step"] else {
            "selected": f"best validation of the run: step {sel['step']} of {curve[-1]['step']} "
                        f"({curve[-1]['wall_s']:.0f} s wall for the whole run)"}
        training = {
            "recipe": recipe, "data": data, "init": init,
            "steps": int(sel["step"]) if sel else 0, "epochs": int(sel["epoch"]) + 1 if sel else 0,
            "wall_time_s": float(sel["wall_s"]) if sel else 0.0, **selected,
            "hardware": hardware or f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
            "stored_dtype": dtype, **({"notes": notes} if notes else {}), **(extra_training or {}),
        }
        return _install(m, name, dst, sd, cfg, curve, training, dtype)


def _install(m: Manifest, name: str, dst: Path, sd: dict[str, torch.Tensor], cfg: dict, curve: list[dict],
             training: dict[str, Any], dtype: str) -> CheckpointRecord:
    """Stage the checkpoint folder next to ``dst``, write the manifest once, swap the folder in; undo on failure."""
    from safetensors.torch import save_file

    made = _missing_parents(dst.parent)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # The card reads the learning curve from <manifest folder>/checkpoints/<name>: the staging folder is laid out
    # as one, so the card shows the new curve before the folder is in place.
    stage = Path(tempfile.mkdtemp(prefix=f".{dst.name}.export-", dir=dst.parent))
    staged = stage / "checkpoints" / name
    old_manifest = m.path.read_bytes() if m.path is not None and m.path.is_file() else None
    swapped = False
    try:
        staged.mkdir(parents=True)
        if dst.is_dir():
            for p in dst.iterdir():
                if p.is_file() and p.name not in OWN:
                    shutil.copy2(p, staged / p.name)
        dt = getattr(torch, dtype)
        with atomic_write(staged / "model.safetensors") as tmp:
            save_file({k: (v.to(dt) if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
                      str(tmp), metadata={"stored_dtype": dtype})
        with atomic_write(staged / "config.json") as tmp:
            tmp.write_text(json.dumps(cfg, indent=2) + "\n")
        if curve:
            with atomic_write(staged / "learning_curve.json") as tmp:
                tmp.write_text(json.dumps(curve, indent=1) + "\n")
        m.checkpoints[name] = build_record(name, staged, training=training, previous=m.checkpoints.get(name))
        refresh_card(name, staged, repin=False, manifest=Manifest(m.checkpoints, stage / "manifest.json"))
        m.checkpoints[name] = build_record(name, staged, previous=m.checkpoints[name])  # pins the new card
        m.save()  # the one manifest write
        _swap(staged, dst, stage / "old")
        swapped = True
    except BaseException:
        if m.path is not None:  # the swap failed after the manifest was written: put the old one back
            _restore(m.path, old_manifest)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # the staging folder, or the old checkpoint folder after the swap
        if not swapped:
            for d in made:  # parents this export created, innermost first
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
    return m.checkpoints[name]


def _missing_parents(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, innermost first."""
    out = []
    while not folder.exists() and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


def _restore(path: Path, data: bytes | None) -> None:
    """Give ``path`` its old bytes back (``None``: it did not exist)."""
    if data is None:
        path.unlink(missing_ok=True)
    elif not path.is_file() or path.read_bytes() != data:
        with atomic_write(path, overwrite=True) as tmp:
            tmp.write_bytes(data)


def _swap(staged: Path, dst: Path, old: Path) -> None:
    """Rename ``staged`` onto ``dst``; an existing ``dst`` is moved to ``old`` first and moved back if that fails."""
    if dst.exists():
        os.replace(dst, old)
    try:
        os.replace(staged, dst)
    except BaseException:
        if old.exists():
            os.replace(old, dst)
        raise
