"""What a *task* is: everything specific to one restoration problem, in one file per task.

A :class:`Task` knows its test sets (``load_testset``), metrics and protocol text, its classical
floor, a built-in demo sample that fits a given model, how to read a user's file and write the
result for ``zoo restore`` (``read_input`` / ``run`` / ``outputs``), its ``zoo restore`` options,
its target-adaptive inference (if any), the datamodule ``zoo finetune`` uses, and the published
rows shown beside benchmark tables. ``cli/`` and ``bench/`` iterate over tasks and never name one.

Task files are ``zoo/tasks/<task>.py``; each ends with ``register_task(...)``. A new task is a new
file (see CONTRIBUTING.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from zoo.inference import auto_tile, spatial_inputs
from zoo.models.base import Restorer
from zoo.utils.files import atomic_write, check_writable

__all__ = ["Task", "Option", "Batch", "register_task", "get_task", "all_tasks", "tasks_adapting", "tasks_taking",
           "restore_file", "check_input_file"]

Batch = dict[str, Any]
Writer = Callable[[Path], None]


@dataclass(frozen=True)
class Option:
    """One ``zoo restore`` option of a task: ``--<name>`` with argparse keywords."""

    name: str
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    metavar: str | None = None


@dataclass
class Task:
    """One restoration task. Subclass it in ``zoo/tasks/<task>.py`` (see the module docstring)."""

    name: str
    datasets: dict[str, str]  # test set name -> location relative to the data root
    description: dict[str, object]  # the protocol, written into every results file
    metrics: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = field(default_factory=dict)
    floor_name: str = "linear initial estimate"
    datamodule: str = ""  # for `zoo finetune`: class path taking the user's folder
    # dataset-level metrics: name -> (per-image part(output, target), reduce(list of parts) -> float)
    aggregates: dict[str, tuple[Callable, Callable]] = field(default_factory=dict)
    # (test set, setting) -> rows of {"method", metrics..., "note"}: cited, never recomputed
    published: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    options: tuple[Option, ...] = ()  # `zoo restore` options of this task
    adapt_method: str = ""  # target-adaptive inference, in words ("" = none)
    adapt_defaults: dict[str, Any] = field(default_factory=dict)
    # the number a summary table shows per checkpoint: the first of these test sets the model was scored on
    headline: tuple[str, ...] = ()
    headline_metric: str = "psnr"

    # -- test data ------------------------------------------------------------------------------
    def load_testset(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        """``(item name, batch)`` pairs of a test set; batch = ``{"target", ["inputs"]}``, batch size 1."""
        raise NotImplementedError

    def sample(self, net: Restorer) -> Batch:
        """A built-in procedural sample that fits ``net``'s input contract (never read from disk)."""
        raise NotImplementedError

    def published_rows(self, dataset: str, setting: str) -> list[dict]:
        return [dict(r) for r in self.published.get((dataset, setting), [])]

    # -- running --------------------------------------------------------------------------------
    def inputs(self, net: Restorer, batch: Batch) -> dict[str, Any]:
        return batch["inputs"] if "inputs" in batch else net.measure(batch["target"])

    def floor(self, net: Restorer, inputs: dict[str, Any]) -> torch.Tensor:
        """The classical reconstruction every learned row must beat."""
        raise NotImplementedError

    def floors(self, net: Restorer, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Every classical row of the bench, ``{name: reconstruction}``; the first is the floor."""
        return {self.floor_name: self.floor(net, inputs)}

    def pictures(self, image: str, outputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Comparison pictures of one test image, ``{file name: PIL image}``, from ``outputs``
        (``"reference"`` and one entry per method, floors first); none by default."""
        return {}

    @property
    def adaptive(self) -> bool:
        """Whether this task defines target-adaptive inference (``--adapt``)."""
        return bool(self.adapt_method)

    def adapt(self, net: Restorer, inputs: dict[str, Any], steps: int) -> Restorer:
        """Target-adaptive inference: a copy of ``net`` fitted to these inputs alone (no reference)."""
        raise ValueError(f"target-adaptive inference (--adapt) is not defined for task {self.name!r}; "
                         f"it is for {'/'.join(tasks_adapting())} models")

    def adapt_setting(self, steps: int) -> dict[str, Any]:
        """The settings of the target-adaptive inference, as recorded beside benchmark results."""
        if not self.adaptive:
            self.adapt(None, {}, steps)  # type: ignore[arg-type]  (raises the task's message)
        return {"method": self.adapt_method, **self.adapt_defaults, "steps": steps, "seed": 0}

    def score(self, output: torch.Tensor, target: torch.Tensor, inputs: dict[str, Any]) -> dict[str, float]:
        """The task's metrics of one restored image (SR: on the Y channel with the scale's border cut)."""
        return {k: float(fn(output, target)[0]) for k, fn in self.metrics.items()}

    def compatible(self, net: Restorer, batch: Batch) -> bool:
        """Whether ``net`` can be scored on this test item (e.g. its band count); others are skipped."""
        return True

    def no_reference(self, net: Restorer, output: torch.Tensor, inputs: dict[str, Any]) -> dict[str, float]:
        """Reference-free metrics of one output, for test items without a ``target`` (e.g. HQNR)."""
        raise NotImplementedError(f"task {self.name!r} has no reference-free metrics")

    def setting(self, net: Restorer) -> str:
        """The protocol setting a network is evaluated at (e.g. CS ratio ``r25``)."""
        return "default"

    def finetune_data_args(self, folder: str) -> list[str]:
        """LightningCLI ``--data.*`` flags that point the task's datamodule at a user folder."""
        raise NotImplementedError(f"`zoo finetune` is not available for task {self.name!r}")

    # -- a user's file (zoo restore) ------------------------------------------------------------
    def read_input(self, net: Restorer, src: str, **opts: Any) -> tuple[dict[str, Any], str]:
        """Read ``src`` (and the task's options) → (network inputs, a description of what was read)."""
        raise NotImplementedError(f"`zoo restore` is not available for task {self.name!r}")

    def run(self, net: Restorer, inputs: dict[str, Any], **opts: Any) -> torch.Tensor:
        """Restore the inputs (tasks with large inputs tile here)."""
        with torch.no_grad():
            return net(**inputs).float()

    def outputs(self, net: Restorer, result: torch.Tensor, dst: str) -> dict[Path, Writer]:
        """The files ``zoo restore`` writes for ``result``: path → writer of a temporary path."""
        raise NotImplementedError

    def to_image(self, t: torch.Tensor) -> np.ndarray:
        """uint8 picture of one (1, C, H, W) tensor (grey, or RGB for C = 3)."""
        a = t.detach().float().clamp(0, 1)[0].cpu().numpy()
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)
        return (a * 255 + 0.5).astype(np.uint8)


def png_writer(task: Task, t: torch.Tensor, fmt: str = "PNG") -> Writer:
    """A writer of ``task.to_image(t)`` in the image format ``fmt``."""
    from PIL import Image

    return lambda tmp: Image.fromarray(task.to_image(t)).save(tmp, format=fmt)


_FORMATS = {"": "PNG", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


def image_format(path: str | Path) -> str:
    """The PIL format of an output picture from its suffix; other suffixes are refused (never PNG bytes in a ``.mat``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"{path}: this task writes a picture (.png, .jpg, .tif, .bmp), not {suffix}: "
                         "change the output name")
    return _FORMATS[suffix]


def check_input_file(src: str | Path) -> None:
    """``src`` must be an existing file (a folder or a missing path is named as such)."""
    if Path(src).is_dir():
        raise IsADirectoryError(f"input {src} is a folder, not a file: name one input file")
    if not Path(src).is_file():
        raise FileNotFoundError(f"input {src} does not exist")


def restore_file(task: Task, net: Restorer, src: str, dst: str, *, overwrite: bool = False, adapt: int = 0,
                 **opts: Any) -> tuple[str, list[Path]]:
    """``zoo restore``: read ``src``, (adapt,) restore, write the task's outputs atomically.

    Every output path is checked before any work, so an existing file is refused (unless
    ``overwrite``) before the reconstruction runs. Tasks with a ``tile`` option tile with
    ``tile="auto"`` (the default): :func:`zoo.inference.auto_tile` (whole when small). Returns
    (summary line, written paths).
    """
    check_input_file(src)
    if adapt < 0:
        raise ValueError(f"--adapt takes a number of steps >= 0, got {adapt}")
    if adapt and not task.adaptive:
        task.adapt(net, {}, adapt)  # raises the task's message
    inputs, what = task.read_input(net, src, **opts)
    planned = task.outputs(net, torch.zeros(0), dst)  # paths only: nothing is written yet
    for p in planned:  # every failure that can be known now is raised before the reconstruction runs
        if p.is_dir():
            raise IsADirectoryError(f"output {p} is a folder: name an output file")
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
        check_writable(p.parent)
    run_net = task.adapt(net, inputs, adapt) if adapt else net
    names, tiled = {o.name: o for o in task.options}, ""
    if "tile" in names and opts.get("tile", "auto") in ("auto", None):  # the fastest tile here, or whole if small
        ov = int(opts.get("overlap", names["overlap"].default if "overlap" in names else 0))
        scale = int(inputs["scale"]) if isinstance(inputs.get("scale"), int) else 1
        opts = {**opts, "tile": auto_tile(run_net, inputs, lambda crop, t: task.run(run_net, crop, **{**opts, "tile": t}),
                                          ov, scale=scale)}
        ref = inputs[spatial_inputs(inputs)[0]]
        tiled = (", whole (--tile auto: small)" if opts["tile"] >= max(ref.shape[-2:])
                 else f", tiles of {opts['tile']} px (--tile auto)")
    result = task.run(run_net, inputs, **opts).clamp(0, 1)  # every task documents its output in [0, 1]
    written = []
    for p, write in task.outputs(net, result, dst).items():
        with atomic_write(p, overwrite=True) as tmp:
            write(tmp)
        written.append(p)
    how = (f" after {adapt} target-adaptive steps" if adapt else "") + tiled
    return f"{what}{how}", written


# -- the task registry ----------------------------------------------------------------------------
_TASKS: dict[str, Task] = {}


def register_task(t: Task) -> Task:
    if t.name in _TASKS:
        raise ValueError(f"task {t.name!r} is registered twice")
    _TASKS[t.name] = t
    return t


def _discover() -> None:
    for m in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if m.name not in ("base", "finetune"):  # every other module is a task file
            importlib.import_module(f"zoo.tasks.{m.name}")


def all_tasks() -> dict[str, Task]:
    _discover()
    return dict(_TASKS)


def get_task(name: str) -> Task:
    """The registered task ``name`` (``cs``, ``cassi``, ``pansharpen``, ``flash``, ...)."""
    tasks = all_tasks()
    if name not in tasks:
        raise ValueError(f"no task {name!r} yet (have: {sorted(tasks)})")
    return tasks[name]


def tasks_adapting() -> list[str]:
    """The tasks with target-adaptive inference (``zoo bench/restore --adapt``)."""
    return sorted(n for n, t in all_tasks().items() if t.adaptive)


def tasks_taking(option: str) -> list[str]:
    """The tasks whose ``zoo restore`` takes ``--option``."""
    return sorted(n for n, t in all_tasks().items() if any(o.name == option for o in t.options))
