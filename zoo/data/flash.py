"""Flash / no-flash pairs for flash-guided denoising; Gaussian noise added on the fly.

Layouts (``find_pairs``):

* **FAID files**: ``<scene>_ambient.png`` + ``<scene>_flash.png`` in one folder (FAID ships the
  flash-only illumination; ``guide="with_flash"`` forms the with-flash photo
  ``ambient + flash`` in linear light, which is what a camera records with the flash on);
* **split folders**: ``ambient/`` + ``flash/`` (the FAID test-12 layout
  ``testset_nonflash_i.png`` / ``testset_flash_i.png``; names are matched after removing the
  words ``nonflash``/``noflash``/``ambient``/``flash``), used as they are;
* **custom**: any folder in either layout.

Training: random ``patch`` crops with the 8 flips/rotations, σ drawn per sample uniformly from
``sigma_range`` (in /255 units), noise without clipping; inputs ``{"noisy", "flash", "sigma"}``.
Validation: centre crops of held-out training pairs, fixed noise. Test: whole images at each σ of
``test_sigmas`` with a noise seed per image (reproducible). Never train on ``flash/faid_test12``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.data.base import RestorationDataModule
from zoo.data.io import image_array, open_image
from zoo.data.paths import DatasetNotFoundError, resolve_path
from zoo.data.spectral import linear_to_srgb, srgb_to_linear

__all__ = ["find_pairs", "load_pair", "read_rgb", "srgb_to_linear", "linear_to_srgb", "FlashPatches", "FlashImages", "FlashDataModule"]

_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_SOURCE = "FAID (Aksoy et al. 2018, yaksoy.github.io/faid); test-12 split of LGCNet (TIP 2024)"


def read_rgb(path: str | Path) -> torch.Tensor:
    """A (3, H, W) float32 tensor in [0, 1]; grey images (8- or 16-bit) are repeated over R, G, B."""
    with open_image(path) as im:
        a, _ = image_array(im, path)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def _key(stem: str) -> str:
    s = re.sub(r"(nonflash|noflash|no_flash|ambient|flash)", "", stem, flags=re.I)
    return re.sub(r"[_\-]+", "_", s).strip("_")


def find_pairs(folder: str | Path, root: str | Path | None = None) -> list[tuple[str, Path, Path, bool]]:
    """``(name, ambient, flash, flash_only)`` for a FAID-files or split-folders layout."""
    p = resolve_path(folder, root)
    if not p.is_dir():
        raise DatasetNotFoundError(f"flash data not found: {p}. Expected <dir>/<scene>_ambient.png + <scene>_flash.png "
                                   f"or <dir>/ambient/ + <dir>/flash/. Source: {_SOURCE}. Set ZOO_DATA or pass a path.")
    pairs = []
    if (p / "ambient").is_dir() and (p / "flash").is_dir():
        amb = {_key(f.stem): f for f in (p / "ambient").iterdir() if f.suffix.lower() in _EXTS}
        fl = {_key(f.stem): f for f in (p / "flash").iterdir() if f.suffix.lower() in _EXTS}
        pairs = [(k, amb[k], fl[k], False) for k in sorted(amb) if k in fl]
    else:
        for a in sorted(f for f in p.iterdir() if f.suffix.lower() in _EXTS and "_ambient" in f.stem):
            cands = [a.with_name(a.name.replace("_ambient", "_flash"))]
            f = next((c for c in cands if c.is_file()), None)
            if f is not None:
                pairs.append((a.stem.replace("_ambient", ""), a, f, True))
    if not pairs:
        raise DatasetNotFoundError(f"no (ambient, flash) pairs in {p}: expected <scene>_ambient.* + <scene>_flash.* "
                                   "or ambient/ + flash/ folders with matching names")
    return pairs


def load_pair(pair: tuple[str, Path, Path, bool], guide: str) -> tuple[torch.Tensor, torch.Tensor]:
    _, a, f, flash_only = pair
    amb, fl = read_rgb(a), read_rgb(f)
    if amb.shape != fl.shape:
        raise ValueError(f"{a.name} {tuple(amb.shape)} and {f.name} {tuple(fl.shape)} differ in size")
    if flash_only and guide == "with_flash":
        fl = linear_to_srgb(srgb_to_linear(amb) + srgb_to_linear(fl))
    return amb, fl


class FlashPatches(Dataset):
    """Random crops + D4 augmentation + per-sample σ (uniform in ``sigma_range``/255), noise on the fly.

    ``illumination_jitter`` = j > 0 (stops) also varies the light, in linear RGB: the ambient exposure
    by 2^U(−j, j); for FAID flash-only pairs the flash strength β ~ 2^U(−1, 1) in the with-flash guide
    ``ambient + β·flash``; the guide's own exposure so its mean is the ambient's times 2^U(−j/2, j/2)
    (cameras auto-expose flash shots, so a guide is not systematically brighter than the target); and
    a white-balance gain of ±10 % per channel. The network must then take colour and brightness
    from the noisy image and only structure from the guide.
    """

    def __init__(self, images: Sequence[tuple[torch.Tensor, ...]], patch: int = 96, length: int = 2000,
                 sigma_range: Sequence[float] = (5.0, 80.0), illumination_jitter: float = 0.0) -> None:
        # items: (ambient, guide) or (ambient, guide, flash_only) when the flash-only image is known
        self.images = [im for im in images if min(im[0].shape[-2:]) >= patch]
        if not self.images:
            raise ValueError(f"no training pair is at least {patch} pixels; lower `patch`")
        if illumination_jitter < 0:
            raise ValueError(f"illumination_jitter is in stops and must be >= 0, got {illumination_jitter}")
        self.patch, self.length, self.sigma_range = patch, length, tuple(sigma_range)
        self.jitter = float(illumination_jitter)

    def __len__(self) -> int:
        return self.length

    def _relight(self, x: torch.Tensor, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.jitter
        amb = srgb_to_linear(x[0]) * 2 ** rng.uniform(-j, j)
        if x.shape[0] == 3:  # flash-only image known: a with-flash photo at a random flash strength
            guide = amb + 2 ** rng.uniform(-1, 1) * srgb_to_linear(x[2])
        else:
            guide = srgb_to_linear(x[1])
        guide = guide * (amb.mean() / guide.mean().clamp_min(1e-6)) * 2 ** rng.uniform(-j / 2, j / 2)
        guide = guide * torch.tensor([1 + rng.uniform(-0.1, 0.1) for _ in range(guide.shape[0])])[:, None, None]
        return linear_to_srgb(amb), linear_to_srgb(guide)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = random.Random()
        item = self.images[rng.randrange(len(self.images))]
        h, w = item[0].shape[-2:]
        t, l = rng.randrange(h - self.patch + 1), rng.randrange(w - self.patch + 1)
        x = torch.stack(item if self.jitter else item[:2])[..., t : t + self.patch, l : l + self.patch]
        x = torch.rot90(x, rng.randrange(4), (-2, -1))
        if rng.random() < 0.5:
            x = x.flip(-1)
        x = x.contiguous()
        target, guide = self._relight(x, rng) if self.jitter else (x[0], x[1])
        sigma = rng.uniform(*self.sigma_range) / 255.0
        noisy = target + sigma * torch.randn(target.shape)
        return {"target": target, "inputs": {"noisy": noisy, "flash": guide, "sigma": torch.tensor(sigma)}}


class FlashImages(Dataset):
    """Whole (or centre-cropped) pairs at a fixed σ with a fixed noise seed per image."""

    def __init__(self, images: Sequence[tuple[str, torch.Tensor, torch.Tensor]], sigma: float, crop: int | None = None,
                 seed: int = 0, auto_exposure: bool = False) -> None:
        # auto_exposure: scale the guide (linear light) to the ambient's mean, as an auto-exposed flash shot
        self.images, self.sigma, self.crop, self.seed = list(images), float(sigma), crop, seed
        if auto_exposure:
            self.images = [(n, a, linear_to_srgb(srgb_to_linear(f) * srgb_to_linear(a).mean() / srgb_to_linear(f).mean().clamp_min(1e-6)))
                           for n, a, f in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        name, amb, fl = self.images[i]
        if self.crop:
            h, w = amb.shape[-2:]
            c = min(self.crop, h, w)
            t, l = (h - c) // 2, (w - c) // 2
            amb, fl = amb[:, t : t + c, l : l + c], fl[:, t : t + c, l : l + c]
        g = torch.Generator().manual_seed(self.seed * 1000 + i)
        s = self.sigma / 255.0
        noisy = amb + s * torch.randn(amb.shape, generator=g)
        return {"target": amb, "inputs": {"noisy": noisy, "flash": fl, "sigma": torch.tensor(s)}, "name": name}


class FlashDataModule(RestorationDataModule):
    """Flash-guided denoising data (module docstring).

    Args:
        train_dirs: folders of training pairs (FAID-files or split layout; custom folders work).
        test_dir: test pairs (default the FAID test-12 split).
        data_root: overrides ``ZOO_DATA``.
        guide: ``"with_flash"`` (ambient + flash-only in linear light, for FAID-files folders) or ``"as_is"``.
        patch, samples_per_epoch, batch_size, num_workers: training loader.
        sigma_range: training σ range in /255 units.
        illumination_jitter: stops of random exposure / flash strength / white balance in training
            (:class:`FlashPatches`); 0 keeps the pairs' own light.
        val_images: held-out training pairs for validation (centre ``val_crop`` crops, σ = ``val_sigma``).
        test_sigmas: σ values (/255) of the test sets.
    """

    def __init__(self, train_dirs: Sequence[str] = ("flash/faid32_half",), test_dir: str | None = "flash/faid_test12",
                 data_root: str | None = None, guide: str = "with_flash", patch: int = 96, samples_per_epoch: int = 2000,
                 batch_size: int = 8, num_workers: int = 0, sigma_range: Sequence[float] = (5.0, 80.0),
                 val_images: int = 3, val_crop: int = 256, val_sigma: float = 25.0,
                 test_sigmas: Sequence[float] = (25.0, 50.0, 75.0), illumination_jitter: float = 0.0) -> None:
        super().__init__()
        if guide not in ("with_flash", "as_is"):
            raise ValueError(f"guide must be 'with_flash' or 'as_is', got {guide!r}")
        self.save_hyperparameters()
        self.test_names = [f"sigma{int(s)}" for s in test_sigmas] if test_dir else []

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None):
            pairs = []
            for d in hp.train_dirs:
                if "faid_test12" in str(d):
                    raise ValueError(f"{d} is the FAID test split: never train on it")
                pairs += find_pairs(d, hp.data_root)
            rng = random.Random(0)
            rng.shuffle(pairs)
            nval = min(hp.val_images, max(0, len(pairs) - 1))
            val, train = pairs[:nval], pairs[nval:]
            items = [(*load_pair(p, hp.guide), *((read_rgb(p[2]),) if p[3] and hp.illumination_jitter else ())) for p in train]
            self.train_set = FlashPatches(items, hp.patch, hp.samples_per_epoch, hp.sigma_range, hp.illumination_jitter)
            # with illumination jitter, validation guides are auto-exposed too (the training condition)
            self.val_set = FlashImages([(p[0], *load_pair(p, hp.guide)) for p in val or train[:1]], hp.val_sigma, hp.val_crop,
                                       auto_exposure=hp.illumination_jitter > 0)
        if stage in ("test", "predict", None) and hp.test_dir:
            imgs = [(p[0], *load_pair(p, hp.guide)) for p in find_pairs(hp.test_dir, hp.data_root)]
            self.test_sets = [FlashImages(imgs, s) for s in hp.test_sigmas]
