"""``zoo list`` and ``zoo info``: answered from the catalogue file, without importing torch.

``zoo/catalog.json`` holds every registry entry's metadata and parameter counts; it is written by
``python scripts/write_catalog.py`` and checked against the live registry by ``tests/test_house.py``.
A name the file does not know (a family registered by a plug-in) is looked up in the live registry.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path
from typing import Any

from zoo.hub.manifest import load_manifest

__all__ = ["add_commands", "print_table", "set_threads", "CATALOG", "build_catalog", "read_catalog"]

CATALOG = Path(__file__).resolve().parents[1] / "catalog.json"
FIELDS = ("name", "task", "architecture", "description", "paper", "licence", "default_config", "lightning_module")


def set_threads(n: int | None) -> None:
    """``--threads``: torch's intra-op CPU threads (``None`` keeps torch's default)."""
    if n is None:
        return
    if n < 1:
        raise ValueError(f"--threads takes a number >= 1, got {n}")
    import torch

    torch.set_num_threads(n)


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header))
    for r in rows:
        print(fmt.format(*[str(c) for c in r]))


def build_catalog() -> dict[str, dict[str, Any]]:
    """Every registered model's metadata and parameter counts, from the live registry (imports torch)."""
    from zoo.api import get_entry, list_models
    from zoo.bench.profile import param_counts

    out = {}
    for n in list_models():
        e = get_entry(n)
        row = {f: getattr(e, f) for f in FIELDS}
        row["params"] = {k: v for k, v in param_counts(e.build()).items() if not k.endswith("_M")}
        out[n] = json.loads(json.dumps(row, default=list))
    return out


def read_catalog() -> dict[str, dict[str, Any]]:
    """The catalogue file; the live registry when the file is missing."""
    if CATALOG.is_file():
        return json.loads(CATALOG.read_text())["models"]
    return build_catalog()


def _entry(name: str, cat: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if name in cat:
        return cat[name]
    from zoo.api import get_entry  # unknown here: the registry names close matches (or a plug-in has it)

    get_entry(name)
    return build_catalog()[name]


def cmd_list(ns: argparse.Namespace) -> int:
    have = load_manifest().checkpoints
    rows = []
    for n, e in sorted(read_catalog().items()):
        if not fnmatch.fnmatch(n, ns.pattern) or (ns.task and e["task"] != ns.task) or (ns.pretrained and n not in have):
            continue
        rows.append([n, e["task"], e["architecture"], "yes" if n in have else "", e["description"]])
    print_table(rows, ["name", "task", "arch", "pretrained", "description"])
    return 0


def cmd_info(ns: argparse.Namespace) -> int:
    e = dict(_entry(ns.name, read_catalog()))
    rec = load_manifest().checkpoints.get(ns.name)
    e["pretrained"] = rec.to_dict() if rec is not None else None
    print(json.dumps(e, indent=2, default=str))
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
