"""Reading the files users hand us (images, MATLAB ``.mat``, HDF5) with errors that name the file.

A PNG that is really a text file, or a ``.mat`` that is really a PNG, must not surface as a
library traceback (``UnidentifiedImageError``, ``Unknown mat file type, version 17, 86``): every
reader here raises :class:`ValueError` naming the path, what was expected and the fix.

Example:
    >>> import numpy as np, scipy.io as sio, tempfile, os
    >>> from zoo.data.io import load_mat
    >>> f = os.path.join(tempfile.mkdtemp(), "m.mat"); sio.savemat(f, {"mask": np.ones((4, 4))})
    >>> load_mat(f)["mask"].shape
    (4, 4)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["open_image", "image_array", "load_mat", "load_h5"]

IMAGE_HINT = "an image PIL can read (PNG, JPEG, TIFF, BMP)"


@contextmanager
def open_image(path: str | os.PathLike) -> Iterator[Any]:
    """``with open_image(p) as im:`` — :func:`PIL.Image.open` with a clear error for unreadable files."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        im = Image.open(path)
        im.load()  # a truncated file fails here, not later inside numpy
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path} is not {IMAGE_HINT} ({type(e).__name__}: {e}); "
                         "convert it, or check that the file is complete") from e
    try:
        yield im
    finally:
        im.close()


def image_array(im: Any, path: str | os.PathLike = "image") -> tuple[np.ndarray, int]:
    """Pixel values of an open PIL image as float32 in [0, 1] → (array H×W or H×W×C, bits per sample).

    The scale is decided from the data, never assumed: 8-bit modes are divided by 255, 16-bit grey
    (``I;16*``, or ``I`` with values ≤ 65535) by 65535, float images (``F``) are taken as they are
    when they lie in [0, 1]; anything else is refused with the fix. Palette / RGBA / CMYK images
    become RGB (alpha dropped).
    """
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im, dtype=np.float64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"{path}: 32-bit integer pixels in [{a.min():.0f}, {a.max():.0f}]; save it as an 8- or "
                             "16-bit image (or float in [0, 1])")
        return (a / 65535.0).astype(np.float32), 16
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise ValueError(f"{path}: float pixels must be finite and in [0, 1], got [{np.nanmin(a):.4g}, "
                             f"{np.nanmax(a):.4g}]; rescale it to [0, 1]")
        return a, 32
    if mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0, 8


def load_h5(path: str | os.PathLike, transpose: bool = False) -> dict[str, np.ndarray]:
    """Top-level datasets of an HDF5 file (MATLAB v7.3 stores arrays transposed: ``transpose=True``)."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError(f"reading {path} (HDF5 / MATLAB v7.3) needs h5py: pip install 'unfolding-zoo[mat73]'") from e
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 file ({e}); expected a PanCollection .h5 or a "
                         "MATLAB v7.3 .mat") from e
    out = {}
    with f:
        for k in f.keys():
            if isinstance(f[k], h5py.Dataset):
                a = np.asarray(f[k])
                out[k] = a.T if transpose and a.ndim >= 2 else a
    return out


def load_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Variables of a MATLAB ``.mat`` file (v4–v7 via SciPy, v7.3 via h5py), ``__header__`` etc. dropped."""
    import scipy.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f".mat file {path} does not exist")
    try:
        return {k: v for k, v in sio.loadmat(str(path)).items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3 = HDF5
        return load_h5(path, transpose=True)
    except (ValueError, TypeError, OSError) as e:
        if _is_hdf5(path):  # HDF5 without MATLAB's 512-byte header (h5py/Python writers)
            return load_h5(path, transpose=True)
        raise ValueError(f"{path} is not a readable MATLAB .mat file ({e}); save it from MATLAB/SciPy "
                         "(scipy.io.savemat) or pass a file in the layout the command documents") from e


def _is_hdf5(path: Path) -> bool:
    try:
        import h5py
    except ImportError:
        return False
    return bool(h5py.is_hdf5(str(path)))
