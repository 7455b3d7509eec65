"""The ``zoo`` command line.

    zoo list [PATTERN] [--task T] [--pretrained]
    zoo info NAME
    zoo restore NAME INPUT -o OUTPUT
    zoo bench NAME [...] | --recipe R
    zoo fit|validate|test|predict --config recipes/X.yaml [Lightning CLI flags]
    zoo finetune NAME --data FOLDER
    zoo export RUN_DIR --name NAME
    zoo prefetch [NAME ...]
    zoo publish NAME --repo-id ORG/REPO
    zoo demo [-o DIR]
"""

from __future__ import annotations

import sys
from typing import Sequence

LIGHTNING = ("fit", "validate", "test", "predict")

__all__ = ["main", "build_parser"]


def build_parser():
    """The ``zoo`` parser: one module per command group, each adding its sub-commands."""
    import argparse

    # the command groups import the whole package; `zoo fit` (Lightning) does not need them
    from zoo.cli import bench, catalog, demo, hub_commands, restore, train

    p = argparse.ArgumentParser(prog="zoo", description="Deep-unfolding restoration model zoo. "
                                "Training: zoo fit|validate|test|predict --config recipes/<family>/<task>/X.yaml")
    sub = p.add_subparsers(dest="command")
    for group in (catalog, restore, bench, train, demo, hub_commands):
        group.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING:
        from zoo.cli.lightning import run_lightning

        try:
            run_lightning(argv)
        except (FileExistsError, FileNotFoundError) as e:  # the zoo's refusals (an occupied run folder, no
            print(f"zoo {argv[0]}: error: {e}", file=sys.stderr)  # checkpoint to resume, missing data): no traceback
            return 2
        return 0
    parser = build_parser()
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
