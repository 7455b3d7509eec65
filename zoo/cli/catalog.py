"""``zoo list`` and ``zoo info``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import torch

from zoo.api import checkpoint, get_entry, list_models
from zoo.bench.profile import param_counts
from zoo.hub.manifest import load_manifest

__all__ = ["add_commands", "print_table", "set_threads"]


def set_threads(n: int | None) -> None:
    """``--threads``: torch's intra-op CPU threads (``None`` keeps torch's default)."""
    if n is None:
        return
    if n < 1:
        raise ValueError(f"--threads takes a number >= 1, got {n}")
    torch.set_num_threads(n)


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header))
    for r in rows:
        print(fmt.format(*[str(c) for c in r]))


def cmd_list(ns: argparse.Namespace) -> int:
    have = load_manifest().checkpoints
    rows = []
    for n in list_models(ns.pattern, task=ns.task, pretrained=True if ns.pretrained else None):
        e = get_entry(n)
        rows.append([n, e.task, e.architecture, "yes" if n in have else "", e.description])
    print_table(rows, ["name", "task", "arch", "pretrained", "description"])
    return 0


def cmd_info(ns: argparse.Namespace) -> int:
    e = get_entry(ns.name)
    net = e.build()
    rec = checkpoint(ns.name)
    info = {
        "name": e.name, "task": e.task, "architecture": e.architecture, "description": e.description,
        "paper": e.paper, "licence": e.licence, "default_config": e.default_config,
        "lightning_module": e.lightning_module,
        "params": {k: v for k, v in param_counts(net).items() if not k.endswith("_M")},
        "pretrained": asdict(rec) if rec is not None else None,
    }
    print(json.dumps(info, indent=2, default=str))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("list", help="list registered models")
    s.add_argument("pattern", nargs="?", default="*")
    s.add_argument("--task")
    s.add_argument("--pretrained", action="store_true", help="only models with a checkpoint")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="metadata, config, parameters and checkpoint record of a model")
    s.add_argument("name")
    s.set_defaults(func=cmd_info)
