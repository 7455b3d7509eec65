"""Spectral cubes for SD-CASSI: official layouts, a synthetic training source, the CAVE test cubes.

Readers (all return float32 ``(C, H, W)`` cubes in [0, 1] at the 28 KAIST/CAVE_28 wavelengths):

* MST's ``cave_1024_28/*.mat`` (key ``img_expand``) and ``CAVE_512_28/*.mat`` (key ``img``):
  28-band, divided by 65536 as in MST's ``LoadTraining``; v7.3 files are read with h5py;
* KAIST ``scene01..10.mat`` (key ``img``, 256×256×28, float in [0, 1]): used as is;
* CAVE 31-band cubes 400–700 nm: the official ``<scene>_ms/<scene>_ms_01..31.png`` 16-bit
  PNG folders (/65535) or ``.mat`` files (key ``NRD``, e.g. ``cassi/cave256``: divided by the
  cube's maximum), linearly interpolated to the 28 wavelengths (:func:`resample_bands`).

Training source (no CAVE training set is available here; documented, never the test cubes):

* natural sRGB images (``images/T91``, ``flash/faid32_half``) turned into 28-band cubes with
  the Otsu et al. 2018 reflectance recovery (:mod:`zoo.data.spectral`), times a random
  black-body illuminant (3000–9000 K) with probability ``illuminant_prob``;
* the real remote-sensing cubes of ``cassi/remote`` (Samson, Jasper Ridge, Hyperion/Paris)
  resampled to the 28 wavelengths and normalised to their 99.9th percentile;
* any folders of cubes in the official layouts above (``train_dirs``), e.g. your CAVE/KAIST copy;
* real captured cubes (``real_cubes``, e.g. ``cassi/cave256_train/balloons_ms_256.mat``, key ``Omsi``
  found by shape and /max like the CAVE test cubes), drawn with probability ``real_prob``; a fixed
  left strip of ``real_val_width`` columns of each is held out and scored as the ``real`` validation
  set (``val/real/*``), so validation sees measured spectra, not only RGB-synthesised ones;
* with probability ``random_spectra_prob``, an RGB crop whose pixels mix three random smooth spectra
  (Gaussian bumps or sigmoid edges) by their linear RGB instead of the Otsu recovery: spectral diversity,
  so the network cannot learn that every spectrum is broad (:func:`~zoo.data.spectral.rgb_to_random_cube`);
* with probability ``bump_spectra_prob``, an RGB crop whose every pixel has its own spectral peak, moving
  smoothly across the crop or with its hue (:func:`~zoo.data.spectral.rgb_to_bump_cube`): flat regions with
  spectral gradients, whose spectra only the measurement can tell;
* random ``patch×patch`` crops, the 8 flips/rotations. Validation: fixed crops of held-out RGB
  images (and cubes). Test: whole cubes of ``test_dirs`` (default the two CAVE cubes).

Example:
    >>> import numpy as np
    >>> from zoo.data.cassi import resample_bands, CAVE_WAVELENGTHS
    >>> resample_bands(np.zeros((31, 4, 4)), CAVE_WAVELENGTHS).shape
    (28, 4, 4)
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from zoo.data.base import RestorationDataModule
from zoo.data.images import IMAGE_EXTS
from zoo.data.io import load_mat, open_image
from zoo.data.paths import DatasetNotFoundError, resolve_path
from zoo.data.spectral import WAVELENGTHS, blackbody, random_spectra, rgb_to_bump_cube, rgb_to_cube, rgb_to_random_cube

log = logging.getLogger("zoo.data")

__all__ = [
    "read_cassi_mask",
    "resolve_cube_folder",
    "KAIST_WAVELENGTHS", "CAVE_WAVELENGTHS", "resample_bands", "read_cube", "read_cave_png_folder", "validate_cube",
    "list_cubes", "read_remote_cubes", "SpectralPatches", "CubeSet", "CASSIDataModule",
]

KAIST_WAVELENGTHS = np.asarray(WAVELENGTHS, dtype=np.float64)
CAVE_WAVELENGTHS = 400.0 + 10.0 * np.arange(31)

_SOURCES = {
    "cave256": "zhazhiyuan/NRR_HSI_Denoising_Demo + MCP_MSI_CS_Demo (CAVE 256², key NRD)",
    "cave_1024_28": "github.com/caiyuanhao1998/MST (datasets/cave_1024_28)",
    "CAVE_512_28": "github.com/caiyuanhao1998/MST (datasets/CAVE_512_28, real-data training)",
    "Truth": "github.com/caiyuanhao1998/MST (datasets/TSA_simu_data/Truth: KAIST scene01..10.mat, key img)",
    "remote": "Samson / Jasper Ridge unmixing benchmarks, alfaiate/HySure (Paris)",
}


# -- reading ------------------------------------------------------------------------------------
def read_cassi_mask(path: str | Path, key: str = "mask") -> torch.Tensor:
    """Read a 2-D coded aperture from a ``.mat`` file (``mask_256.mat``, ``mask_660.mat``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {path} does not exist")
    d = load_mat(path)
    if key not in d:
        raise KeyError(f"{path} has no key {key!r} (keys: {sorted(d)}); pass the mask's key")
    m = np.asarray(d[key], dtype=np.float32)
    if m.ndim == 3 and m.shape[-1] > 1 and np.allclose(m, m[..., :1]):
        m = m[..., 0]  # a 3-D mask tiled over bands (mask3d) → the 2-D aperture
    if m.ndim != 2:
        raise ValueError(f"{path}:{key} has shape {m.shape}; SD-CASSI needs a 2-D coded aperture (H, W)")
    if not np.isfinite(m).all():
        raise ValueError(f"mask {path}:{key} contains NaN/Inf values: clean it first")
    return torch.from_numpy(m.copy())


def resample_bands(cube: np.ndarray, src_wl: Sequence[float], dst_wl: Sequence[float] = KAIST_WAVELENGTHS) -> np.ndarray:
    """Linear interpolation of ``(C, H, W)`` along bands from ``src_wl`` to ``dst_wl`` (no extrapolation)."""
    src, dst = np.asarray(src_wl, dtype=np.float64), np.asarray(dst_wl, dtype=np.float64)
    if cube.shape[0] != len(src):
        raise ValueError(f"cube has {cube.shape[0]} bands but {len(src)} source wavelengths were given")
    if dst.min() < src.min() - 1e-6 or dst.max() > src.max() + 1e-6:
        raise ValueError(f"target wavelengths {dst.min():g}–{dst.max():g} nm exceed the cube's {src.min():g}–{src.max():g} nm")
    order = np.argsort(src)
    src, cube = src[order], cube[order]
    idx = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, len(src) - 2)
    t = ((dst - src[idx]) / (src[idx + 1] - src[idx]))[:, None, None]
    return ((1 - t) * cube[idx] + t * cube[idx + 1]).astype(np.float32)


_KEYS = ("img_expand", "img", "NRD", "cube", "hsi", "HSI", "data")


def read_cube(path: str | Path, key: str | None = None) -> np.ndarray:
    """A spectral cube from a ``.mat`` file in an official layout → ``(28, H, W)`` float32 in [0, 1].

    ``(H, W, C)`` arrays (the MATLAB layouts) are transposed; 31-band cubes (CAVE, 400–700 nm)
    are interpolated to the 28 CASSI wavelengths. Scaling: MST's ``img_expand``/integer ``img``
    /65536; float ``img`` (KAIST) as is; ``NRD`` (CAVE 256 demos) / its maximum.
    """
    path = Path(path)
    d = load_mat(path)
    k = key or next((k for k in _KEYS if k in d), None)
    if k is None and key is None:  # any CAVE-style file: the one 3-D array with 28 or 31 bands
        cands = [n for n, v in d.items() if getattr(v, "ndim", 0) == 3 and {28, 31} & set(v.shape)]
        if len(cands) == 1:
            k = cands[0]
            log.info("%s: using the cube variable %r (the only 3-D array with 28 or 31 bands)", path, k)
    if k is None or k not in d:
        raise KeyError(f"{path}: no cube key (tried {key or _KEYS}, then any single 3-D 28/31-band array); "
                       f"keys present: {sorted(d)}; pass key=")
    a = np.asarray(d[k])
    if a.ndim != 3:
        raise ValueError(f"{path}:{k} has shape {a.shape}; a spectral cube is 3-D (H, W, C)")
    if a.shape[-1] in (28, 31) and a.shape[0] not in (28, 31):
        a = np.moveaxis(a, -1, 0)
    elif a.shape[0] not in (28, 31):
        raise ValueError(f"{path}:{k} has shape {a.shape}: expected 28 (KAIST/CAVE_28) or 31 (CAVE 400–700 nm) bands")
    integer = np.issubdtype(a.dtype, np.integer)
    a = a.astype(np.float64)
    if k in ("NRD", "Omsi"):  # CAVE cubes of the 256² demos: divided by the cube's maximum (the test protocol)
        a = a / max(float(a.max()), 1e-12)
    elif k == "img_expand" or integer or a.max() > 1.5:
        a = a / 65536.0
    if a.shape[0] == 31:
        a = resample_bands(a, CAVE_WAVELENGTHS)
    cube = np.ascontiguousarray(a, dtype=np.float32)
    validate_cube(cube, str(path))
    return cube


def read_cave_png_folder(folder: str | Path) -> np.ndarray:
    """The official CAVE layout ``<scene>_ms/*_01.png … *_31.png`` (16-bit grey) → ``(28, H, W)``."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.png") if p.stem.rsplit("_", 1)[-1].isdigit())
    if len(files) != 31:
        raise ValueError(f"{folder}: a CAVE scene has 31 band PNGs (*_01.png … *_31.png), found {len(files)}")
    bands = []
    for f in files:
        with open_image(f) as im:
            arr = np.asarray(im, dtype=np.float64)
        if arr.ndim == 3:  # a few CAVE PNGs are stored RGBA/RGB: take one channel
            arr = arr[..., 0]
        bands.append(arr / (65535.0 if arr.max() > 255 else 255.0))
    return resample_bands(np.stack(bands), CAVE_WAVELENGTHS)


def validate_cube(cube: np.ndarray, what: str = "cube", bands: int = 28) -> None:
    """Refuse cubes that cannot be CASSI data: wrong rank/band count, NaN/Inf, values far outside [0, 1]."""
    if cube.ndim != 3 or cube.shape[0] != bands:
        raise ValueError(f"{what}: expected a ({bands}, H, W) cube, got {cube.shape}")
    if not np.isfinite(cube).all():
        raise ValueError(f"{what}: contains NaN/Inf")
    lo, hi = float(cube.min()), float(cube.max())
    if lo < -1e-3 or hi > 1.5:
        raise ValueError(f"{what}: values in [{lo:.3g}, {hi:.3g}]; cubes must be scaled to [0, 1]")
    if min(cube.shape[1:]) < 8:
        raise ValueError(f"{what}: {cube.shape[1]}×{cube.shape[2]} pixels is too small")


def list_cubes(folder: Path) -> list[Path]:
    """``.mat`` cubes and CAVE PNG scene folders inside ``folder`` (one level, plus ``*_ms/*_ms`` nesting)."""
    out = sorted(folder.glob("*.mat"))
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        inner = d / d.name if (d / d.name).is_dir() else d  # the official zip nests <scene>_ms/<scene>_ms/
        if any(inner.glob("*_01.png")):
            out.append(inner)
    return out


def load_any(path: Path) -> np.ndarray:
    return read_cave_png_folder(path) if path.is_dir() else read_cube(path)


def resolve_cube_folder(folder: str | Path, root: str | Path | None) -> Path:
    p = resolve_path(folder, root)
    if not p.is_dir():
        src = _SOURCES.get(Path(folder).name, "your own cubes (.mat with key img/img_expand/NRD, or CAVE PNG folders)")
        raise DatasetNotFoundError(
            f"spectral data folder not found: {p}. Expected .mat cubes (H×W×28 key img/img_expand, or H×W×31 "
            f"CAVE 400–700 nm) or CAVE <scene>_ms PNG folders; source: {src}. Set ZOO_DATA or pass an absolute path.")
    return p


def read_remote_cubes(folder: str | Path) -> list[np.ndarray]:
    """The ``cassi/remote`` cubes (Samson, Jasper Ridge, Paris/Hyperion) at the 28 wavelengths, /p99.9."""
    folder = Path(folder)
    cubes = []
    f = folder / "Samson.mat"
    if f.is_file():
        a = np.moveaxis(np.asarray(load_mat(f)["SamSon"], dtype=np.float64), -1, 0)
        cubes.append(("Samson", a, np.linspace(401, 889, a.shape[0])))
    f = folder / "jasperRidge2_R198.mat"
    if f.is_file():
        d = load_mat(f)
        y = np.asarray(d["Y"], dtype=np.float64)
        nr, nc = int(np.asarray(d["nRow"]).ravel()[0]), int(np.asarray(d["nCol"]).ravel()[0])
        a = y.reshape(y.shape[0], nr, nc, order="F")  # pixels are stored column-major
        idx = np.asarray(d["SlectBands"]).ravel().astype(np.float64)
        cubes.append(("jasperRidge", a, 380 + (idx - 1) * (2500 - 380) / 223))
    f = folder / "paris_data_hs_ms.mat"
    if f.is_file():
        d = load_mat(f)
        a = np.moveaxis(np.asarray(d["HSim"], dtype=np.float64), -1, 0)
        b = np.asarray(d.get("non_del_bands", np.arange(1, a.shape[0] + 1))).ravel().astype(np.float64)
        cubes.append(("paris", a, 355.59 + 10.175 * (b - 1)))
    out = []
    for name, a, wl in cubes:
        keep = (wl >= 440) & (wl <= 660)
        c = resample_bands(a[keep], wl[keep])
        c = np.clip(c / max(float(np.percentile(c, 99.9)), 1e-12), 0, 1).astype(np.float32)
        validate_cube(c, name)
        out.append(c)
    return out


def _read_rgb(path: Path) -> np.ndarray:
    with open_image(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


# -- datasets --------------------------------------------------------------------------------------
class SpectralPatches(Dataset):
    """Random (or, with ``seed``, fixed) ``patch×patch`` 28-band crops from RGB images and cubes.

    Args:
        rgb: uint8 ``(H, W, 3)`` images, turned into cubes per crop (:func:`rgb_to_cube`).
        cubes: ``(28, H, W)`` cubes (upsampled when smaller than a patch).
        patch, length: crop size, crops per epoch.
        cube_prob: probability of drawing from ``cubes`` when both sources exist.
        real, real_prob: real captured cubes and the probability of a crop from them (before the other sources).
        illuminant_prob: probability of a random black-body illuminant on RGB-derived cubes.
        random_spectra_prob: probability that an RGB crop mixes three random spectra by its linear RGB
            (:func:`~zoo.data.spectral.rgb_to_random_cube`) instead of the Otsu recovery.
        bump_spectra_prob: probability (drawn first) that an RGB crop gets a per-pixel spectral peak
            (:func:`~zoo.data.spectral.rgb_to_bump_cube`).
        augment: flips/rotations; ``False`` with ``seed`` gives the same crops every epoch.
    """

    def __init__(self, rgb: Sequence[np.ndarray], cubes: Sequence[np.ndarray], patch: int = 64, length: int = 2000,
                 cube_prob: float = 0.2, illuminant_prob: float = 0.5, augment: bool = True, seed: int | None = None,
                 real: Sequence[np.ndarray] = (), real_prob: float = 0.0, random_spectra_prob: float = 0.0,
                 bump_spectra_prob: float = 0.0) -> None:
        for k, v in (("real_prob", real_prob), ("random_spectra_prob", random_spectra_prob),
                     ("bump_spectra_prob", bump_spectra_prob)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{k} must be in [0, 1], got {v}")
        self.rgb = [im for im in rgb if min(im.shape[:2]) >= patch]
        self.cubes = [self._fit(c, patch) for c in cubes]
        self.real = [self._fit(c, patch) for c in real]
        if not self.rgb and not self.cubes and not self.real:
            raise ValueError(f"no training image or cube is at least {patch}×{patch}; lower `patch`")
        self.patch, self.length, self.augment, self.seed = patch, length, augment, seed
        self.cube_prob = cube_prob if (self.rgb and self.cubes) else (1.0 if self.cubes else 0.0)
        self.real_prob = (real_prob if (self.rgb or self.cubes) else 1.0) if self.real else 0.0
        self.illuminant_prob, self.random_spectra_prob = illuminant_prob, random_spectra_prob
        self.bump_spectra_prob = bump_spectra_prob

    @staticmethod
    def _fit(c: np.ndarray, patch: int) -> np.ndarray:
        if min(c.shape[1:]) < patch:  # upsampled to hold a patch
            s = patch / min(c.shape[1:])
            t = F.interpolate(torch.from_numpy(np.asarray(c, np.float32))[None], scale_factor=s, mode="bilinear",
                              align_corners=False)[0]
            c = t.clamp(0, 1).numpy()
        return np.ascontiguousarray(c, dtype=np.float16)  # half the RAM of big cube sets

    @staticmethod
    def _crop(c: np.ndarray, p: int, rng: random.Random) -> torch.Tensor:
        t, l_ = rng.randrange(c.shape[1] - p + 1), rng.randrange(c.shape[2] - p + 1)
        return torch.from_numpy(c[:, t : t + p, l_ : l_ + p].astype(np.float32))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = random.Random(None if self.seed is None else self.seed * 100003 + i)
        p = self.patch
        if self.real and rng.random() < self.real_prob:
            x = self._crop(self.real[rng.randrange(len(self.real))], p, rng)
        elif rng.random() < self.cube_prob:
            x = self._crop(self.cubes[rng.randrange(len(self.cubes))], p, rng)
        else:
            im = self.rgb[rng.randrange(len(self.rgb))]
            t, l_ = rng.randrange(im.shape[0] - p + 1), rng.randrange(im.shape[1] - p + 1)
            crop = im[t : t + p, l_ : l_ + p]
            if self.bump_spectra_prob and rng.random() < self.bump_spectra_prob:
                x = torch.from_numpy(rgb_to_bump_cube(crop, np.random.default_rng(rng.getrandbits(64))))
            elif self.random_spectra_prob and rng.random() < self.random_spectra_prob:
                x = torch.from_numpy(rgb_to_random_cube(crop, random_spectra(np.random.default_rng(rng.getrandbits(64)))))
            else:
                ill = blackbody(rng.uniform(3000, 9000)) if rng.random() < self.illuminant_prob else None
                x = torch.from_numpy(rgb_to_cube(crop, ill))
        if self.augment:
            x = torch.rot90(x, rng.randrange(4), (1, 2))
            if rng.random() < 0.5:
                x = x.flip(2)
        return {"target": x.contiguous()}


class CubeSet(Dataset):
    """Whole cubes (test sets): ``{"target": (28, H, W), "name"}``."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self.names = [f.stem for f in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, object]:
        return {"target": torch.from_numpy(load_any(self.files[i])), "name": self.names[i]}


class CASSIDataModule(RestorationDataModule):
    """Training crops from the synthetic source + remote cubes + your cubes; whole test cubes.

    Args:
        data_root: overrides ``ZOO_DATA``.
        rgb_dirs: folders of natural sRGB images turned into 28-band cubes.
        remote_dir: ``cassi/remote`` (``None`` to skip).
        train_dirs: folders of cubes in the official layouts (see module docstring).
        test_dirs: folders of whole test cubes (default the two CAVE cubes: never trained on).
        patch, samples_per_epoch, batch_size, num_workers: loaders.
        val_images: RGB images (and cubes, at most 1) held out for validation; 16 fixed crops each.
        cube_prob, illuminant_prob: see :class:`SpectralPatches`.
        real_cubes: cube files (``.mat`` in the layouts above, or CAVE PNG folders) of real captured spectra.
        real_prob: probability that a training crop comes from ``real_cubes``.
        random_spectra_prob: probability that an RGB training crop mixes random spectra instead of the Otsu
            recovery (see :class:`SpectralPatches`); validation crops always use the Otsu recovery.
        bump_spectra_prob: probability that an RGB training crop gets per-pixel spectral peaks (see
            :class:`SpectralPatches`); drawn before ``random_spectra_prob``.
        real_val_width: the first (left) columns of each real cube held out: 16 fixed crops of them form the
            second validation set, ``real`` (logged ``val/real/psnr``, ``val/real/sam`` …); training crops come
            from the other columns only. The first validation set (``val/*``) is unchanged.
    """

    def __init__(
        self,
        data_root: str | None = None,
        rgb_dirs: Sequence[str] = ("images/T91", "flash/faid32_half"),
        remote_dir: str | None = "cassi/remote",
        train_dirs: Sequence[str] = (),
        test_dirs: Sequence[str] = ("cassi/cave256",),
        patch: int = 64,
        samples_per_epoch: int = 2000,
        val_images: int = 4,
        batch_size: int = 4,
        num_workers: int = 0,
        cube_prob: float = 0.2,
        illuminant_prob: float = 0.5,
        real_cubes: Sequence[str] = (),
        real_prob: float = 0.0,
        real_val_width: int = 64,
        random_spectra_prob: float = 0.0,
        bump_spectra_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.test_names = [Path(d).name for d in test_dirs]
        self.val_names: list[str] = ["val"] + (["real"] if real_cubes else [])
        if not 0.0 <= real_prob <= 1.0:
            raise ValueError(f"real_prob must be in [0, 1], got {real_prob}")
        if real_cubes and not real_prob > 0:
            raise ValueError("real_cubes are given but real_prob is 0: set real_prob (e.g. 0.3) so training sees them")
        if real_cubes and real_val_width < patch:
            raise ValueError(f"real_val_width={real_val_width} cannot hold a {patch}×{patch} validation crop: "
                             f"set it to at least patch ({patch})")
        if any(Path(d).parts[:2] == ("cassi", "cave256") or Path(d).parent.name == "cave256" for d in real_cubes):
            raise ValueError("real_cubes names a cassi/cave256 cube: CAVE-2 is the test set, never train on it; "
                             "use cassi/cave256_train/balloons_ms_256.mat")

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None):
            rgb_files: list[Path] = []
            for d in hp.rgb_dirs:
                folder = resolve_cube_folder(d, hp.data_root)
                rgb_files += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            random.Random(0).shuffle(rgb_files)
            nval = min(hp.val_images, max(0, len(rgb_files) - 1))
            rgb = [_read_rgb(p) for p in rgb_files]
            cubes: list[np.ndarray] = []
            if hp.remote_dir:
                cubes += read_remote_cubes(resolve_cube_folder(hp.remote_dir, hp.data_root))
            for d in hp.train_dirs:
                files = list_cubes(resolve_cube_folder(d, hp.data_root))
                if not files:
                    raise DatasetNotFoundError(f"no cubes (.mat or CAVE PNG folders) in {d}")
                cubes += [load_any(f) for f in files]
            real_train, real_val = [], []
            for f in hp.real_cubes:
                path = resolve_path(f, hp.data_root)
                if not path.exists():
                    raise DatasetNotFoundError(f"real cube {path} not found (real_cubes entry {f!r}); set ZOO_DATA or "
                                               "pass an absolute path")
                c = load_any(path)
                if c.shape[2] < hp.real_val_width + hp.patch:
                    raise ValueError(f"{path}: {c.shape[2]} columns cannot hold the held-out {hp.real_val_width} "
                                     f"plus one {hp.patch}-wide training crop; lower real_val_width")
                real_val.append(c[:, :, : hp.real_val_width])
                real_train.append(c[:, :, hp.real_val_width :])
            if not rgb and not cubes and not real_train:
                raise DatasetNotFoundError("no training data: give rgb_dirs, remote_dir, train_dirs or real_cubes")
            val_cubes = cubes[-1:] if (cubes and not rgb) else []
            self.train_set = SpectralPatches(rgb[nval:], cubes, hp.patch, hp.samples_per_epoch, hp.cube_prob,
                                             hp.illuminant_prob, real=real_train, real_prob=hp.real_prob,
                                             random_spectra_prob=hp.random_spectra_prob,
                                             bump_spectra_prob=hp.bump_spectra_prob)
            val_rgb = rgb[:nval]
            self.real_val_set = (SpectralPatches([], [], hp.patch, 16 * len(real_val), augment=False, seed=1,
                                                 real=real_val) if real_val else None)
            if val_rgb or val_cubes:
                self.val_set = SpectralPatches(val_rgb, val_cubes, hp.patch, 16 * max(1, len(val_rgb) + len(val_cubes)),
                                               0.0 if val_rgb else 1.0, hp.illuminant_prob, augment=False, seed=1)
            else:  # real cubes only: their held-out strips are the one validation set
                self.val_set, self.real_val_set, self.val_names = self.real_val_set, None, ["val"]
        if stage in ("test", "predict", None):
            self.test_sets = []
            for d in hp.test_dirs:
                files = list_cubes(resolve_cube_folder(d, hp.data_root))
                if not files:
                    raise DatasetNotFoundError(f"no test cubes in {d}")
                self.test_sets.append(CubeSet(files))

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        # validation crops share one size: batch them like training
        main = self._loader(self.val_set, False, self.hparams.batch_size)
        if getattr(self, "real_val_set", None) is None:
            return main
        return [main, self._loader(self.real_val_set, False, self.hparams.batch_size)]
