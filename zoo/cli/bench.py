"""``zoo bench``: protocol tables, costs, published rows and PNG grids (:mod:`zoo.bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from zoo.bench import run_bench
from zoo.bench.record import record_bench
from zoo.cli.catalog import set_threads

__all__ = ["add_commands"]


def _recipe_model(recipes: list[str]) -> tuple[str, list[str] | None]:
    """The model (and test folders) of a recipe composition: the last file that names one wins, as in ``zoo fit``."""
    name, dirs = None, None
    for r in recipes:
        cfg = yaml.safe_load(Path(r).read_text()) or {}
        init = (cfg.get("model") or {}).get("init_args") or {}
        name = init.get("model", name)
        dirs = ((cfg.get("data") or {}).get("init_args") or {}).get("test_dirs", dirs)
    if name is None:
        raise ValueError(f"no model: in {', '.join(recipes)}; give the composition as `zoo fit` does "
                         "(--recipe BASE --recipe LEAF ...), or name the model")
    return name, [Path(d).name for d in dirs] if dirs else None


def cmd_bench(ns: argparse.Namespace) -> int:
    names = list(ns.names)
    datasets = ns.dataset
    if ns.recipe:
        n, ds = _recipe_model(ns.recipe)
        names.append(n)
        datasets = datasets or ds
    if not names:
        raise ValueError("name at least one model (or --recipe)")
    bad = [w for w in ns.weights or [] if "=" not in w]
    if bad:
        raise ValueError(f"--weights takes NAME=PATH, got {bad[0]!r}")
    paths = dict(p.split("=", 1) for p in ns.weights or [])
    if paths and ns.record:
        raise ValueError("--record stores results under the published checkpoints' hashes; your own --weights "
                         "are not those files: export them first (zoo export RUN/export --name NAME), then bench NAME")
    set_threads(ns.threads)  # recorded in the summary's environment
    s = run_bench(names, ns.out, datasets=datasets, data_root=ns.data_root, paths=paths, floor=not ns.no_floor,
                  grids=not ns.no_grids, costs=not ns.no_costs, cost_size=ns.cost_size, limit=ns.limit,
                  overwrite=ns.overwrite, adapt=ns.adapt)
    print((Path(ns.out) / "summary.md").read_text())
    if ns.record:
        print(f"recorded bench results of {len(record_bench(s))} checkpoints in the manifest")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("bench", help="benchmark pretrained models (tables, costs, grids)")
    s.add_argument("names", nargs="*")
    s.add_argument("--recipe", action="append", metavar="YAML",
                   help="bench the checkpoint a recipe trains; repeat it for a composition, in `zoo fit --config` order")
    s.add_argument("--dataset", action="append", help="test set(s), default: the task's")
    s.add_argument("--data-root")
    s.add_argument("--out", default="bench-results")
    s.add_argument("--weights", action="append",
                   help="NAME=PATH: bench your own weights of NAME (a run's export folder; loaded unverified)")
    s.add_argument("--limit", type=int, help="first n images per test set (smoke tests)")
    s.add_argument("--cost-size", type=int, default=256)
    s.add_argument("--no-floor", action="store_true")
    s.add_argument("--no-grids", action="store_true")
    s.add_argument("--no-costs", action="store_true")
    s.add_argument("--record", action="store_true", help="store the results in the manifest and model cards")
    s.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                   help="also score every test set after STEPS target-adaptive steps per image (pansharpening, flash, CASSI)")
    s.add_argument("--threads", type=int, metavar="N", help="CPU threads of torch (recorded in the environment)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_bench)
