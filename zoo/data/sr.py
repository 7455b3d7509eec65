"""Super-resolution data: HR folders → random crops, degraded on the fly; the official paired test sets.

Training (USRNet's recipe, on ``images/T91`` + ``images/BSD200``; never on Set5/Set14/BSD100/CBSD68):
one scale per batch (``scale_probs``), one kernel per image — MATLAB bicubic (``imresize``), an
isotropic or anisotropic Gaussian, or a motion kernel (:mod:`zoo.physics.sr`), all ``kernel_size``
square on the LR grid of that scale — then Gaussian noise (σ = 0 for half the images, else uniform
in ``(0, sigma_max]``) and 8-bit quantisation, as an LR file would be. The blur runs on a crop with a
``margin`` of context that is cut away afterwards, so LR borders look like those of a real image
(no wrap-around).

Test: the official pairs ``sr/<Set>/image_SRF_<s>/img_XXX_SRF_<s>_{HR,LR}.png`` as they are
(grey images are expanded to RGB), or any HR folder, whose LR is made with ``imresize``.

Example (on your own HR folder):
    >>> from zoo.data.sr import SRDataModule
    >>> dm = SRDataModule(train_dirs=["/path/to/hr"], test_sets=[])  # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from zoo.data.base import RestorationDataModule
from zoo.data.images import split_train_val
from zoo.data.io import image_array, open_image
from zoo.data.paths import DatasetNotFoundError, find_data
from zoo.physics.sr import BlurDownsample, bicubic_kernel, gaussian_kernel, imresize, motion_kernel

__all__ = ["read_rgb", "read_pairs", "SRPatchDataset", "SRDegrader", "SRDataModule", "pad_kernel", "SR_SOURCES"]

SR_SOURCES = "github.com/jbhuang0604/SelfExSR (the Set5/Set14/BSD100 'image_SRF_<s>' folders)"


def read_rgb(path: str | Path) -> tuple[torch.Tensor, str]:
    """Read an image as (3, H, W) float32 in [0, 1] → (tensor, note): grey is expanded to RGB and 16-bit
    data divided by 65535 (:func:`zoo.data.io.image_array`); the note says which conversion happened."""
    with open_image(path) as im:
        mode = im.mode
        arr, bits = image_array(im, path)
    a = np.asarray(arr, dtype=np.float32)
    notes = []
    if a.ndim == 2:
        a = np.repeat(a[None], 3, 0)
        notes.append(f"{mode} grey image expanded to RGB")
    else:
        if mode not in ("RGB", "L"):
            notes.append(f"{mode} image converted to RGB")
        a = np.moveaxis(a[..., :3], -1, 0)
    if bits == 16:
        notes.append("16-bit values divided by 65535")
    return torch.from_numpy(np.ascontiguousarray(a)), "; ".join(notes)


def read_pairs(folder: str | Path, scale: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, HR (1,3,H,W), LR (1,3,h,w))`` of an official SelfExSR folder ``image_SRF_<scale>``."""
    folder = Path(folder)
    sub = folder / f"image_SRF_{scale}"
    if not sub.is_dir():
        have = sorted(p.name for p in folder.glob("image_SRF_*")) if folder.is_dir() else []
        raise DatasetNotFoundError(f"no ×{scale} pairs at {sub} (have: {have or 'nothing'}); expected "
                                   f"image_SRF_{scale}/img_XXX_SRF_{scale}_{{HR,LR}}.png from {SR_SOURCES}")
    out = []
    for hr in sorted(sub.glob(f"*_SRF_{scale}_HR.png")):
        lr = hr.with_name(hr.name.replace("_HR.png", "_LR.png"))
        if not lr.is_file():
            raise DatasetNotFoundError(f"{hr.name} has no LR partner {lr.name} in {sub}")
        x, _ = read_rgb(hr)
        y, _ = read_rgb(lr)
        if x.shape[-2] != y.shape[-2] * scale or x.shape[-1] != y.shape[-1] * scale:
            raise ValueError(f"{lr} is {tuple(y.shape[-2:])} but its HR {tuple(x.shape[-2:])} is not ×{scale} of it")
        out.append((re.sub(r"_SRF_\d+_HR$", "", hr.stem), x[None], y[None]))
    if not out:
        raise DatasetNotFoundError(f"no *_SRF_{scale}_HR.png in {sub}")
    return out


def pad_kernel(k: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad an odd ``(kh, kw)`` kernel to ``size × size`` around its centre."""
    ph, pw = (size - k.shape[-2]) // 2, (size - k.shape[-1]) // 2
    if ph < 0 or pw < 0:
        raise ValueError(f"kernel {tuple(k.shape)} is larger than {size}")
    return F.pad(k, (pw, pw, ph, ph))


class SRPatchDataset(Dataset):
    """Random augmented RGB crops of ``patch + 2·margin`` pixels; ``length`` samples per epoch (images in RAM)."""

    def __init__(self, files: Sequence[Path], patch: int = 96, margin: int = 12, length: int = 4000,
                 augment: bool = True) -> None:
        size = patch + 2 * margin
        images = [read_rgb(f)[0] for f in files]
        self.images = [im for im in images if min(im.shape[-2:]) >= size]
        if not self.images:
            raise ValueError(f"all {len(images)} training images are smaller than {size}px (patch + 2·margin); "
                             "lower `patch`.")
        self.size, self.length, self.augment = size, length, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = random.Random() if self.augment else random.Random(i)
        img = self.images[rng.randrange(len(self.images))]
        h, w = img.shape[-2:]
        t, l = rng.randrange(h - self.size + 1), rng.randrange(w - self.size + 1)
        x = img[:, t : t + self.size, l : l + self.size]
        if self.augment:
            x = torch.rot90(x, rng.randrange(4), (1, 2))
            if rng.random() < 0.5:
                x = x.flip(2)
        return x.contiguous()


class SRDegrader:
    """Collate: stack HR crops, pick one scale for the batch and a kernel + noise per image, make the LR.

    Args:
        margin: context pixels around each crop (a multiple of every scale), cut away after the blur.
        scale_probs: ``{scale: probability}``.
        kernel_probs: probabilities of ``bicubic``, ``iso``, ``aniso``, ``motion``.
        sigma_max: the largest noise level (the [0, 1] scale); half the images are noise-free.
        kernel_size: every kernel is padded to this odd size (one tensor per batch).
        quantize: round the LR to 8 bits.
        seed: a fixed seed makes every batch the same degradations (validation); ``None`` = random.
    """

    def __init__(self, margin: int = 12, scale_probs: dict[int, float] | None = None,
                 kernel_probs: dict[str, float] | None = None, sigma_max: float = 0.03, kernel_size: int = 25,
                 quantize: bool = True, seed: int | None = None) -> None:
        self.margin = int(margin)
        self.scale_probs = {int(k): float(v) for k, v in (scale_probs or {2: 0.25, 3: 0.15, 4: 0.6}).items()}
        for s in self.scale_probs:
            if self.margin % s:
                raise ValueError(f"margin {self.margin} must be a multiple of every scale, not of {s}")
        self.kernel_probs = dict(kernel_probs or {"bicubic": 0.5, "iso": 0.2, "aniso": 0.2, "motion": 0.1})
        self.sigma_max, self.kernel_size, self.quantize, self.seed = sigma_max, int(kernel_size), quantize, seed
        self.physics = BlurDownsample(2)

    def kernel(self, kind: str, s: int, rng: random.Random) -> torch.Tensor:
        sh = (s - 1) / 2
        n = self.kernel_size
        if kind == "bicubic":
            return pad_kernel(bicubic_kernel(s), n)
        if kind == "iso":
            return gaussian_kernel(rng.uniform(0.6, 2.2), size=n, shift=sh)
        if kind == "aniso":
            s1 = rng.uniform(0.8, 2.8)
            return gaussian_kernel(s1, rng.uniform(0.5, s1), rng.uniform(0, math.pi), size=n, shift=sh)
        if kind == "motion":
            return motion_kernel(rng.randrange(10**6), size=n, length=rng.uniform(0.3, 0.7), shift=sh)
        raise ValueError(f"unknown kernel kind {kind!r} (bicubic, iso, aniso, motion)")

    def __call__(self, crops: list[torch.Tensor]) -> dict[str, Any]:
        rng = random.Random(self.seed) if self.seed is not None else random.Random()
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        s = rng.choices(list(self.scale_probs), weights=list(self.scale_probs.values()))[0]
        big = torch.stack(crops)
        m, ms = self.margin, self.margin // s
        hr_full = big[..., : big.shape[-2] // s * s, : big.shape[-1] // s * s]
        kinds = rng.choices(list(self.kernel_probs), weights=list(self.kernel_probs.values()), k=len(crops))
        lrs, ks = [], []
        for x, kind in zip(hr_full, kinds):
            k = self.kernel(kind, s, rng)
            if kind == "bicubic":
                y = imresize(x, 1 / s)
            else:
                y = self.physics.A(x[None], k, s)[0]
            lrs.append(y[:, ms : y.shape[-2] - ms, ms : y.shape[-1] - ms])
            ks.append(k)
        lr = torch.stack(lrs)
        sig = torch.tensor([0.0 if rng.random() < 0.5 else rng.uniform(0, self.sigma_max) for _ in crops])
        lr = lr + sig.view(-1, 1, 1, 1) * torch.randn(lr.shape, generator=g)
        if self.quantize:
            lr = (lr.clamp(0, 1) * 255).round() / 255
        target = hr_full[..., m : hr_full.shape[-2] - m, m : hr_full.shape[-1] - m]
        return {"target": target.contiguous(), "inputs": {"lr": lr, "kernel": torch.stack(ks)[:, None],
                                                          "sigma": sig, "scale": s}}


class _ValSet(Dataset):
    """Fixed ×``scale`` bicubic pairs (centre crops) of held-out training images."""

    def __init__(self, files: Sequence[Path], scale: int, crop: int) -> None:
        self.items = []
        for f in files:
            x, _ = read_rgb(f)
            h, w = x.shape[-2:]
            c = min(crop, h, w) // scale * scale
            t, l = (h - c) // 2, (w - c) // 2
            x = x[:, t : t + c, l : l + c]
            y = ((imresize(x, 1 / scale).clamp(0, 1) * 255).round() / 255)
            self.items.append({"target": x, "inputs": {"lr": y, "kernel": bicubic_kernel(scale)[None],
                                                       "sigma": torch.tensor(0.0), "scale": scale}})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


class _PairSet(Dataset):
    def __init__(self, pairs: list[tuple[str, torch.Tensor, torch.Tensor]], scale: int) -> None:
        self.pairs, self.scale = pairs, scale

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        _, x, y = self.pairs[i]
        return {"target": x[0], "inputs": {"lr": y[0], "kernel": bicubic_kernel(self.scale)[None],
                                           "sigma": torch.tensor(0.0), "scale": self.scale}}


def _collate_one(items: list[dict[str, Any]]) -> dict[str, Any]:
    it = items[0]
    inp = it["inputs"]
    return {"target": it["target"][None], "inputs": {"lr": inp["lr"][None], "kernel": inp["kernel"][None],
                                                     "sigma": inp["sigma"].reshape(1), "scale": int(inp["scale"])}}


class SRDataModule(RestorationDataModule):
    """Train on degraded crops of HR folders; validate on held-out ×``val_scale`` bicubic crops; test on official pairs.

    Args:
        train_dirs: HR folders (relative to ``data_root`` or absolute).
        test_sets: official SelfExSR folders (``sr/Set5``) tested at ``test_scale``.
        data_root: overrides ``ZOO_DATA``.
        patch: HR training crop (a multiple of every scale: 96 = 2·48 = 3·32 = 4·24).
        margin, scale_probs, kernel_probs, sigma_max: see :class:`SRDegrader`.
        samples_per_epoch, val_images, batch_size, num_workers: as the other datamodules.
        val_scale, val_crop: the validation pairs (MATLAB bicubic LR of centre crops).
    """

    def __init__(
        self,
        train_dirs: Sequence[str] = ("images/T91", "images/BSD200"),
        test_sets: Sequence[str] = ("sr/Set5",),
        data_root: str | None = None,
        patch: int = 96,
        margin: int = 12,
        scale_probs: dict[int, float] | None = None,
        kernel_probs: dict[str, float] | None = None,
        sigma_max: float = 0.03,
        samples_per_epoch: int = 4000,
        val_images: int = 8,
        val_scale: int = 4,
        val_crop: int = 192,
        test_scale: int = 4,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.test_names = [Path(d).name for d in test_sets]

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None):
            self.val_files, self.train_files = split_train_val(hp.train_dirs, hp.data_root, hp.val_images)
            self.train_set = SRPatchDataset(self.train_files, hp.patch, hp.margin, hp.samples_per_epoch)
            self.val_set = _ValSet(self.val_files, hp.val_scale, hp.val_crop)
            self.degrader = SRDegrader(hp.margin, hp.scale_probs, hp.kernel_probs, hp.sigma_max)
        if stage in ("test", "predict", None):
            self.test_sets = [_PairSet(read_pairs(find_data(d, hp.data_root, layout=f"{d}/image_SRF_<s>/*_HR.png",
                                                            source=SR_SOURCES), hp.test_scale), hp.test_scale)
                              for d in hp.test_sets]

    def _loader(self, ds: Dataset, shuffle: bool, bs: int) -> DataLoader:
        nw = int(self.hparams.get("num_workers", 0))
        collate = self.degrader if shuffle else _collate_one
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, num_workers=nw, drop_last=shuffle,
                          persistent_workers=nw > 0, collate_fn=collate)
