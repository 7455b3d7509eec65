"""``zoo demo``: every pretrained checkpoint restores a built-in sample (:mod:`zoo.bench.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.bench.demo import run_demo
from zoo.cli.catalog import print_table

__all__ = ["add_commands"]


def cmd_demo(ns: argparse.Namespace) -> int:
    header, *rows = run_demo(ns.out, ns.names, overwrite=ns.overwrite)
    print_table(rows, header)
    print(f"wrote one picture per model (<name>.png: input | floor | output | target) and metrics.md to {Path(ns.out)}/")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("demo", help="restore a built-in sample with every pretrained checkpoint")
    s.add_argument("names", nargs="*")
    s.add_argument("-o", "--out", default="zoo-demo")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_demo)
