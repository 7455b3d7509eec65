"""Task ``flash``: flash-guided no-flash denoising (SSO-PGA and its twin).

* Test sets ``FAID12-s25`` / ``-s50`` / ``-s75``: the 12 FAID test pairs of LGCNet
  (``flash/faid_test12/{ambient,flash}``, 600×900 sRGB), noisy = ambient + N(0, σ²) with
  σ ∈ {25, 50, 75}/255, **no clipping**, noise seeded per image (``torch.Generator().manual_seed(i)``
  for the i-th pair in name order, i from 0) so every model sees the same noise. The flash image is used as it is.
* Metrics: PSNR (per image, output clipped to [0, 1], range 1, no border) and SSIM, mean over
  images; ``psnr_global`` is LGCNet's number: **one PSNR over all 12 images together (global MSE)**.
  ``min_iterate`` is the smallest value of any iterate (SSO-PGA keeps it ≥ 0).
* Floor: guided filter (He et al. 2010) of each noisy channel with the flash luminance as guide,
  radius 4, ε = σ² (a classical flash/no-flash baseline).
* Target-adaptive inference (``--adapt``): :func:`~zoo.training.target_adaptive.r2r_adapt`.
* Published: MN (Information Fusion 2022) on its *own* FAID split — a different split, cited for scale only.
* ``zoo restore``: a noisy no-flash image + its flash image (``--flash``), σ in /255 (``--sigma``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from zoo.data.flash import find_pairs, load_pair, read_rgb
from zoo.metrics import psnr, ssim
from zoo.inference import restore_inputs_tiled
from zoo.models.base import Restorer
from zoo.samples import sample_ms
from zoo.solvers import guided_filter
from zoo.tasks.base import Batch, Option, Task, Writer, image_format, png_writer, register_task
from zoo.training.target_adaptive import DEFAULTS, r2r_adapt

__all__ = ["FlashTask", "SIGMAS"]

SIGMAS = (25, 50, 75)


def _sse(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    return float(((output.float().clamp(0, 1) - target.float()) ** 2).sum()), target.numel()


def _global_psnr(parts: list[tuple[float, int]]) -> float:
    """PSNR (range 1) of the mean squared error over all pixels of all images together."""
    sse, n = sum(p[0] for p in parts), sum(p[1] for p in parts)
    return 10 * math.log10(n / sse) if sse > 0 else math.inf


class FlashTask(Task):
    def load_testset(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        sigma = float(name.rsplit("-s", 1)[1]) / 255.0
        out = []
        for i, p in enumerate(find_pairs(self.datasets[name], root)):
            amb, fl = load_pair(p, "as_is")
            g = torch.Generator().manual_seed(i)
            noisy = amb + sigma * torch.randn(amb.shape, generator=g)
            out.append((p[0], {"target": amb[None], "inputs": {"noisy": noisy[None], "flash": fl[None],
                                                              "sigma": torch.tensor([sigma])}}))
        return out

    def sample(self, net: Restorer) -> Batch:
        x = sample_ms(256, net.channels)
        g = torch.Generator().manual_seed(0)
        flash = (x ** 0.8 * 0.9 + 0.05).clamp(0, 1)
        noisy = x + 25 / 255 * torch.randn(x.shape, generator=g)
        return {"target": x, "inputs": {"noisy": noisy, "flash": flash, "sigma": torch.tensor([25 / 255])}}

    def floor(self, net: Restorer, inputs: dict[str, Any]) -> torch.Tensor:
        fl = inputs["flash"]
        guide = fl.mean(1, keepdim=True) if fl.shape[1] > 1 else fl
        s = float(torch.as_tensor(inputs["sigma"]).reshape(-1)[0])
        return guided_filter(inputs["noisy"], guide, 4, max(s * s, 1e-4))

    def setting(self, net: Restorer) -> str:
        return "sigma-aware"

    def finetune_data_args(self, folder: str) -> list[str]:
        return [f"--data.train_dirs=[{json.dumps(folder)}]", "--data.test_dir=null"]

    def adapt(self, net: Restorer, inputs: dict[str, Any], steps: int) -> Restorer:
        return r2r_adapt(net, inputs["noisy"], inputs["flash"], inputs["sigma"], steps=steps)

    def read_input(self, net: Restorer, src: str, flash: str | None = None, sigma: float = 25.0,
                   **opts: Any) -> tuple[dict[str, Any], str]:
        """A noisy no-flash image ``src`` and its flash image (``flash``, default: the file with
        ``nonflash``/``ambient`` replaced by ``flash``); ``sigma`` in /255 units."""
        if not 0 <= sigma <= 255:
            raise ValueError(f"sigma is in /255 units (e.g. 25); got {sigma}")
        if flash is not None and not Path(flash).is_file():
            raise FileNotFoundError(f"flash image {flash} does not exist")
        fpath = flash or str(src).replace("nonflash", "flash").replace("ambient", "flash")
        if flash is None and (fpath == str(src) or not Path(fpath).is_file()):
            raise FileNotFoundError(f"no flash image for {src}: pass it with --flash PATH (Python: flash=PATH)")
        noisy, fl = read_rgb(src)[None], read_rgb(fpath)[None]
        return {"noisy": noisy, "flash": fl, "sigma": sigma / 255.0}, \
            f"denoised {src} (sigma {sigma}/255) with flash guide {fpath}"

    def run(self, net: Restorer, inputs: dict[str, Any], tile: int = 512, overlap: int = 32,
            **opts: Any) -> torch.Tensor:
        """Tiled: memory stays bounded for large photos (the data term is per pixel; the overlap covers
        the prox network's context, and the blend leaves no seams)."""
        return restore_inputs_tiled(net, inputs, tile=tile, overlap=overlap, like="noisy")

    def outputs(self, net: Restorer, result: torch.Tensor, dst: str) -> dict[Path, Writer]:
        return {Path(dst): png_writer(self, result, image_format(dst))}


_MN = "MN (Inf. Fusion 2022), its own FAID split — not the same test images"

register_task(FlashTask(
    name="flash",
    headline=("FAID12-s25",),
    datasets={f"FAID12-s{s}": "flash/faid_test12" for s in SIGMAS},
    description={
        "test_set": "FAID test-12 (LGCNet split), 600x900 sRGB, flash image as guide (as is)",
        "noise": "ambient + N(0, sigma^2), sigma in {25, 50, 75}/255, no clipping, torch.Generator seed = pair index",
        "psnr": "per image on the clipped [0,1] output, range 1, no border; mean over images",
        "psnr_global": "LGCNet protocol: one PSNR from the squared error of all 12 images together (clipped output)",
        "ssim": "Gaussian 11x11 sigma 1.5, per channel, mean",
        "floor": "guided filter (He et al.), flash luminance guide, r=4, eps=sigma^2",
    },
    metrics={"psnr": psnr, "ssim": ssim},
    aggregates={"psnr_global": (_sse, _global_psnr)},
    floor_name="guided filter (flash guide, r=4, eps=sigma^2)",
    datamodule="zoo.data.flash.FlashDataModule",
    options=(Option("flash", "the flash image of INPUT (default: INPUT's name with nonflash/ambient replaced by flash)",
                    metavar="PNG"),
             Option("sigma", "noise level of INPUT in /255 units (default 25)", float, None),
             Option("tile", "tile size in pixels (bounds the memory of large photos)", int, 512),
             Option("overlap", "overlap of neighbouring tiles in pixels", int, 32)),
    adapt_method="fine-tune a copy on recorrupted pairs of the noisy input (y + a z -> y - z/a, z ~ N(0, s^2), MSE, "
                 "Adam; inputs and the known s only, no reference; Pang et al. 2021, Recorrupted-to-Recorrupted)",
    adapt_defaults=dict(DEFAULTS["flash"]),
    published={(f"FAID12-s{s}", "sigma-aware"): [{"method": _MN, "psnr": p}] for s, p in ((25, 34.48), (50, 29.48), (75, 25.30))},
))
