"""Tiny fake pansharpening and flash data in the real on-disk formats (random content only).

``make(root)`` writes:

* ``pansharpen/full/imgWV2.mat`` (I_MS 80×80×8 uint16, I_PAN 320², L=11, sensor WV2),
  ``imgGE1.mat`` (4 bands, uint8, L=8), ``WV3_example.mat`` (I_MS_LR / I_PAN);
* ``pansharpen/reduced/{WV3_test,Pleiades_test}.mat`` (gt / lrms / pan floats in [0, 1]);
* ``pansharpen/h5/train_tiny.h5`` (PanCollection: gt / ms / lms / pan, N×C×H×W, 11-bit DN);
* ``flash/faid32_half/<scene>_{ambient,flash}.png`` and ``flash/faid_test12/{ambient,flash}/testset_*_{i}.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io as sio
from PIL import Image


def _smooth(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    small = rng.random((h // 8 + 1, w // 8 + 1, c))
    img = np.kron(small, np.ones((8, 8, 1)))[:h, :w]
    return 0.15 + 0.6 * img + 0.1 * rng.random((h, w, c))


def make(root: Path) -> Path:
    rng = np.random.default_rng(1)
    full = root / "pansharpen" / "full"
    red = root / "pansharpen" / "reduced"
    full.mkdir(parents=True, exist_ok=True)
    red.mkdir(parents=True, exist_ok=True)
    ms8 = (_smooth(rng, 80, 80, 8) * 2047).astype(np.uint16)
    pan8 = (_smooth(rng, 320, 320, 1)[..., 0] * 2047).astype(np.uint16)
    sio.savemat(full / "imgWV2.mat", {"I_MS": ms8, "I_PAN": pan8, "L": np.uint8(11), "ratio": np.uint8(4),
                                      "sensor": "WV2", "RGB_indexes": np.array([[5, 3, 2]], dtype=np.uint8)})
    ms4 = (_smooth(rng, 80, 80, 4) * 255).astype(np.uint8)
    pan4 = (_smooth(rng, 320, 320, 1)[..., 0] * 255).astype(np.uint8)
    sio.savemat(full / "imgGE1.mat", {"I_MS": ms4, "I_PAN": pan4, "L": np.uint8(8), "ratio": np.uint8(4), "sensor": "GeoEye1"})
    sio.savemat(full / "WV3_example.mat", {"I_MS_LR": (_smooth(rng, 16, 16, 8) * 2047).astype(np.uint16),
                                           "I_PAN": (_smooth(rng, 64, 64, 1)[..., 0] * 2047).astype(np.uint16)})
    for name, c in (("WV3_test", 8), ("Pleiades_test", 4)):
        sio.savemat(red / f"{name}.mat", {"gt": _smooth(rng, 64, 64, c), "lrms": _smooth(rng, 16, 16, c),
                                          "pan": _smooth(rng, 64, 64, 1)[..., 0]})
    try:
        import h5py
    except ImportError:
        pass
    else:
        (root / "pansharpen" / "h5").mkdir(parents=True, exist_ok=True)
        with h5py.File(root / "pansharpen" / "h5" / "train_tiny.h5", "w") as f:
            gt = (np.moveaxis(np.stack([_smooth(rng, 64, 64, 8) for _ in range(3)]), -1, 1) * 2047).astype(np.float64)
            f["gt"] = gt
            f["lms"] = gt
            f["ms"] = gt[:, :, 2::4, 2::4]
            f["pan"] = gt.mean(1, keepdims=True)
    fl = root / "flash" / "faid32_half"
    fl.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        a = (_smooth(rng, 100, 120, 3) * 255).astype(np.uint8)
        Image.fromarray(a).save(fl / f"Toys_{i:03d}_ambient.png")
        Image.fromarray((a * 0.7).astype(np.uint8)).save(fl / f"Toys_{i:03d}_flash.png")
    te = root / "flash" / "faid_test12"
    for sub in ("ambient", "flash"):
        (te / sub).mkdir(parents=True, exist_ok=True)
    for i in (1, 2):
        a = (_smooth(rng, 64, 80, 3) * 255).astype(np.uint8)
        Image.fromarray(a).save(te / "ambient" / f"testset_nonflash_{i}.png")
        Image.fromarray(a).save(te / "flash" / f"testset_flash_{i}.png")
    return root
