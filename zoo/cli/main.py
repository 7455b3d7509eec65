"""The ``zoo`` command line.

    zoo list [PATTERN] [--task T] [--pretrained]
    zoo info NAME
    zoo restore NAME INPUT -o OUTPUT
    zoo bench NAME [...] | --recipe R
    zoo fit|validate|test|predict --config recipes/X.yaml [Lightning CLI flags]
    zoo finetune NAME --data FOLDER
    zoo export NAME --format onnx|torchscript -o FILE
    zoo export-run RUN_DIR --name NAME      (alias: zoo export RUN_DIR --name NAME)
    zoo prefetch [NAME ...]
    zoo publish NAME --repo-id ORG/REPO
    zoo demo [-o DIR]
"""

from __future__ import annotations

import sys
from typing import Sequence

from zoo.utils.allocator import tune_allocator

LIGHTNING = ("fit", "validate", "test", "predict")

__all__ = ["main", "build_parser"]


LIGHT = ("list", "info")  # answered from the catalogue file: no torch import


def build_parser(light: bool = False):
    """The ``zoo`` parser: one module per command group, each adding its sub-commands (``light``: only
    ``list``/``info``, whose module does not import torch)."""
    import argparse

    from zoo.cli import catalog

    p = argparse.ArgumentParser(prog="zoo", description="Deep-unfolding restoration model zoo. "
                                "Training: zoo fit|validate|test|predict --config recipes/<family>/<task>/X.yaml")
    sub = p.add_subparsers(dest="command")
    groups: tuple = (catalog,)
    if not light:  # the other command groups import the whole package; `zoo fit` (Lightning) needs none
        from zoo.cli import bench, demo, deploy, hub_commands, restore, train

        groups = (catalog, restore, bench, train, deploy, demo, hub_commands)
    for group in groups:
        group.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING:
        tune_allocator()
        from zoo.cli.lightning import run_lightning

        try:
            run_lightning(argv)
        except (FileExistsError, FileNotFoundError) as e:  # the zoo's refusals (an occupied run folder, no
            print(f"zoo {argv[0]}: error: {e}", file=sys.stderr)  # checkpoint to resume, missing data): no traceback
            return 2
        return 0
    if argv and argv[0] == "export" and any(a == "--name" or a.startswith("--name=") for a in argv[1:]):
        argv[0] = "export-run"  # the run → checkpoint command's old name (before `zoo export` meant ONNX/TorchScript)
    if not (argv and argv[0] in LIGHT):
        tune_allocator()  # large images: keep freed activations in the heap (zoo.utils.allocator)
    light = bool(argv) and argv[0] in LIGHT and not any(a in ("-h", "--help") for a in argv[:1])
    parser = build_parser(light=light)
    ns = parser.parse_args(argv)
    if not getattr(ns, "func", None):
        parser.print_help()
        return 0
    try:
        return int(ns.func(ns) or 0)
    except (ValueError, KeyError, RuntimeError, OSError) as e:  # OSError: files (missing, existing, unwritable)
        print(f"zoo {ns.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
