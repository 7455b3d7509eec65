"""Task ``cs``: 33×33 block compressive sensing of grey images (LoRun, Block-K).

* Test sets ``Set11`` and ``BSD68`` (``images/{Set11,BSD68}``): whole images, BT.601 luminance in [0, 1].
* Measurement: the model's own Φ (learned), noiseless; floor: the model's linear initial estimate.
* ``zoo restore``: samples a grey image with the model's Φ and reconstructs it, in tiles aligned
  to the 33-pixel blocks (a tile measures exactly the matching blocks of the whole image).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zoo.data.images import list_images, read_grey, resolve_folder
from zoo.data.io import open_image
from zoo.inference import restore_tiled
from zoo.metrics import psnr, ssim
from zoo.models.base import Restorer
from zoo.samples import sample_grey
from zoo.tasks.base import Batch, Option, Task, Writer, image_format, png_writer, register_task

__all__ = ["CSTask"]


class CSTask(Task):
    def load_testset(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        folder = resolve_folder(self.datasets[name], root)
        return [(p.stem, {"target": read_grey(p)[None]}) for p in list_images(folder)]

    def sample(self, net: Restorer) -> Batch:
        return {"target": sample_grey(264)}

    def floor(self, net: Restorer, inputs: dict[str, Any]) -> torch.Tensor:
        return net.physics.A_dagger(inputs["y"], img_size=inputs["img_size"])

    def setting(self, net: Restorer) -> str:
        return f"r{int(round(net.physics.ratio * 100))}"

    def finetune_data_args(self, folder: str) -> list[str]:
        return [f"--data.train_dirs=[{json.dumps(folder)}]", "--data.test_dirs=[]"]

    def read_input(self, net: Restorer, src: str, **opts: Any) -> tuple[dict[str, Any], str]:
        with open_image(src) as im:
            mode = im.mode
        x = read_grey(src)[None]
        grey = "" if mode == "L" else f" (mode {mode} → grey luminance: the CS models are single-channel)"
        return {"x": x}, (f"sampled {src}{grey} ({x.shape[-2]}×{x.shape[-1]}) at ratio {net.physics.ratio:g} "
                          "and reconstructed it")

    def run(self, net: Restorer, inputs: dict[str, Any], tile: int = 264, overlap: int = 33, **opts: Any) -> torch.Tensor:
        """Tiles aligned to the 33-pixel blocks: each is measured exactly like the matching blocks of the whole image."""
        return restore_tiled(net, inputs["x"], tile=tile, overlap=overlap)

    def outputs(self, net: Restorer, result: torch.Tensor, dst: str) -> dict[Path, Writer]:
        return {Path(dst): png_writer(self, result, image_format(dst))}


register_task(CSTask(
    name="cs",
    headline=("Set11",),
    datasets={"Set11": "images/Set11", "BSD68": "images/BSD68"},
    description={
        "blocks": "33x33, row-major, zero-padded to a multiple of 33",
        "images": "whole images, luminance (BT.601 full range) in [0,1]",
        "psnr": "per image on the clipped [0,1] output, data range 1, no border crop; mean over images",
        "ssim": "Gaussian 11x11 sigma 1.5 (Wang et al.), per image; mean over images",
        "noise": "none (noiseless measurement)",
    },
    metrics={"psnr": psnr, "ssim": ssim},
    datamodule="zoo.data.images.CSDataModule",
    options=(Option("tile", "tile size in pixels (rounded down to the 33-pixel block)", int, 264),
             Option("overlap", "overlap of neighbouring tiles in pixels (rounded down to the block)", int, 33)),
    published={
        ("Set11", "r50"): [{"method": "ISTA-Net+ (official log)", "psnr": 38.07, "ssim": 0.9706},
                           {"method": "ISTA-Net", "psnr": 37.42}],
        ("Set11", "r25"): [{"method": "NesTD-Net (official results)", "psnr": 36.27, "ssim": 0.962}],
        ("Set11", "r10"): [{"method": "NesTD-Net (official results)", "psnr": 30.91, "ssim": 0.910}],
        ("Set11", "r4"): [{"method": "NesTD-Net (official results)", "psnr": 26.73, "ssim": 0.824}],
        ("Set11", "r1"): [{"method": "NesTD-Net (official results)", "psnr": 21.40, "ssim": 0.589}],
    },
))
