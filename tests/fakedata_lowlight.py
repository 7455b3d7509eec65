"""Tiny fake low-light data in the real on-disk layouts (random content only).

``make(root)`` writes:

* ``images/BSD200/*.jpg``, ``images/T91/*.bmp``, ``images/CBSD68/*.png`` — normal-light colour images
  (only if the CS fakes did not already create those folders);
* ``lowlight/LOL/{our485,eval15}/{low,high}/*.png`` (LOL-v1);
* ``lowlight/LOL-v2/Real_captured/{Train,Test}/{Low,Normal}/{low,normal}0000i.png`` and
  ``lowlight/LOL-v2/Synthetic/{Train,Test}/{Low,Normal}/r0000i.png`` (LOL-v2);
* ``lowlight/Retinexformer/LOLv1/{Train,Test}/{input,target}/*.png`` (Retinexformer layout);
* ``lowlight/custom/{low,high}/`` (custom pairs) and ``lowlight/real_low/LIME/*.bmp``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _img(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.random((h // 8 + 1, w // 8 + 1, 3))
    img = np.kron(small, np.ones((8, 8, 1)))[:h, :w]
    return ((0.1 + 0.75 * img + 0.1 * rng.random((h, w, 3))) * 255).astype(np.uint8)


def _pairs(rng, low_dir: Path, high_dir: Path, names: list[tuple[str, str]], size=(72, 80)) -> None:
    low_dir.mkdir(parents=True, exist_ok=True)
    high_dir.mkdir(parents=True, exist_ok=True)
    for lo, hi in names:
        a = _img(rng, *size)
        Image.fromarray(a).save(high_dir / hi)
        Image.fromarray((a * 0.15).astype(np.uint8)).save(low_dir / lo)


def make(root: Path) -> Path:
    rng = np.random.default_rng(7)
    for sub, ext, n in (("BSD200", ".jpg", 4), ("T91", ".bmp", 2), ("CBSD68", ".png", 2)):
        d = root / "images" / sub
        d.mkdir(parents=True, exist_ok=True)
        if not any(d.iterdir()):
            for i in range(n):
                Image.fromarray(_img(rng, 80, 96)).save(d / f"img{i:03d}{ext}")
    ll = root / "lowlight"
    for split, n in (("our485", 3), ("eval15", 1)):
        _pairs(rng, ll / "LOL" / split / "low", ll / "LOL" / split / "high", [(f"{i}.png", f"{i}.png") for i in range(n)])
    for split in ("Train", "Test"):
        _pairs(rng, ll / "LOL-v2/Real_captured" / split / "Low", ll / "LOL-v2/Real_captured" / split / "Normal",
               [(f"low{i:05d}.png", f"normal{i:05d}.png") for i in (1, 2)])
        _pairs(rng, ll / "LOL-v2/Synthetic" / split / "Low", ll / "LOL-v2/Synthetic" / split / "Normal",
               [(f"r{i:05d}.png", f"r{i:05d}.png") for i in (1, 2)])
        _pairs(rng, ll / "Retinexformer/LOLv1" / split / "input", ll / "Retinexformer/LOLv1" / split / "target",
               [(f"{i}.png", f"{i}.png") for i in (1, 2)])
    _pairs(rng, ll / "custom" / "low", ll / "custom" / "high", [("a_low.png", "a_high.png"), ("b.png", "b.png")])
    real = ll / "real_low" / "LIME"
    real.mkdir(parents=True, exist_ok=True)
    Image.fromarray((_img(rng, 70, 90) * 0.2).astype(np.uint8)).save(real / "1.bmp")
    return root
