"""``zoo export``: a training run's export folder → ``checkpoints/<name>/`` + its manifest record.

The weights are checked to load strictly into the registered architecture before anything is
written; weights, config, learning curve and card are written atomically and the manifest is
written once, at the end. A failed export into a new folder removes that folder.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from zoo.hub.card import refresh_card
from zoo.hub.manifest import CheckpointRecord, build_record, default_checkpoints_dir, load_manifest
from zoo.utils.files import atomic_write

__all__ = ["export_run"]


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
    """
    from safetensors.torch import load_file, save_file

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
    sd = load_file(str(src / "model.safetensors"))
    build(**cfg["config"]).load_state_dict(sd, strict=True)
    curve = json.loads((src / "learning_curve.json").read_text()) if (src / "learning_curve.json").is_file() else []
    training = {
        "recipe": recipe, "data": data, "init": init,
        "steps": int(curve[-1]["step"]) if curve else 0, "epochs": int(curve[-1]["epoch"]) + 1 if curve else 0,
        "wall_time_s": float(curve[-1]["wall_s"]) if curve else 0.0,
        "hardware": hardware or f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "stored_dtype": dtype, **({"notes": notes} if notes else {}), **(extra_training or {}),
    }
    created = not dst.exists()
    try:
        dt = getattr(torch, dtype)
        with atomic_write(dst / "model.safetensors", overwrite=True) as tmp:
            save_file({k: (v.to(dt) if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
                      str(tmp), metadata={"stored_dtype": dtype})
        with atomic_write(dst / "config.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(cfg, indent=2) + "\n")
        if curve:
            with atomic_write(dst / "learning_curve.json", overwrite=True) as tmp:
                tmp.write_text(json.dumps(curve, indent=1) + "\n")
        m = load_manifest()
        m.checkpoints[name] = build_record(name, dst, training=training, previous=m.checkpoints.get(name))
        refresh_card(name, dst, repin=False, manifest=m)  # the card shows the new record
        m.checkpoints[name] = build_record(name, dst, previous=m.checkpoints[name])  # pins the new card
        m.save()  # the one manifest write
    except BaseException:
        if created:
            shutil.rmtree(dst, ignore_errors=True)
        raise
    return m.checkpoints[name]
