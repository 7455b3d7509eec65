"""Tiny fake CASSI data in the real on-disk formats (random content, nothing derived from real data).

``make(root)`` writes, under ``root``:
``cassi/mask_256.mat`` (key ``mask``; 96×96 here), ``cassi/real/mask_660.mat`` (96×96) and
``cassi/real/scene1.mat`` (``meas_real``, 96×150), ``cassi/cave256/*.mat`` (``NRD`` uint16 H×W×31),
``cassi/remote/{Samson,jasperRidge2_R198,paris_data_hs_ms}.mat`` (their keys and layouts),
``cassi/kaist/scene01.mat`` (``img`` float H×W×28), ``cassi/mst_cave/*.mat`` (``img_expand`` uint16),
``cassi/cave256_train/balloons_ms_256.mat`` (``Omsi`` uint16 64×144×31),
``cassi/cave_png/fake_ms/fake_ms/fake_ms_{01..31}.png`` (16-bit), and colour RGB images in
``images/T91`` and ``flash/faid32_half`` when absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io as sio
from PIL import Image


def _smooth(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    small = rng.random((h // 8 + 1, w // 8 + 1, 3))
    base = np.kron(small, np.ones((8, 8, 1)))[:h, :w]
    spectra = rng.random((3, c))
    return np.clip(base @ spectra / 3 + 0.05 * rng.random((h, w, c)), 0, 1)


def make(root: Path) -> Path:
    rng = np.random.default_rng(7)
    cassi = root / "cassi"
    for sub in ("real", "cave256", "remote", "kaist", "mst_cave"):
        (cassi / sub).mkdir(parents=True, exist_ok=True)
    sio.savemat(cassi / "mask_256.mat", {"mask": rng.random((96, 96)).astype(np.float32)})
    sio.savemat(cassi / "real" / "mask_660.mat", {"mask": rng.random((96, 96)).astype(np.float32)})
    sio.savemat(cassi / "real" / "scene1.mat", {"meas_real": rng.random((96, 150)).astype(np.float32)})
    for name in ("cloth_ms_256", "apples_ms_256"):
        sio.savemat(cassi / "cave256" / f"{name}.mat", {"NRD": (_smooth(rng, 48, 48, 31) * 40000).astype(np.uint16)})
    sio.savemat(cassi / "kaist" / "scene01.mat", {"img": _smooth(rng, 40, 40, 28)})
    (cassi / "cave256_train").mkdir(parents=True, exist_ok=True)  # the real training cube's layout (key Omsi)
    sio.savemat(cassi / "cave256_train" / "balloons_ms_256.mat",
                {"Omsi": (_smooth(np.random.default_rng(11), 64, 144, 31) * 60000).astype(np.uint16)})
    sio.savemat(cassi / "mst_cave" / "scene001.mat", {"img_expand": (_smooth(rng, 72, 72, 28) * 65535).astype(np.uint16)})
    png = cassi / "cave_png" / "fake_ms" / "fake_ms"
    png.mkdir(parents=True, exist_ok=True)
    cube = (_smooth(rng, 40, 40, 31) * 65535).astype(np.uint16)
    for b in range(31):
        Image.fromarray(cube[..., b]).save(png / f"fake_ms_{b + 1:02d}.png")
    sio.savemat(cassi / "remote" / "Samson.mat", {"SamSon": _smooth(rng, 30, 30, 156)})
    y = (_smooth(rng, 30, 30, 198) * 5000).astype(np.uint16)
    sio.savemat(cassi / "remote" / "jasperRidge2_R198.mat", {
        "Y": y.reshape(900, 198, order="F").T, "nRow": np.array([[30]], dtype=np.uint8),
        "nCol": np.array([[30]], dtype=np.uint8), "maxValue": np.array([[5000]], dtype=np.uint16),
        "SlectBands": np.arange(4, 202, dtype=np.uint8).reshape(-1, 1)})
    sio.savemat(cassi / "remote" / "paris_data_hs_ms.mat", {
        "HSim": _smooth(rng, 30, 30, 128), "non_del_bands": np.arange(8, 136, dtype=np.uint8)[None]})
    for sub, n, size in (("images/T91", 3, (90, 100)), ("flash/faid32_half", 2, (80, 96))):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        if not any(d.iterdir()):
            for i in range(n):
                Image.fromarray((_smooth(rng, *size, 3) * 255).astype(np.uint8)).save(d / f"fake{i}_ambient.png")
    return root
