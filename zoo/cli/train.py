"""``zoo export-run`` (a training run → ``checkpoints/NAME`` + manifest) and ``zoo finetune``."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.api import create
from zoo.hub.export import export_run
from zoo.tasks.finetune import finetune_args

__all__ = ["add_commands"]


def cmd_export(ns: argparse.Namespace) -> int:
    """Turn a training run's export folder into ``checkpoints/<name>/`` + a manifest entry."""
    rec = export_run(ns.run_dir, ns.name, lambda **cfg: create(ns.name, **cfg), dest=ns.dest, dtype=ns.dtype,
                     overwrite=ns.overwrite, recipe=ns.recipe or "", data=ns.data or "", init=ns.init or "",
                     hardware=ns.hardware or "", notes=ns.notes or "")
    print(f"exported {ns.name} → {Path(ns.dest) if ns.dest else 'checkpoints/' + ns.name} and recorded it in the "
          f"manifest ({len(rec.files)} files pinned)")
    return 0


def cmd_finetune(ns: argparse.Namespace) -> int:
    """Fine-tune a pretrained checkpoint on a folder of your images (LoRun: adapters only, unless --full)."""
    from zoo.cli.lightning import run_lightning  # Lightning's CLI is heavy: imported when used

    out = Path(ns.out)
    args = finetune_args(ns.name, ns.data, out, weights=ns.weights, lr=ns.lr, patch=ns.patch,
                         batch_size=ns.batch_size, samples=ns.samples, val_images=ns.val_images,
                         epochs=ns.epochs, precision=ns.precision, accelerator=ns.accelerator,
                         full=ns.full, adapters_only=True if ns.adapters_only else None, fast_dev_run=ns.fast_dev_run)
    run_lightning(args)
    export = out / "export"
    if "--trainer.callbacks.adapters=true" in args:
        ad = export / "adapters.safetensors"
        print(f"adapters: {ad} ({ad.stat().st_size / 1024:.0f} KiB; load with zoo.load({ns.name!r}, adapters=...) "
              f"or `zoo restore {ns.name} --adapters {ad} ...`); whole network: {export / 'model.safetensors'}")
    else:
        print(f"fine-tuned weights: {export / 'model.safetensors'} (load with zoo.load({ns.name!r}, path=...))")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("export-run", help="publish a training run's weights into checkpoints/NAME + manifest "
                       "(was `zoo export RUN --name NAME`, which still works)")
    s.add_argument("run_dir")
    s.add_argument("--name", required=True)
    s.add_argument("--dest")
    s.add_argument("--recipe")
    s.add_argument("--data")
    s.add_argument("--init")
    s.add_argument("--hardware")
    s.add_argument("--notes")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="storage dtype of the weights (float16 halves the file; loading casts back)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("finetune", help="fine-tune a pretrained model on a folder of your images")
    s.add_argument("name")
    s.add_argument("--data", required=True, help="folder of training images")
    s.add_argument("--out", default="runs/finetune")
    s.add_argument("--weights", help="start from these weights instead of the published ones")
    s.add_argument("--epochs", type=int, default=5)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--patch", type=int, default=99)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--samples", type=int, default=1000, help="random crops per epoch")
    s.add_argument("--val-images", type=int, default=2)
    s.add_argument("--precision", default="32-true")
    s.add_argument("--accelerator", default="auto")
    s.add_argument("--full", action="store_true",
                   help="train every weight (default for LoRun models: adapters + step sizes only, with "
                        "export/adapters.safetensors; other models always train every weight)")
    s.add_argument("--adapters-only", action="store_true",
                   help="LoRun: train and export the adapters alone (the default for LoRun; refused for other models)")
    s.add_argument("--fast-dev-run", action="store_true")
    s.set_defaults(func=cmd_finetune)
