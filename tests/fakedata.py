"""Tiny fake datasets written in the real on-disk formats (torchgeo's ``tests/data`` idea).

Nothing here is derived from real data: images are random textures, matrices random Gaussians.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io as sio
from PIL import Image


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.random((h // 8 + 1, w // 8 + 1))
    img = np.kron(small, np.ones((8, 8)))[:h, :w]
    return (255 * (0.6 * img + 0.4 * rng.random((h, w)))).astype(np.uint8)


def make_cs_root(root: Path, n_train: int = 6, ratios: tuple[int, ...] = (10, 25)) -> Path:
    """``images/{Train400,T91,Set11,BSD68}`` + ``cs/phi`` in the ISTA-Net / DnCNN layouts."""
    rng = np.random.default_rng(0)
    for sub, n, size, ext, mode in (
        ("Train400", n_train, (120, 120), ".png", "L"),
        ("T91", 3, (110, 130), ".bmp", "RGB"),
        ("Set11", 2, (66, 70), ".tif", "P"),
        ("BSD68", 2, (50, 60), ".png", "L"),
    ):
        d = root / "images" / sub
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = _texture(rng, *size)
            im = Image.fromarray(np.stack([a, a[::-1], a[:, ::-1]], -1)) if mode == "RGB" else Image.fromarray(a)
            if mode == "P":
                im = im.convert("RGB").convert("P")
            im.save(d / f"img{i}{ext}")
    phi_dir = root / "cs" / "phi"
    phi_dir.mkdir(parents=True, exist_ok=True)
    for r in ratios:
        m = int(round(r / 100 * 1089))
        phi = np.linalg.qr(rng.standard_normal((1089, m)))[0].T  # orthonormal rows, like ISTA-Net's
        sio.savemat(phi_dir / f"phi_0_{r}_1089.mat", {"phi": phi})
        sio.savemat(phi_dir / f"Initialization_Matrix_{r}.mat", {"Qinit": phi.T.copy()})
    return root


def small_patch_args(recipe, overrides=()) -> list[str]:
    """CLI overrides that shrink a recipe's training crops to what the tiny fake images hold.

    ``recipe``: one YAML file or the ``--config`` list of a composed recipe (later files win), ``overrides`` the
    extra flags; the crop is the last ``data.init_args.patch`` among them. GPU stages train on 99² (CS) / 128²
    (CASSI, flash) crops; the fake images are smaller. CS crops stay multiples of the 33-pixel block.
    """
    import yaml

    patch = None
    for f in [recipe] if isinstance(recipe, (str, Path)) else list(recipe):
        init = ((yaml.safe_load(Path(f).read_text()) or {}).get("data") or {}).get("init_args") or {}
        patch = init.get("patch", patch)
    for a in overrides:
        if a.startswith("--data.init_args.patch="):
            patch = int(a.split("=", 1)[1])
    if patch is None or patch <= 66:
        return []
    return [f"--data.init_args.patch={66 if patch % 33 == 0 else 64}"]
