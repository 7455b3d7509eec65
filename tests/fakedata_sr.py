"""Fake super-resolution data in the real layouts: SelfExSR ``sr/<Set>/image_SRF_<s>/img_XXX_SRF_<s>_{HR,LR}.png``
(LR = bicubic imresize of random textures, 8-bit), HR training folders ``images/BSD200`` and ``images/CBSD68``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zoo.physics.sr import imresize


def _rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.random((h // 6 + 1, w // 6 + 1, 3))
    img = np.kron(small, np.ones((6, 6, 1)))[:h, :w]
    return (255 * (0.7 * img + 0.3 * rng.random((h, w, 3)))).astype(np.uint8)


def _save_pair(d: Path, i: int, s: int, hr: np.ndarray) -> None:
    d.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(hr.astype(np.float64) / 255)
    x = x.permute(2, 0, 1) if x.ndim == 3 else x
    lr = (imresize(x, 1 / s).clamp(0, 1) * 255).round().to(torch.uint8)
    lr = lr.permute(1, 2, 0).numpy() if lr.ndim == 3 else lr.numpy()
    Image.fromarray(hr).save(d / f"img_{i:03d}_SRF_{s}_HR.png")
    Image.fromarray(lr).save(d / f"img_{i:03d}_SRF_{s}_LR.png")


def make(root: Path) -> Path:
    rng = np.random.default_rng(7)
    for s in (2, 3, 4):
        for i in (1, 2):
            _save_pair(root / "sr" / "Set5" / f"image_SRF_{s}", i, s, _rgb(rng, 48, 36))
        grey = _rgb(rng, 36, 48)[..., 0]
        _save_pair(root / "sr" / "Set14" / f"image_SRF_{s}", 1, s, grey)  # Set14 holds grey images too
    _save_pair(root / "sr" / "BSD100" / "image_SRF_4", 1, 4, _rgb(rng, 40, 44))
    # enough HR images for the recipes' 8 held-out validation images + training crops of 96 + 2·12 pixels
    for sub, n, size in (("BSD200", 10, (130, 128)), ("CBSD68", 2, (50, 45))):
        d = root / "images" / sub
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(_rgb(rng, *size)).save(d / f"sr{i}.png")
    return root
