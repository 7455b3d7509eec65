"""``zoo restore NAME INPUT -o OUTPUT``: the options come from the tasks (:attr:`zoo.tasks.Task.options`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from zoo.api import get_entry, load
from zoo.cli.catalog import set_threads
from zoo.inference import tile_candidates, tile_progress, whole_max_pixels
from zoo.tasks import all_tasks, get_task, restore_file, tasks_adapting, tasks_taking
from zoo.tasks.base import check_input_file

__all__ = ["add_commands"]


def _task_options() -> dict[str, object]:
    """Every task's ``zoo restore`` options by name (the first declaration's help wins)."""
    opts: dict[str, object] = {}
    for t in all_tasks().values():
        for o in t.options:
            opts.setdefault(o.name, o)
    return opts


def tile_arg(text: str) -> int | str:
    """``--tile``: ``auto`` or a positive number of pixels."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes 'auto' or a number of pixels, got {text!r}") from None


def cmd_restore(ns: argparse.Namespace) -> int:
    task = get_task(get_entry(ns.name).task)
    given = {k: getattr(ns, k) for k in _task_options() if getattr(ns, k) is not None}
    if ns.adapt is not None:
        given["adapt"] = ns.adapt
    own = {o.name for o in task.options} | ({"adapt"} if task.adaptive else set())
    wrong = sorted(set(given) - own)
    if wrong:  # an option of another task would otherwise pass unnoticed
        raise ValueError(f"{ns.name} is a {task.name!r} model; " + ", ".join(
            f"--{k} is for {'/'.join(tasks_adapting() if k == 'adapt' else tasks_taking(k))} models"
            for k in wrong) + ": drop it")
    opts = {o.name: given.get(o.name, o.default) for o in task.options}
    opts = {k: v for k, v in opts.items() if v is not None}
    if "tile" in opts and "tile" not in given:
        opts["tile"] = "auto"
    out = Path(ns.output)
    if out.exists() and not ns.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    check_input_file(ns.input)  # before the (slower) model load
    set_threads(ns.threads)
    # --weights are the user's own (a fine-tune): loaded without the published sha256, with a warning
    net = load(ns.name, path=ns.weights, verify=ns.weights is None, adapters=ns.adapters)
    t = time.perf_counter()
    with tile_progress(False if ns.quiet else None):  # a bar over the tiles on a terminal only
        msg, written = restore_file(task, net, ns.input, str(out), overwrite=ns.overwrite, adapt=given.get("adapt", 0),
                                    **opts)
    print(f"{ns.name}: {msg} in {time.perf_counter() - t:.2f}s → {', '.join(map(str, written))}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("restore", help="restore a file with a pretrained model (options per task)")
    s.add_argument("name")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--weights", help="a checkpoint folder/file instead of the published one")
    s.add_argument("--adapters", metavar="FILE",
                   help="LoRun: an adapters.safetensors from `zoo finetune` on top of the base (checked against it)")
    s.add_argument("--adapt", type=int, metavar="STEPS",
                   help=f"{'/'.join(tasks_adapting())}: first fine-tune a copy of the model on INPUT alone for STEPS "
                        "steps (target-adaptive; ~0.1-1 s a step on a CPU)")
    for name, o in _task_options().items():
        defaults = {t.name: p.default for t in all_tasks().values() for p in t.options if p.name == name}
        shown = sorted({d for d in defaults.values() if d is not None})
        dflt = "" if not shown else (f" (default {shown[0]})" if len(shown) == 1 else " (default: " + ", ".join(
            f"{d} for {t}" for t, d in sorted(defaults.items()) if d is not None) + ")")
        if name == "tile":  # 'auto' (the default) or pixels
            s.add_argument("--tile", type=tile_arg, metavar="auto|N",
                           help=f"{'/'.join(tasks_taking(name))}: {o.help}; default auto: whole when at most "
                                f"{int(whole_max_pixels() ** 0.5)}² (output) pixels, else the fastest of "
                                f"{'/'.join(map(str, tile_candidates()))} timed once per model, device and threads")
            continue
        s.add_argument(f"--{name}", type=o.type, metavar=o.metavar,
                       help=f"{'/'.join(tasks_taking(name))}: {o.help}{dflt}")
    s.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads of torch (default: torch's own; on a busy 2-core machine 1 is often faster)")
    s.add_argument("--quiet", action="store_true", help="no progress bar over the tiles")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_restore)
