"""Benchmark protocols per task: test sets, inputs, metrics, the classical floor, demo samples.

Each task registers one :class:`Protocol` (``register_protocol``); task modules named
``zoo/bench/protocol_<task>.py`` are discovered automatically, so a new model family adds a file
and touches nothing here. Every field of ``description`` is written into the results.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from zoo.metrics import psnr, ssim

__all__ = ["Protocol", "get_protocol", "register_protocol"]

Batch = dict[str, Any]


@dataclass
class Protocol:
    """How one task is benchmarked. Subclass (or pass callables) for a new task."""

    task: str
    datasets: dict[str, str]  # name -> location relative to the data root
    description: dict[str, object]
    metrics: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = field(default_factory=dict)
    floor_name: str = "linear initial estimate"
    lightning_module: str = "zoo.training.RestorationModule"  # for `zoo finetune`
    datamodule: str = ""  # for `zoo finetune`: class path taking the user's folder
    # dataset-level metrics: name -> (per-image part(output, target), reduce(list of parts) -> float),
    # e.g. one PSNR over the squared error of all images together
    aggregates: dict[str, tuple[Callable, Callable]] = field(default_factory=dict)

    # -- data ---------------------------------------------------------------------------------
    def load(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        """``(image name, batch)`` pairs of a test set; batch = ``{"target", ["inputs"]}``, batch size 1."""
        raise NotImplementedError

    def sample(self) -> Batch:
        """A built-in procedural sample for ``zoo demo`` (never read from the data folder)."""
        raise NotImplementedError

    # -- running --------------------------------------------------------------------------------
    def inputs(self, net: nn.Module, batch: Batch) -> dict[str, Any]:
        return batch["inputs"] if "inputs" in batch else net.measure(batch["target"])

    def floor(self, net: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        """The classical reconstruction every learned row must beat."""
        raise NotImplementedError

    def adapt(self, net: nn.Module, inputs: dict[str, Any], steps: int) -> nn.Module:
        """Target-adaptive inference: a copy of ``net`` fitted to these inputs alone (no reference)."""
        raise ValueError(f"target-adaptive inference (--adapt) is not defined for task {self.task!r}; "
                         f"it is for {'/'.join(tasks_adapting())} models")

    @property
    def adaptive(self) -> bool:
        """Whether this task defines target-adaptive inference (overrides :meth:`adapt`)."""
        return type(self).adapt is not Protocol.adapt

    def compatible(self, net: nn.Module, batch: Batch) -> bool:
        """Whether ``net`` can be scored on this test item (e.g. its band count); others are skipped."""
        return True

    def no_reference(self, net: nn.Module, output: torch.Tensor, inputs: dict[str, Any]) -> dict[str, float]:
        """Reference-free metrics of one output, for test items without a ``target`` (e.g. HQNR)."""
        raise NotImplementedError(f"task {self.task!r} has no reference-free metrics")

    def setting(self, net: nn.Module) -> str:
        """The protocol setting a network is evaluated at (e.g. CS ratio ``r25``)."""
        return "default"

    def finetune_data_args(self, folder: str) -> list[str]:
        """LightningCLI ``--data.*`` flags that point the task's datamodule at a user folder."""
        raise NotImplementedError(f"`zoo finetune` is not available for task {self.task!r}")

    def restore_file(self, net: nn.Module, src: str, dst: str, overwrite: bool = False, **kw: Any) -> str:
        """``zoo restore``: read ``src``, restore it, write ``dst`` (atomically); returns a summary line."""
        raise NotImplementedError(f"`zoo restore` is not available for task {self.task!r}")

    def restore_options(self) -> set[str]:
        """The task-specific inputs :meth:`restore_file` names (``mask``, ``flash``, ``sigma``, …)."""
        params = inspect.signature(self.restore_file).parameters
        named = {k for k, v in params.items() if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}
        return named - {"net", "src", "dst", "overwrite", "tile", "overlap"}

    def to_image(self, t: torch.Tensor) -> np.ndarray:
        """uint8 picture of one (1, C, H, W) tensor for PNG grids (grey, or RGB for C = 3)."""
        a = t.detach().float().clamp(0, 1)[0].cpu().numpy()
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)
        return (a * 255 + 0.5).astype(np.uint8)


class CSProtocol(Protocol):
    def load(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        from zoo.data.images import list_images, read_grey, resolve_folder

        folder = resolve_folder(self.datasets[name], root)
        return [(p.stem, {"target": read_grey(p)[None]}) for p in list_images(folder)]

    def sample(self) -> Batch:
        from zoo.samples import sample_grey

        return {"target": sample_grey(264)}

    def floor(self, net: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        return net.physics.A_dagger(inputs["y"], img_size=inputs["img_size"])

    def setting(self, net: nn.Module) -> str:
        return f"r{int(round(net.physics.ratio * 100))}"

    def finetune_data_args(self, folder: str) -> list[str]:
        import json

        return [f"--data.train_dirs=[{json.dumps(folder)}]", "--data.test_dirs=[]"]

    def restore_file(self, net: nn.Module, src: str, dst: str, overwrite: bool = False, tile: int = 264,
                     overlap: int = 33, **kw: Any) -> str:
        """Sample a grey image with the network's Φ and reconstruct it (tiles aligned to 33)."""
        from pathlib import Path

        from PIL import Image

        from zoo.data.images import read_grey
        from zoo.data.io import open_image
        from zoo.hub.files import atomic_write
        from zoo.inference import restore_tiled

        with open_image(src) as im:
            mode = im.mode
        x = read_grey(src)[None]
        rec = restore_tiled(net, x, tile=tile, overlap=overlap)
        fmt = {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}.get(Path(dst).suffix.lower().lstrip("."), "PNG")
        with atomic_write(dst, overwrite=overwrite) as tmp:
            Image.fromarray(self.to_image(rec)).save(tmp, format=fmt)
        grey = "" if mode == "L" else f" (mode {mode} → grey luminance: the CS models are single-channel)"
        return f"sampled {src}{grey} ({x.shape[-2]}×{x.shape[-1]}) at ratio {net.physics.ratio:g} and reconstructed it"


_PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(p: Protocol) -> Protocol:
    _PROTOCOLS[p.task] = p
    return p


register_protocol(CSProtocol(
    task="cs",
    datasets={"Set11": "images/Set11", "BSD68": "images/BSD68"},
    description={
        "blocks": "33x33, row-major, zero-padded to a multiple of 33",
        "images": "whole images, luminance (BT.601 full range) in [0,1]",
        "psnr": "per image on the clipped [0,1] output, data range 1, no border crop; mean over images",
        "ssim": "Gaussian 11x11 sigma 1.5 (Wang et al.), per image; mean over images",
        "noise": "none (noiseless measurement)",
    },
    metrics={"psnr": psnr, "ssim": ssim},
    lightning_module="zoo.training.LoRunModule",
    datamodule="zoo.data.images.CSDataModule",
))


def _discover() -> None:
    import zoo.bench as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name.startswith("protocol_"):
            importlib.import_module(f"zoo.bench.{m.name}")


def get_protocol(task: str) -> Protocol:
    if task not in _PROTOCOLS:
        _discover()
    if task not in _PROTOCOLS:
        raise ValueError(f"no benchmark protocol for task {task!r} yet (have: {sorted(_PROTOCOLS)})")
    return _PROTOCOLS[task]


def tasks_adapting() -> list[str]:
    """The tasks with target-adaptive inference (``zoo bench/restore --adapt``)."""
    _discover()
    return sorted(t for t, p in _PROTOCOLS.items() if p.adaptive)


def tasks_taking(option: str) -> list[str]:
    """The tasks whose ``zoo restore`` takes ``option`` (for errors that name the right model family)."""
    _discover()
    return sorted(t for t, p in _PROTOCOLS.items() if option in p.restore_options())
