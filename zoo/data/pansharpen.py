"""Pansharpening data: reduced-resolution pairs by Wald's protocol, test files, PanCollection layouts.

Readers (``read_pansharpen``) understand:

* **full-resolution** ``.mat`` (PNN / Z-PNN test images): ``I_MS`` or ``I_MS_LR`` (h, w, C) and
  ``I_PAN`` (r·h, r·w), integers scaled by ``2**L − 1`` (``L`` in the file, else 11 bits for
  uint16 and 8 for uint8);
* **reduced-resolution test** ``.mat`` (CDIF / DLPan layout): ``gt`` (H, W, C), ``lrms``/``ms``
  (h, w, C), ``pan`` (H, W), floats in [0, 1];
* **PanCollection** ``.h5`` / v7.3 ``.mat`` (HDF5): ``gt`` (N, C, H, W), ``ms`` (N, C, h, w),
  ``pan`` (N, 1, H, W), raw DN (divided by ``max_value``, 2047 for the 11-bit sensors); ``lms`` ignored.

Training pairs: full-resolution images are reduced by Wald's protocol
(:func:`zoo.physics.pansharpen.wald_reduce`: MTF blur + decimation of MS and PAN, the original MS is
the target) with the gains of ``reduce_sensor`` (the model's sensor by default, so training pairs
match the model's physics and the test protocol), then cut into random aligned crops with the
8 flips/rotations. A horizontal strip at the bottom of each full image (``val_rows`` reduced
rows) is held out for validation. PanCollection ``.h5`` training files give patches directly.
Test sets are whole reduced-resolution files. Never point ``train`` at ``pansharpen/reduced/``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.physics.pansharpen import wald_reduce
from zoo.data.base import RestorationDataModule, d4
from zoo.data.io import load_h5, load_mat
from zoo.data.paths import DatasetNotFoundError, resolve_path

__all__ = ["read_pansharpen", "resolve_pansharpen_file", "PansharpenPatches", "PansharpenImages", "PansharpenDataModule"]

_LAYOUT = ("full-resolution .mat with I_MS (h,w,C) + I_PAN (rh,rw) [+ L, sensor], reduced .mat with gt/lrms/pan, "
           "or PanCollection .h5 with gt/ms/pan")
_SOURCE = ("PNN / Z-PNN test images (github.com/matciotola/Z-PNN), CDIF test files (github.com/liangjiandeng/CDIF), "
           "PanCollection (liangjiandeng.github.io/PanCollection.html)")
TEST_DIR_NAMES = ("reduced",)


def resolve_pansharpen_file(p: str | Path, root: str | Path | None) -> Path:
    q = resolve_path(p, root)
    if not q.exists():
        raise DatasetNotFoundError(f"pansharpening data not found: {q}. Expected {_LAYOUT}. Sources: {_SOURCE}. "
                                   "Set ZOO_DATA or pass absolute paths.")
    return q


def _files(paths: Sequence[str | Path], root: str | Path | None) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        q = resolve_pansharpen_file(p, root)
        out += sorted(f for f in q.iterdir() if f.suffix.lower() in (".mat", ".h5")) if q.is_dir() else [q]
    if not out:
        raise DatasetNotFoundError(f"no .mat/.h5 pansharpening files in {list(paths)}. Expected {_LAYOUT}.")
    return out


def _sensor_of(d: dict[str, Any]) -> str | None:
    s = d.get("sensor")
    if s is None:
        return None
    s = np.asarray(s).ravel()
    return str(s[0]) if s.size else None


def _dn_scale(path: Path, d: dict[str, Any], ms: np.ndarray, pan: np.ndarray) -> float:
    """The full-scale value of a full-resolution pair, decided from the data (never assumed).

    ``L`` (bits per sample, as in the toolbox files) gives ``2**L − 1``; without it, float data in
    [0, 1] is used as it is, uint8 is 8-bit and other integer data 11-bit (the WorldView/GeoEye DN
    range) — and values beyond the range are refused, never silently mis-scaled.
    """
    top = float(max(ms.max(initial=0), pan.max(initial=0)))
    if "L" in d:
        bits = int(np.asarray(d["L"]).ravel()[0])
        full = float(2**bits - 1)
        if top > full:
            raise ValueError(f"{path}: values up to {top:.6g} exceed L = {bits} bits ({full:.0f}); fix L in the file")
        return full
    if np.issubdtype(ms.dtype, np.floating):
        if top <= 1.5:
            return 1.0  # already reflectance-like in [0, 1]
        if top <= 2047:
            return 2047.0
        raise ValueError(f"{path}: float values up to {top:.6g} and no L (bits per sample): add L to the file, "
                         "or scale the pair to [0, 1]")
    full = 255.0 if ms.dtype == np.uint8 else 2047.0
    if top > full:
        raise ValueError(f"{path}: integer values up to {top:.0f} exceed {int(full).bit_length()} bits and the file "
                         "has no L (bits per sample): add L (e.g. 16), or scale the pair to [0, 1]")
    return full


def read_pansharpen(path: str | Path, max_value: float | None = None) -> list[dict[str, Any]]:
    """Read one file → list of samples ``{"kind": "full"|"reduced", "ms", "pan", ["gt"], "sensor"}``.

    Tensors are float32 (C, h, w) / (1, H, W) in [0, 1].
    """
    path = Path(path)
    d = load_h5(path) if path.suffix.lower() == ".h5" else load_mat(path)
    if "I_PAN" in d and ("I_MS" in d or "I_MS_LR" in d):
        ms = np.asarray(d.get("I_MS", d.get("I_MS_LR")))
        pan = np.asarray(d["I_PAN"])
        if ms.ndim != 3 or pan.ndim != 2:
            raise ValueError(f"{path}: I_MS must be H×W×C (bands last) and I_PAN H×W, got {ms.shape} and {pan.shape}")
        scale = max_value or _dn_scale(path, d, ms, pan)
        ms_t = torch.from_numpy(ms.astype(np.float32) / scale).permute(2, 0, 1)
        pan_t = torch.from_numpy(pan.astype(np.float32) / scale)[None]
        return [{"kind": "full", "ms": ms_t, "pan": pan_t, "sensor": _sensor_of(d), "name": path.stem}]
    if "gt" in d and "pan" in d and ("lrms" in d or "ms" in d):
        gt, pan, ms = np.asarray(d["gt"]), np.asarray(d["pan"]), np.asarray(d.get("lrms", d.get("ms")))
        if gt.ndim == 3:  # single image, channels last (CDIF)
            scale = max_value or (1.0 if gt.max() <= 1.5 else 2047.0)
            return [{"kind": "reduced", "gt": torch.from_numpy(gt.astype(np.float32) / scale).permute(2, 0, 1),
                     "ms": torch.from_numpy(ms.astype(np.float32) / scale).permute(2, 0, 1),
                     "pan": torch.from_numpy(pan.astype(np.float32) / scale)[None], "sensor": _sensor_of(d),
                     "name": path.stem}]
        if gt.ndim == 4:  # PanCollection (N, C, H, W)
            scale = max_value or (1.0 if gt.max() <= 1.5 else 2047.0)
            pan = pan if pan.ndim == 4 else pan[:, None]
            return [{"kind": "reduced", "gt": torch.from_numpy(gt[i].astype(np.float32) / scale),
                     "ms": torch.from_numpy(ms[i].astype(np.float32) / scale),
                     "pan": torch.from_numpy(pan[i].astype(np.float32) / scale), "sensor": None,
                     "name": f"{path.stem}_{i}"} for i in range(gt.shape[0])]
    raise ValueError(f"{path}: unknown pansharpening layout (keys {sorted(d)}); expected {_LAYOUT}")


def _reduce(sample: dict[str, Any], sensor: str | None, ratio: int) -> dict[str, Any]:
    ms, pan = sample["ms"], sample["pan"]
    h, w = ms.shape[-2:]
    h, w = h // ratio * ratio, w // ratio * ratio
    ms, pan = ms[:, :h, :w], pan[:, : h * ratio, : w * ratio]
    ms_lr, pan_lr = wald_reduce(ms[None], pan[None], sensor=sensor or sample.get("sensor") or "", ratio=ratio)
    return {"gt": ms, "ms": ms_lr[0], "pan": pan_lr[0], "name": sample["name"]}


class PansharpenPatches(Dataset):
    """Random aligned crops (HR ``patch``, LR ``patch/r``) of reduced pairs (augmented upstream).

    Every sample carries ``inputs = {"ms", "pan", "ms_mask"}``; with ``missing`` > 0 that fraction
    of the samples has random bands masked (up to ``missing_frac`` of the bands).
    """

    def __init__(self, pairs: Sequence[dict[str, Any]], patch: int = 64, ratio: int = 4, length: int = 2000,
                 augment: bool = True, missing: float = 0.0, missing_frac: float = 0.5,
                 spectral_jitter: float = 0.0) -> None:
        if patch % ratio:
            raise ValueError(f"patch ({patch}) must be a multiple of the ratio ({ratio})")
        self.pairs = [p for p in pairs if min(p["gt"].shape[-2:]) >= patch]
        if not self.pairs:
            raise ValueError(f"no training image is at least {patch} pixels (after reduction); lower `patch`")
        self.patch, self.ratio, self.length, self.augment = patch, ratio, length, augment
        self.missing, self.missing_frac, self.spectral_jitter = missing, missing_frac, spectral_jitter

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = random.Random() if self.augment else random.Random(i)
        p = self.pairs[rng.randrange(len(self.pairs))]
        r, s = self.ratio, self.patch // self.ratio
        h, w = p["ms"].shape[-2:]
        t, l = rng.randrange(h - s + 1), rng.randrange(w - s + 1)
        gt = p["gt"][:, t * r : (t + s) * r, l * r : (l + s) * r]
        pan = p["pan"][:, t * r : (t + s) * r, l * r : (l + s) * r]
        ms = p["ms"][:, t : t + s, l : l + s]
        if self.spectral_jitter > 0:
            # per-band gains (gt and MS alike: the MS operator is per band) and one global scale
            # (all three): other sensors/scenes have other spectral shapes; the PAN weights are
            # re-estimated per sample by the model, so the pair stays consistent
            j = self.spectral_jitter
            gain = torch.tensor([rng.uniform(1 - j, 1 + j) for _ in range(ms.shape[0])])[:, None, None]
            scale = rng.uniform(1 / (1 + j), 1 + j)
            gt, ms, pan = gt * gain * scale, ms * gain * scale, pan * scale
        mask = torch.ones(ms.shape[0])
        if self.missing > 0 and rng.random() < self.missing:
            drop = rng.randint(1, max(1, int(round(self.missing_frac * ms.shape[0]))))
            for b in rng.sample(range(ms.shape[0]), drop):
                mask[b] = 0
        return {"target": gt.contiguous(), "inputs": {"ms": ms.contiguous(), "pan": pan.contiguous(), "ms_mask": mask}}


class PansharpenImages(Dataset):
    """Whole reduced-resolution images (test/validation), batch size 1."""

    def __init__(self, pairs: Sequence[dict[str, Any]]) -> None:
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p = self.pairs[i]
        return {"target": p["gt"], "inputs": {"ms": p["ms"], "pan": p["pan"], "ms_mask": torch.ones(p["ms"].shape[0])},
                "name": p["name"]}


class PansharpenDataModule(RestorationDataModule):
    """Wald-protocol training from full-resolution files; tests on reduced-resolution files.

    Args:
        train: files/folders of full-resolution images (reduced by Wald's protocol) or PanCollection
            training ``.h5`` files; relative to ``data_root`` or absolute (custom data).
        test: reduced-resolution test files (whole images).
        data_root: overrides ``ZOO_DATA``.
        reduce_sensor: sensor whose MTF gains reduce the training images (default: the file's own).
        bands: keep only files with this many bands (``None`` = all; one band count per model).
        band_map: ``{band count: [band indices]}``, applied before ``bands``: e.g. ``{8: [1, 2, 4, 6]}``
            turns 8-band WorldView images into B, G, R, NIR training images for a 4-band model.
        ratio, patch, samples_per_epoch, batch_size, num_workers: as usual.
        val_rows: full-resolution MS rows at the bottom of each full image held out for validation
            (only for images of at least ``4·val_rows`` rows).
        missing: fraction of training samples with randomly missing MS bands (robustness option).
        spectral_jitter: training augmentation: per-band gains and a global scale in ``[1 − j, 1 + j]``.
        val_images: accepted for ``zoo finetune``'s common flags; validation uses the held-out strips.
    """

    def __init__(self, train: Sequence[str] = ("pansharpen/full/imgWV2.mat", "pansharpen/full/WV3_example.mat"),
                 test: Sequence[str] = ("pansharpen/reduced/WV3_test.mat",), data_root: str | None = None,
                 reduce_sensor: str | None = None, bands: int | None = None, ratio: int = 4, patch: int = 64,
                 samples_per_epoch: int = 2000, batch_size: int = 8, num_workers: int = 0, val_rows: int = 64,
                 missing: float = 0.0, spectral_jitter: float = 0.0, val_images: int | None = None,
                 band_map: dict[int, list[int]] | None = None) -> None:
        super().__init__()
        for n, idx in (band_map or {}).items():
            if not idx or min(idx) < 0 or max(idx) >= int(n):
                raise ValueError(f"band_map[{n}] = {idx}: indices must lie in 0..{int(n) - 1}")
        self.save_hyperparameters()
        self.test_names = [Path(t).stem for t in test]

    def _train_pairs(self) -> tuple[list[dict], list[dict]]:
        hp = self.hparams
        r = hp.ratio
        train, val = [], []
        for f in _files(hp.train, hp.data_root):
            if f.parent.name in TEST_DIR_NAMES:
                raise ValueError(f"{f} is a reduced-resolution test file: never train on it (use pansharpen/full/ or your own data)")
            for s in read_pansharpen(f):
                idx = {int(k): v for k, v in (hp.band_map or {}).items()}.get(s["ms"].shape[0])
                if idx is not None:
                    s = {**s, "ms": s["ms"][list(idx)]}
                if hp.bands is not None and s["ms"].shape[0] != hp.bands:
                    continue
                if s["kind"] == "reduced":
                    train.append(s)
                    continue
                h = s["ms"].shape[-2] // r * r
                v = hp.val_rows // r * r if h >= 4 * hp.val_rows else 0
                if v > 0:
                    val.append(_reduce({**s, "ms": s["ms"][:, h - v : h], "pan": s["pan"][:, (h - v) * r : h * r]},
                                       hp.reduce_sensor, r))
                    s = {**s, "ms": s["ms"][:, : h - v], "pan": s["pan"][:, : (h - v) * r]}
                # the 8 flips/rotations are applied at full resolution *before* the reduction, so
                # the decimation phase stays exact (rotating a reduced pair would shift it)
                for k in range(4):
                    for flip in (False, True):
                        t = {**s, "ms": d4(s["ms"], k + 4 * flip), "pan": d4(s["pan"], k + 4 * flip)}
                        train.append(_reduce(t, hp.reduce_sensor, r))
        if not train:
            raise DatasetNotFoundError(f"no training images with {hp.bands} bands in {list(hp.train)}")
        return train, val

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None):
            train, val = self._train_pairs()
            self.train_set = PansharpenPatches(train, hp.patch, hp.ratio, hp.samples_per_epoch, missing=hp.missing,
                                               spectral_jitter=hp.spectral_jitter)
            self.val_set = PansharpenImages(val or train[:1])
        if stage in ("test", "predict", None):
            self.test_sets = [PansharpenImages(read_pansharpen(f)) for f in _files(hp.test, hp.data_root)] if hp.test else []
