"""Benchmark protocol of flash-guided no-flash denoising for ``zoo bench``.

* Test sets ``FAID12-s25`` / ``-s50`` / ``-s75``: the 12 FAID test pairs of LGCNet
  (``flash/faid_test12/{ambient,flash}``, 600×900 sRGB), noisy = ambient + N(0, σ²) with
  σ ∈ {25, 50, 75}/255, **no clipping**, noise seeded per image (``torch.Generator().manual_seed(i)``
  for the i-th pair in name order, i from 0) so every model sees the same noise. The flash image is used as it is.
* Metrics: PSNR (per image, output clipped to [0, 1], range 1, no border) and SSIM, mean over
  images; ``psnr_global`` is LGCNet's number: **one PSNR over all 12 images together (global MSE)**.
  ``min_iterate`` is the smallest value of any iterate (SSO-PGA keeps it ≥ 0).
* Floor: guided filter (He et al. 2010) of each noisy channel with the flash luminance as guide,
  radius 4, ε = σ² (a classical flash/no-flash baseline).
* Published: MN (Information Fusion 2022) on its *own* FAID split — a different split, cited for scale only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.bench.protocols import Protocol, register_protocol
from zoo.bench.published import PUBLISHED
from zoo.metrics import psnr, ssim

__all__ = ["FlashProtocol", "guided_filter", "SIGMAS"]

SIGMAS = (25, 50, 75)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    k = 2 * r + 1
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), k, stride=1)


@torch.no_grad()
def guided_filter(p: torch.Tensor, guide: torch.Tensor, r: int = 4, eps: float = 1e-2) -> torch.Tensor:
    """He et al.'s guided filter of every channel of ``p`` (N, C, H, W) with a grey ``guide`` (N, 1, H, W)."""
    I = guide.float()
    mI, mp = _box(I, r), _box(p.float(), r)
    cov = _box(I * p, r) - mI * mp
    var = _box(I * I, r) - mI * mI
    a = cov / (var + eps)
    b = mp - a * mI
    return _box(a, r) * I + _box(b, r)


def _sse(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    return float(((output.float().clamp(0, 1) - target.float()) ** 2).sum()), target.numel()


def _global_psnr(parts: list[tuple[float, int]]) -> float:
    """PSNR (range 1) of the mean squared error over all pixels of all images together."""
    sse, n = sum(p[0] for p in parts), sum(p[1] for p in parts)
    return 10 * math.log10(n / sse) if sse > 0 else math.inf


class FlashProtocol(Protocol):
    floor_name = "guided filter (flash guide, r=4, eps=sigma^2)"

    def load(self, name: str, root: str | None) -> list[tuple[str, dict]]:
        from zoo.data.flash import _load, find_pairs

        sigma = float(name.rsplit("-s", 1)[1]) / 255.0
        out = []
        for i, p in enumerate(find_pairs(self.datasets[name], root)):
            amb, fl = _load(p, "as_is")
            g = torch.Generator().manual_seed(i)
            noisy = amb + sigma * torch.randn(amb.shape, generator=g)
            out.append((p[0], {"target": amb[None], "inputs": {"noisy": noisy[None], "flash": fl[None],
                                                              "sigma": torch.tensor([sigma])}}))
        return out

    def sample(self) -> dict:
        from zoo.bench.protocol_pansharpen import sample_ms

        x = sample_ms(256, 3)
        g = torch.Generator().manual_seed(0)
        flash = (x ** 0.8 * 0.9 + 0.05).clamp(0, 1)
        noisy = x + 25 / 255 * torch.randn(x.shape, generator=g)
        return {"target": x, "inputs": {"noisy": noisy, "flash": flash, "sigma": torch.tensor([25 / 255])}}

    def floor(self, net: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        fl = inputs["flash"]
        guide = fl.mean(1, keepdim=True) if fl.shape[1] > 1 else fl
        s = float(torch.as_tensor(inputs["sigma"]).reshape(-1)[0])
        return guided_filter(inputs["noisy"], guide, 4, max(s * s, 1e-4))

    def setting(self, net: nn.Module) -> str:
        return "sigma-aware"

    def finetune_data_args(self, folder: str) -> list[str]:
        import json

        return [f"--data.train_dirs=[{json.dumps(folder)}]", "--data.test_dir=null"]

    def adapt(self, net: nn.Module, inputs: dict[str, Any], steps: int) -> nn.Module:
        from zoo.training.target_adaptive import recorrupted_adapt

        return recorrupted_adapt(net, inputs["noisy"], inputs["flash"], inputs["sigma"], steps=steps)

    def restore_file(self, net: nn.Module, src: str, dst: str, overwrite: bool = False, flash: str | None = None,
                     sigma: float = 25.0, adapt: int = 0, **kw: Any) -> str:
        """Denoise a noisy no-flash image ``src`` with its flash image (``flash=``, default: the file
        with ``nonflash``/``ambient`` replaced by ``flash``); ``sigma`` in /255 units. ``adapt`` > 0
        first fine-tunes a copy of ``net`` on recorrupted copies of ``src`` for that many steps
        (:func:`~zoo.training.target_adaptive.recorrupted_adapt`)."""
        from PIL import Image

        from zoo.data.flash import read_rgb
        from zoo.hub.files import atomic_write

        if not 0 <= sigma <= 255:
            raise ValueError(f"sigma is in /255 units (e.g. 25); got {sigma}")
        if flash is not None and not Path(flash).is_file():
            raise FileNotFoundError(f"flash image {flash} does not exist")
        fpath = flash or str(src).replace("nonflash", "flash").replace("ambient", "flash")
        if flash is None and (fpath == str(src) or not Path(fpath).is_file()):
            raise FileNotFoundError(f"no flash image for {src}: pass it with --flash PATH (Python: flash=PATH)")
        noisy, fl = read_rgb(src)[None], read_rgb(fpath)[None]
        if adapt:
            net = self.adapt(net, {"noisy": noisy, "flash": fl, "sigma": sigma / 255.0}, adapt)
        with torch.no_grad():
            out = net(noisy=noisy, flash=fl, sigma=sigma / 255.0).float()
        with atomic_write(dst, overwrite=overwrite) as tmp:
            Image.fromarray(self.to_image(out)).save(tmp, format="PNG")
        how = f" after {adapt} target-adaptive steps" if adapt else ""
        return f"denoised {src} (sigma {sigma}/255) with flash guide {fpath}{how}"


register_protocol(FlashProtocol(
    task="flash",
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
    lightning_module="zoo.training.ssopga.SSOPGAModule",
    datamodule="zoo.data.flash.FlashDataModule",
))

_MN = "MN (Inf. Fusion 2022), its own FAID split — not the same test images"
PUBLISHED[("flash", "FAID12-s25", "sigma-aware")] = [{"method": _MN, "psnr": 34.48}]
PUBLISHED[("flash", "FAID12-s50", "sigma-aware")] = [{"method": _MN, "psnr": 29.48}]
PUBLISHED[("flash", "FAID12-s75", "sigma-aware")] = [{"method": _MN, "psnr": 25.30}]
