"""Low-light enhancement data: readers of the official paired layouts, synthetic pairs, a datamodule.

Paired layouts (:func:`find_pairs`; a folder that *is* a pair folder, or any folder below which pair
folders lie, up to three levels):

* **LOL-v1**: ``our485/{low,high}/*.png`` (train), ``eval15/{low,high}/*.png`` (test);
* **LOL-v2**: ``Real_captured/{Train,Test}/{Low,Normal}/`` (``low00001.png`` ↔ ``normal00001.png``)
  and ``Synthetic/{Train,Test}/{Low,Normal}/`` (same names);
* **Retinexformer**: ``LOLv1/{Train,Test}/{input,target}/``;
* **custom**: any folder with ``low/`` + ``high/`` (or ``Low/`` + ``Normal/``, ``input/`` +
  ``target/``, ``low/`` + ``gt/``); files are matched by name after removing the words
  ``low``/``high``/``normal``.

Images are read as sRGB in [0, 1] (:func:`read_rgb`): grey / non-RGB files are refused, a 16-bit
PNG is converted to 8 bits per channel with a warning (Pillow reads 16-bit RGB so), a pair of
different sizes is an error naming both files.

No paired real set is at hand, so the published checkpoint is trained on **synthetic pairs**
(:class:`SyntheticPatches`): random crops of normal-light sRGB images (``images/BSD200`` and
``images/T91`` by default), degraded on the fly by :class:`~zoo.physics.lowlight.LowLightDegradation`;
validation and test use fixed-seed degradations (image ``i`` of a set: ``torch.Generator`` seed
``seed·1000 + i``) of held-out images. Never train on ``images/CBSD68`` (the scored test set),
``images/BSD68`` or the ``sr/`` test sets.
"""

from __future__ import annotations

import random
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.data.base import RestorationDataModule, d4
from zoo.data.io import image_array, open_image
from zoo.data.paths import DatasetNotFoundError, resolve_path
from zoo.physics.lowlight import LowLightDegradation, global_stats

__all__ = ["read_rgb", "find_pairs", "load_pair", "list_rgb_images", "SyntheticPatches", "PairedPatches",
           "LowLightImages", "synthetic_testset", "LowLightDataModule", "FORBIDDEN_TRAIN"]

EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
PAIR_DIRS = (("low", "high"), ("low", "normal"), ("input", "target"), ("low", "gt"), ("input", "gt"))
FORBIDDEN_TRAIN = ("CBSD68", "BSD68", "Set5", "Set14", "BSD100", "Urban100", "eval15")
_SOURCE = ("LOL (Wei et al. 2018, daooshee.github.io/BMVC2018website), LOL-v2 (Yang et al. 2021), or your own "
           "low/ + high/ folders")


def _png_bit_depth(path: Path) -> int | None:
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return None
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 25 else None


def read_rgb(path: str | Path) -> torch.Tensor:
    """A (3, H, W) float32 sRGB tensor in [0, 1]. Non-RGB (grey) images are refused; a 16-bit PNG is
    converted to 8 bits per channel with a warning."""
    path = Path(path)
    with open_image(path) as im:
        mode = im.mode
        if mode in ("L", "LA", "1", "F") or mode.startswith("I"):
            raise ValueError(f"{path}: a {mode} (single-channel) image; low-light enhancement takes RGB images — "
                             "convert it to RGB first (e.g. PIL: Image.open(p).convert('RGB'))")
        if path.suffix.lower() == ".png" and _png_bit_depth(path) == 16:
            warnings.warn(f"{path}: a 16-bit PNG; converted to 8 bits per channel (precision below 1/255 is lost)",
                          stacklevel=2)
        a, _ = image_array(im, path)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{path}: expected an RGB image, got an array of shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{path}: the image is empty ({a.shape[1]}x{a.shape[0]})")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def _key(stem: str) -> str:
    return re.sub(r"[_\-]+", "_", re.sub(r"(low|high|normal)", "", stem, flags=re.I)).strip("_") or stem


def _pair_dirs(p: Path) -> tuple[Path, Path] | None:
    subs = {d.name.lower(): d for d in p.iterdir() if d.is_dir()}
    for lo, hi in PAIR_DIRS:
        if lo in subs and hi in subs:
            return subs[lo], subs[hi]
    return None


def _files(d: Path) -> list[Path]:
    return sorted(f for f in d.iterdir() if f.suffix.lower() in EXTS)


def find_pairs(folder: str | Path, root: str | Path | None = None) -> list[tuple[str, Path, Path]]:
    """``(name, low, normal)`` of every pair under ``folder`` (module docstring for the layouts)."""
    p = resolve_path(folder, root)
    if not p.is_dir():
        raise DatasetNotFoundError(f"low-light pairs not found: {p}. Expected low/ + high/ (LOL-v1), Low/ + Normal/ "
                                   f"(LOL-v2) or input/ + target/ (Retinexformer) folders. Source: {_SOURCE}. "
                                   "Set ZOO_DATA or pass a path.")
    found: list[tuple[Path, Path]] = []
    level = [p]
    for _ in range(4):
        nxt = []
        for d in level:
            pd = _pair_dirs(d)
            if pd:
                found.append(pd)
            else:
                nxt += sorted(x for x in d.iterdir() if x.is_dir())
        level = nxt
    pairs = []
    for lo_dir, hi_dir in found:
        hi = {_key(f.stem): f for f in _files(hi_dir)}
        prefix = "" if len(found) == 1 else f"{lo_dir.parent.relative_to(p).as_posix()}/"
        for f in _files(lo_dir):
            if _key(f.stem) in hi:
                pairs.append((prefix + f.stem, f, hi[_key(f.stem)]))
    if not pairs:
        raise DatasetNotFoundError(f"no (low, normal) pairs under {p}: expected low/ + high/, Low/ + Normal/ or "
                                   "input/ + target/ folders with matching file names")
    return pairs


def load_pair(pair: tuple[str, Path, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(low, normal)`` tensors of one pair; different sizes are an error naming both files."""
    _, lo, hi = pair
    a, b = read_rgb(lo), read_rgb(hi)
    if a.shape != b.shape:
        raise ValueError(f"pair of different sizes: {lo} is {a.shape[2]}x{a.shape[1]}, {hi} is "
                         f"{b.shape[2]}x{b.shape[1]}; the low and normal images must be aligned and the same size")
    return a, b


def list_rgb_images(folder: str | Path, root: str | Path | None = None) -> list[Path]:
    p = resolve_path(folder, root)
    if not p.is_dir():
        raise DatasetNotFoundError(f"image folder not found: {p}. Expected a folder of RGB images (e.g. "
                                   "<ZOO_DATA>/images/BSD200). Set ZOO_DATA or pass an absolute path.")
    files = _files(p)
    if not files:
        raise DatasetNotFoundError(f"no images ({', '.join(EXTS)}) in {p}")
    return files


def _check_train_dir(d: str | Path) -> None:
    parts = set(Path(str(d)).parts)
    bad = parts & set(FORBIDDEN_TRAIN)
    if bad:
        raise ValueError(f"{d} is a test set ({sorted(bad)[0]}): never train on it")


def _to_u8(t: torch.Tensor) -> torch.Tensor:
    return (t * 255 + 0.5).clamp(0, 255).to(torch.uint8)


class SyntheticPatches(Dataset):
    """Random ``patch`` crops (8 flips/rotations) of normal-light images, degraded on the fly.

    ``whole_stats``: degrade the whole (flipped/rotated) image, crop the patch from it and add
    ``inputs["stats"]`` = :func:`~zoo.physics.lowlight.global_stats` of the whole low image — what the
    network sees at test time, where a photo's exposure is estimated from all of it, not from a crop.
    The noise is per pixel and the exposure and cast per image, so the patch has the same law either way.
    """

    def __init__(self, images: Sequence[torch.Tensor], patch: int = 64, length: int = 2000,
                 degradation: LowLightDegradation | None = None, whole_stats: bool = False) -> None:
        self.images = [_to_u8(im) for im in images if min(im.shape[-2:]) >= patch]
        if not self.images:
            raise ValueError(f"no training image is at least {patch} pixels; lower `patch`")
        self.patch, self.length, self.whole_stats = patch, length, bool(whole_stats)
        self.degradation = degradation or LowLightDegradation()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = random.Random()
        im = self.images[rng.randrange(len(self.images))]
        g = torch.Generator().manual_seed(rng.randrange(2**62))
        if self.whole_stats:
            low, x = self.degradation.pair(d4(im.float() / 255, rng.randrange(8)).contiguous()[None], generator=g)
            x = x[0]
            stats = global_stats(low)[0]
            h, w = x.shape[-2:]
            t, l = rng.randrange(h - self.patch + 1), rng.randrange(w - self.patch + 1)
            win = (slice(None), slice(t, t + self.patch), slice(l, l + self.patch))
            return {"target": x[win].contiguous(), "inputs": {"low": low[0][win].contiguous(), "stats": stats}}
        h, w = im.shape[-2:]
        t, l = rng.randrange(h - self.patch + 1), rng.randrange(w - self.patch + 1)
        x = d4(im[:, t:t + self.patch, l:l + self.patch].float() / 255, rng.randrange(8)).contiguous()
        low, x = self.degradation.pair(x[None], generator=g)
        return {"target": x[0], "inputs": {"low": low[0]}}


class PairedPatches(Dataset):
    """Random aligned crops (8 flips/rotations) of real (low, normal) pairs; ``whole_stats`` as in
    :class:`SyntheticPatches` (the statistics of the whole low image, which flips and rotations leave unchanged)."""

    def __init__(self, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], patch: int = 64, length: int = 2000,
                 whole_stats: bool = False) -> None:
        self.pairs = [(_to_u8(a), _to_u8(b)) for a, b in pairs if min(a.shape[-2:]) >= patch]
        if not self.pairs:
            raise ValueError(f"no training pair is at least {patch} pixels; lower `patch`")
        self.patch, self.length = patch, length
        self.stats = [global_stats(a[None].float() / 255)[0] for a, _ in self.pairs] if whole_stats else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = random.Random()
        j = rng.randrange(len(self.pairs))
        a, b = self.pairs[j]
        h, w = a.shape[-2:]
        t, l = rng.randrange(h - self.patch + 1), rng.randrange(w - self.patch + 1)
        k = rng.randrange(8)
        lo, hi = (d4(x[:, t:t + self.patch, l:l + self.patch].float() / 255, k).contiguous() for x in (a, b))
        return {"target": hi, "inputs": {"low": lo} if self.stats is None else {"low": lo, "stats": self.stats[j]}}


class LowLightImages(Dataset):
    """Whole (or centre-cropped) ``(name, low, normal)`` items."""

    def __init__(self, items: Sequence[tuple[str, torch.Tensor, torch.Tensor]], crop: int | None = None) -> None:
        self.items, self.crop = list(items), crop

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        name, lo, hi = self.items[i]
        if self.crop:
            h, w = lo.shape[-2:]
            c = min(self.crop, h, w)
            t, l = (h - c) // 2, (w - c) // 2
            lo, hi = lo[:, t:t + c, l:l + c], hi[:, t:t + c, l:l + c]
        return {"target": hi, "inputs": {"low": lo}, "name": name}


def synthetic_testset(files: Sequence[Path], seed: int = 0,
                      degradation: LowLightDegradation | None = None) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Fixed-seed synthetic pairs of whole images: image ``i`` (name order) uses seed ``seed·1000 + i``."""
    deg = degradation or LowLightDegradation()
    out = []
    for i, f in enumerate(sorted(files)):
        x = read_rgb(f)
        low = deg(x[None], generator=torch.Generator().manual_seed(seed * 1000 + i))[0]
        out.append((f.stem, low, x))
    return out


class LowLightDataModule(RestorationDataModule):
    """Low-light enhancement data (module docstring).

    Args:
        train_dirs: folders of normal-light RGB images for synthetic pairs.
        paired_dirs: folders of real pairs (any layout of :func:`find_pairs`), mixed with the synthetic ones.
        test_dir: normal-light images of the synthetic test set (default ``images/CBSD68``), or None.
        data_root: overrides ``ZOO_DATA``.
        patch, samples_per_epoch, batch_size, num_workers: training loader.
        val_images: training images (or pairs) held out for validation (centre ``val_crop`` crops,
            fixed-seed degradation; ``val_crop=None``: whole images, as the test set is scored).
        whole_stats: give each synthetic patch the global statistics of its whole degraded image
            (:class:`SyntheticPatches`), as tiled and whole-image inference compute them.
        lamps: fraction of synthetic training images given light sources that clip in the low image
            (:class:`~zoo.physics.lowlight.LowLightDegradation`); validation and test never have them.
    """

    def __init__(self, train_dirs: Sequence[str] = ("images/BSD200", "images/T91"), paired_dirs: Sequence[str] = (),
                 test_dir: str | None = "images/CBSD68", data_root: str | None = None, patch: int = 64,
                 samples_per_epoch: int = 2000, batch_size: int = 6, num_workers: int = 0, val_images: int = 8,
                 val_crop: int | None = 128, whole_stats: bool = False, lamps: float = 0.0) -> None:
        super().__init__()
        if not train_dirs and not paired_dirs:
            raise ValueError("give train_dirs (normal-light images) and/or paired_dirs (low/normal pairs)")
        self.save_hyperparameters()
        self.test_names = ["synthetic"] if test_dir else []

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None):
            for d in [*hp.train_dirs, *hp.paired_dirs]:
                _check_train_dir(d)
            files = [f for d in hp.train_dirs for f in list_rgb_images(d, hp.data_root)]
            pairs = [p for d in hp.paired_dirs for p in find_pairs(d, hp.data_root)]
            rng = random.Random(0)
            rng.shuffle(files)
            rng.shuffle(pairs)
            val: list[tuple[str, torch.Tensor, torch.Tensor]] = []
            if pairs:
                nval = min(hp.val_images, max(0, len(pairs) - 1))
                val += [(p[0], *load_pair(p)) for p in pairs[:nval]]
                pairs = pairs[nval:]
            if files:
                nval = min(hp.val_images, max(0, len(files) - 1)) if not val else 0
                val += synthetic_testset(files[:nval], seed=1)
                files = files[nval:]
            sets = []
            if files:
                sets.append(SyntheticPatches([read_rgb(f) for f in files], hp.patch, hp.samples_per_epoch,
                                             LowLightDegradation(lamps=hp.lamps), whole_stats=hp.whole_stats))
            if pairs:
                sets.append(PairedPatches([load_pair(p) for p in pairs], hp.patch, hp.samples_per_epoch,
                                          whole_stats=hp.whole_stats))
            self.train_set = sets[0] if len(sets) == 1 else torch.utils.data.ConcatDataset(sets)
            self.val_set = LowLightImages(val or [(n, lo, hi) for n, lo, hi in synthetic_testset(files[:1], seed=1)],
                                          hp.val_crop)
        if stage in ("test", "predict", None) and hp.test_dir:
            self.test_sets = [LowLightImages(synthetic_testset(list_rgb_images(hp.test_dir, hp.data_root)))]
