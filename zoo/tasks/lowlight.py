"""Task ``lowlight``: low-light image enhancement (LLEMamba).

* Test set ``CBSD68-synthetic``: the 68 colour BSD68 images (``images/CBSD68``, 481×321 sRGB; never
  used in training) degraded by :class:`~zoo.physics.lowlight.LowLightDegradation` with a fixed seed
  per image (image ``i`` in name order: ``torch.Generator().manual_seed(i)``). No paired real
  low-light set is at hand: this is a synthetic protocol, *not* LOL.
* Metrics: PSNR (range 1, output clipped to [0, 1], RGB, no border) and SSIM, mean over images,
  **without** the GT-mean correction (flag recorded); ``psnr_gtmean`` is the same PSNR after scaling
  the output so its mean equals the target's (the GT-mean trick of LOL papers; shown, never the headline).
* Floors, computed in the bench run: the classical method that scored best *on training images*
  (12 BSD200 crops, the same degradation; ``experiments/studies/lowlight_floors.py``) is the floor,
  LIME (:mod:`zoo.solvers.lime`) with the tuned α = 0.5, γ = 0.65 (no BM3D); beside it gamma correction
  (γ = 0.45, tuned there) and histogram equalisation of the HSV value (no parameter).
* Published: Retinexformer and MambaLLIE on LOL-v1 / LOL-v2 — *other test sets* (real or synthetic
  LOL pairs), cited for scale only.
* ``zoo restore``: an sRGB low-light photo (8-bit; 16-bit PNGs are converted with a warning), tiled
  (``--tile``/``--overlap``) with the global exposure/colour statistics of the *whole* photo passed
  to every tile, so there are no seams in brightness or colour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zoo.data.lowlight import list_rgb_images, read_rgb, synthetic_testset
from zoo.inference import restore_inputs_tiled
from zoo.metrics import psnr, ssim
from zoo.models.base import Restorer
from zoo.models.llemamba import LLEMamba
from zoo.physics.lowlight import LowLightDegradation, check_lowlight, global_stats
from zoo.samples import sample_ms
from zoo.solvers.lime import gamma_correction, histogram_equalisation, lime
from zoo.tasks.base import Batch, Option, Task, Writer, image_format, png_writer, register_task

__all__ = ["LowLightTask", "psnr_gtmean", "LIME_TUNED", "GAMMA_TUNED"]

LIME_TUNED = {"alpha": 0.5, "gamma": 0.65}  # best of the grid on training images (results/lowlight/floors.md)
GAMMA_TUNED = 0.45  # the same study's best γ of I^γ


def psnr_gtmean(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR after scaling ``output`` so its mean equals ``target``'s (the GT-mean correction)."""
    o = output.float().clamp(0, 1)
    scale = target.float().flatten(1).mean(1) / o.flatten(1).mean(1).clamp_min(1e-6)
    return psnr(o * scale[:, None, None, None], target)


class LowLightTask(Task):
    def load_testset(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        items = synthetic_testset(list_rgb_images(self.datasets[name], root), seed=0)
        return [(n, {"target": hi[None], "inputs": {"low": lo[None]}}) for n, lo, hi in items]

    def sample(self, net: Restorer) -> Batch:
        x = sample_ms(256, 3).clamp(0, 1)
        low = LowLightDegradation()(x, generator=torch.Generator().manual_seed(0))
        return {"target": x, "inputs": {"low": low}}

    def floor(self, net: Restorer, inputs: dict[str, Any]) -> torch.Tensor:
        return lime(inputs["low"], **LIME_TUNED)

    def floors(self, net: Restorer, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """LIME (the floor), gamma correction and histogram equalisation."""
        low = inputs["low"]
        return {self.floor_name: self.floor(net, inputs),
                f"gamma (I^{GAMMA_TUNED}, tuned on training images)": gamma_correction(low, GAMMA_TUNED),
                "histogram equalisation (HSV value)": histogram_equalisation(low)}

    def setting(self, net: Restorer) -> str:
        return "synthetic"

    def finetune_data_args(self, folder: str) -> list[str]:
        return ["--data.train_dirs=[]", f"--data.paired_dirs=[{json.dumps(folder)}]", "--data.test_dir=null"]

    def read_input(self, net: Restorer, src: str, **opts: Any) -> tuple[dict[str, Any], str]:
        """An sRGB low-light photo ``src`` (PNG/JPEG/BMP/TIFF)."""
        low = read_rgb(src)[None]
        check_lowlight(low, f"low-light image {src}")
        return {"low": low}, f"enhanced {src} ({low.shape[-1]}x{low.shape[-2]})"

    def run(self, net: Restorer, inputs: dict[str, Any], tile: int = 512, overlap: int = 64,
            **opts: Any) -> torch.Tensor:
        """Tiled; the global statistics of the whole photo go to every tile (no brightness seams)."""
        inputs = dict(inputs)
        if isinstance(net, LLEMamba) and inputs.get("stats") is None:
            check_lowlight(inputs["low"])
            inputs["stats"] = global_stats(inputs["low"])
        return restore_inputs_tiled(net, inputs, tile=tile, overlap=overlap, like="low")

    def outputs(self, net: Restorer, result: torch.Tensor, dst: str) -> dict[Path, Writer]:
        return {Path(dst): png_writer(self, result, image_format(dst))}


_OTHER = "LOL — another test set (real/synthetic LOL pairs), not comparable"
_PUBLISHED = [
    {"method": "Retinexformer (1.61 M, 15.57 GFLOPs) LOL-v1", "psnr": 25.16, "ssim": 0.845, "note": _OTHER},
    {"method": "Retinexformer LOL-v2-real", "psnr": 22.80, "ssim": 0.840, "note": _OTHER},
    {"method": "Retinexformer LOL-v2-syn", "psnr": 25.67, "ssim": 0.930, "note": _OTHER},
    {"method": "MambaLLIE (2.28 M, 20.85 GFLOPs) LOL-v2-real", "psnr": 22.95, "ssim": 0.847, "note": _OTHER},
    {"method": "MambaLLIE LOL-v2-syn", "psnr": 25.87, "ssim": 0.940, "note": _OTHER},
]

register_task(LowLightTask(
    name="lowlight",
    headline=("CBSD68-synthetic",),
    datasets={"CBSD68-synthetic": "images/CBSD68"},
    description={
        "test_set": "CBSD68 (68 colour BSD68 images, 481x321 sRGB), never used in training; synthetic low-light "
                    "pairs (no paired real set available)",
        "degradation": LowLightDegradation().describe() + "; torch.Generator seed = image index in name order",
        "psnr": "RGB, per image on the clipped [0,1] output, range 1, no border; mean over images",
        "gt_mean": "off for psnr/ssim (the headline); psnr_gtmean = PSNR after scaling the output to the target's mean",
        "ssim": "Gaussian 11x11 sigma 1.5, per channel, mean",
        "floor": "LIME (Guo et al. 2017, sped-up solver, strategy III, alpha 0.5, gamma 0.65 tuned on training images, "
                 "no BM3D): the best classical floor on training images; gamma (0.45, tuned there) and histogram "
                 "equalisation (HSV value) beside it",
        "published": "LOL rows are other test sets, cited for scale only",
    },
    metrics={"psnr": psnr, "ssim": ssim, "psnr_gtmean": psnr_gtmean},
    floor_name="LIME (alpha 0.5, gamma 0.65, tuned on training images)",
    datamodule="zoo.data.lowlight.LowLightDataModule",
    options=(Option("tile", "tile size in pixels (bounds the memory of large photos)", int, 512),
             Option("overlap", "overlap of neighbouring tiles in pixels", int, 64)),
    published={("CBSD68-synthetic", "synthetic"): _PUBLISHED},
))
