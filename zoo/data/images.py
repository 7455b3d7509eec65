"""Grey-image datasets for compressive sensing (and other single-image tasks).

Training: random ``patch×patch`` crops (a multiple of the CS block, 99 = 3·33 by default) from
image folders, with the 8 flips/rotations; colour images are converted to luminance
(ITU-R BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B``, full range, as PIL's ``"L"``).
Testing: whole images, one per batch.

Folders are given relative to the data root (``ZOO_DATA``) or as absolute paths, so a custom
folder of PNG/JPEG/TIFF/BMP images works for fine-tuning.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from zoo.data.base import RestorationDataModule
from zoo.data.io import image_array, open_image
from zoo.data.paths import DatasetNotFoundError, resolve_path

__all__ = ["IMAGE_EXTS", "to_luminance", "read_grey", "list_images", "GreyPatchDataset", "GreyImageDataset", "CSDataModule",
           "split_train_val"]

IMAGE_EXTS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")

_SOURCES = {
    "Set11": "github.com/jianzhangcs/ISTA-Net-PyTorch (data/Set11)",
    "BSD68": "github.com/cszn/DnCNN (testsets/BSD68)",
    "Train400": "github.com/cszn/DnCNN (trainsets/Train400)",
    "T91": "Yang et al. 2010 T91 (e.g. github.com/tegg89/SRCNN-Tensorflow)",
}


def to_luminance(img: Image.Image) -> Image.Image:
    """Palette/RGB/RGBA → 8-bit luminance (BT.601); grey images of any depth are returned as they are."""
    if img.mode.startswith("I") or img.mode in ("F", "L"):
        return img
    return img.convert("RGB").convert("L")


def read_grey(path: str | Path) -> torch.Tensor:
    """Read an image as a (1, H, W) float32 tensor in [0, 1] (luminance; 16-bit grey divided by 65535)."""
    with open_image(path) as im:
        arr, _ = image_array(to_luminance(im), path)
    return torch.from_numpy(arr.copy())[None]


def resolve_folder(folder: str | Path, root: str | Path | None = None) -> Path:
    p = resolve_path(folder, root)
    if not p.is_dir():
        name = Path(folder).name
        src = _SOURCES.get(name, "your own images")
        raise DatasetNotFoundError(
            f"image folder not found: {p}. Expected a folder of {'/'.join(IMAGE_EXTS)} images "
            f"(e.g. <ZOO_DATA>/images/{name}/*.png); official source: {src}. "
            "Set ZOO_DATA or pass an absolute folder path."
        )
    return p


def list_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DatasetNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) in {folder}")
    return files


def split_train_val(dirs: Sequence[str], root: str | None, val_images: int) -> tuple[list[Path], list[Path]]:
    """(validation files, training files): the images of ``dirs`` shuffled with seed 0, the first ``val_images``
    held out (at least one image always trains)."""
    files: list[Path] = []
    for d in dirs:
        files += list_images(resolve_folder(d, root))
    random.Random(0).shuffle(files)
    nval = min(val_images, max(0, len(files) - 1))
    return files[:nval], files[nval:]


class GreyPatchDataset(Dataset):
    """Random augmented ``patch×patch`` crops; ``length`` samples per epoch (images cached in RAM)."""

    def __init__(self, files: Sequence[Path], patch: int = 99, length: int = 4000, augment: bool = True) -> None:
        images = [read_grey(f) for f in files]
        # images smaller than a patch cannot give a crop: skip them, refuse only if none is left
        self.images = [im for im in images if min(im.shape[-2:]) >= patch]
        if not self.images:
            raise ValueError(f"all {len(images)} training images are smaller than the {patch}px patch; lower `patch`.")
        self.patch, self.length, self.augment = patch, length, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = random.Random() if self.augment else random.Random(i)
        img = self.images[rng.randrange(len(self.images))]
        h, w = img.shape[-2:]
        t, l = rng.randrange(h - self.patch + 1), rng.randrange(w - self.patch + 1)
        x = img[:, t : t + self.patch, l : l + self.patch]
        if self.augment:
            x = torch.rot90(x, rng.randrange(4), (1, 2))
            if rng.random() < 0.5:
                x = x.flip(2)
        return {"target": x.contiguous()}


class GreyImageDataset(Dataset):
    """Whole grey images (test sets), optionally centre-cropped to ``crop``."""

    def __init__(self, files: Sequence[Path], crop: int | None = None) -> None:
        self.files, self.crop = list(files), crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, object]:
        x = read_grey(self.files[i])
        if self.crop:
            h, w = x.shape[-2:]
            c = min(self.crop, h, w)
            t, l = (h - c) // 2, (w - c) // 2
            x = x[:, t : t + c, l : l + c]
        return {"target": x, "name": self.files[i].stem}


class CSDataModule(RestorationDataModule):
    """Train on grey patches from image folders; validate on held-out training images; test on Set11/BSD68.

    Args:
        train_dirs: folders (relative to ``data_root`` or absolute) of training images.
        test_dirs: folders of test images (whole images).
        data_root: overrides ``ZOO_DATA``.
        patch: training crop (multiple of the CS block).
        samples_per_epoch: random crops per epoch.
        val_images: the last n training images are held out for validation (centre 198² crops).
        batch_size, num_workers: loaders.
    """

    def __init__(
        self,
        train_dirs: Sequence[str] = ("images/Train400", "images/T91"),
        test_dirs: Sequence[str] = ("images/Set11", "images/BSD68"),
        data_root: str | None = None,
        patch: int = 99,
        samples_per_epoch: int = 4000,
        val_images: int = 8,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.test_names = [Path(d).name for d in test_dirs]

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None):
            self.val_files, self.train_files = split_train_val(hp.train_dirs, hp.data_root, hp.val_images)
            self.train_set = GreyPatchDataset(self.train_files, hp.patch, hp.samples_per_epoch)
            self.val_set = GreyImageDataset(self.val_files, crop=2 * hp.patch)
        if stage in ("test", "predict", None):
            self.test_sets = [GreyImageDataset(list_images(resolve_folder(d, hp.data_root))) for d in hp.test_dirs]
