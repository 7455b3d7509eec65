"""Spectral colour: 28-band cubes ↔ CIE XYZ ↔ sRGB, and RGB → reflectance (Otsu et al. 2018).

Rendering (:func:`cube_to_srgb`): ``XYZ = Σ_k cube_k · cmf(λ_k) · Δλ_k`` with the CIE 1931 2°
colour-matching functions at the 28 CASSI wavelengths (453–648 nm; trapezoid weights), white
balanced so a flat spectrum renders as D65 white (von Kries scaling in XYZ), then IEC 61966-2-1
sRGB (linear matrix + transfer curve), exposure set by a high percentile. The 28 bands do not span
the visible range (no violet below 453 nm, no deep red above 648 nm), so renderings are
approximate colours — for viewing, not colorimetry.

Synthesis (:func:`rgb_to_cube`): sRGB → linear → XYZ (D65) → a reflectance spectrum by the
method of Otsu, Yamamoto & Hachisuka (CGF 2018): the chromaticity selects one of 8 clusters of
real measured reflectances, and the spectrum is that cluster's mean plus a 3-vector of its PCA
basis solved to reproduce the XYZ exactly (clipped to [0, 1]). Very dark pixels are recovered at
a floor luminance and scaled back (shading × reflectance), so black does not turn into the
cluster mean. The tables come from colour-science (``zoo/data/_spectral_tables.py``); no
run-time dependency.

Example:
    >>> import numpy as np
    >>> from zoo.data.spectral import rgb_to_cube, cube_to_srgb
    >>> cube = rgb_to_cube(np.full((4, 4, 3), 0.5))
    >>> cube.shape, cube_to_srgb(cube).shape
    ((28, 4, 4), (4, 4, 3))
"""

from __future__ import annotations

import numpy as np
import torch

from zoo.data._spectral_tables import CMF_1931, OTSU_A, OTSU_B, OTSU_SELECTOR, WAVELENGTHS

__all__ = ["WAVELENGTHS", "srgb_to_linear", "linear_to_srgb", "rgb_to_xyz", "xyz_to_rgb", "rgb_to_cube",
           "reflectance_from_xyz", "cube_to_xyz", "cube_to_srgb", "blackbody", "random_spectra", "rgb_to_random_cube",
           "rgb_to_bump_cube"]

# IEC 61966-2-1 (sRGB, D65)
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_D65_XYZ = _RGB2XYZ.sum(1)  # (0.9505, 1, 1.089)


def srgb_to_linear(v):
    """The sRGB transfer function inverted (IEC 61966-2-1): tensors in their dtype, arrays in float64."""
    if torch.is_tensor(v):
        return torch.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v):
    """The sRGB transfer function of linear light clipped to [0, 1]: tensors in their dtype, arrays in float64."""
    if torch.is_tensor(v):
        v = v.clamp(0, 1)
        return torch.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)
    v = np.clip(np.asarray(v, dtype=np.float64), 0, 1)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


def rgb_to_xyz(rgb_linear: np.ndarray) -> np.ndarray:
    return np.asarray(rgb_linear, dtype=np.float64) @ _RGB2XYZ.T


def xyz_to_rgb(xyz: np.ndarray) -> np.ndarray:
    return np.asarray(xyz, dtype=np.float64) @ _XYZ2RGB.T


def _otsu_cluster(xy: np.ndarray) -> np.ndarray:
    """Vectorised walk of the Otsu 2018 selector tree: cluster index per chromaticity."""
    n = xy.shape[0]
    row = np.zeros(n, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    todo = np.arange(n)
    for _ in range(len(OTSU_SELECTOR) + 1):
        if todo.size == 0:
            break
        r = OTSU_SELECTOR[row[todo]]
        axis = r[:, 1].astype(np.int64)
        nxt = np.where(xy[todo, axis] <= r[:, 0], r[:, 2], r[:, 3]).astype(np.int64)
        leaf = nxt >= 0
        out[todo[leaf]] = nxt[leaf]
        row[todo[~leaf]] = -nxt[~leaf]
        todo = todo[~leaf]
    return out


def reflectance_from_xyz(xyz: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """``(..., 3)`` XYZ (white Y = 1) → ``(..., 28)`` reflectance in [0, 1] (Otsu 2018, see module)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    shp = xyz.shape[:-1]
    v = xyz.reshape(-1, 3)
    Y = v[:, 1:2]
    s = np.maximum(Y, floor) / np.maximum(Y, 1e-12)  # lift very dark pixels to the floor luminance
    s = np.where(Y > 1e-12, s, 0.0)
    vv = np.where(Y > 1e-12, v * s, np.array([_D65_XYZ]) * floor)
    tot = vv.sum(1, keepdims=True)
    xy = vv[:, :2] / np.maximum(tot, 1e-12)
    c = _otsu_cluster(xy)
    rho = np.einsum("nkj,nj->nk", OTSU_A[c], vv) + OTSU_B[c]
    rho = np.clip(rho, 0, 1)
    scale = np.where(Y > 1e-12, 1 / np.where(s > 0, s, 1), 0.0)
    return (rho * scale).reshape(*shp, -1)


def rgb_to_cube(rgb: np.ndarray, illuminant: np.ndarray | None = None) -> np.ndarray:
    """An sRGB image ``(H, W, 3)`` in [0, 1] (or uint8) → a 28-band cube ``(28, H, W)`` (float32).

    ``illuminant`` (28,) multiplies the reflectances (a radiance cube under that light).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float64) / 255.0
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_cube expects an (H, W, 3) image, got {rgb.shape}")
    refl = reflectance_from_xyz(rgb_to_xyz(srgb_to_linear(rgb)))
    if illuminant is not None:
        refl = refl * np.asarray(illuminant)[None, None]
    return np.ascontiguousarray(np.moveaxis(refl, -1, 0)).astype(np.float32)


def random_spectra(rng: np.random.Generator, n: int = 3, wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """``n`` random smooth spectra ``(n, C)`` in [0, 1], peak 1: a pedestal ``b`` plus either one or two
    Gaussian bumps (centre anywhere in the range ± 20 nm, σ 10–80 nm) or a sigmoid edge (rising or falling,
    width 5–40 nm) — the shapes of measured reflectances, at random positions and widths."""
    lam = np.asarray(wavelengths, dtype=np.float64)
    lo, hi = float(lam[0]) - 20, float(lam[-1]) + 20
    out = np.empty((n, lam.size))
    for i in range(n):
        b = rng.uniform(0.0, 0.35)
        if rng.random() < 0.7:
            shape = sum(rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((lam - rng.uniform(lo, hi)) / rng.uniform(10, 80)) ** 2)
                        for _ in range(rng.integers(1, 3)))
        else:
            shape = 1 / (1 + np.exp(-(lam - rng.uniform(lo, hi)) / rng.uniform(5, 40) * rng.choice([-1, 1])))
        s = b + (1 - b) * shape
        out[i] = s / s.max()
    return out


def rgb_to_random_cube(rgb: np.ndarray, basis: np.ndarray, sharpness: float = 3.0) -> np.ndarray:
    """An sRGB image ``(H, W, 3)`` → a cube ``(C, H, W)`` whose pixels mix three given spectra ``basis`` (3, C)
    by their colour: ``x(λ) = v · Σ_c a_c s_c(λ)``, ``a_c = ℓ_c^p / Σ_c' ℓ_c'^p`` (ℓ the linear RGB,
    ``p = sharpness`` keeps saturated colours close to one spectrum) and ``v = max_c ℓ_c`` the brightness.

    Training-data diversity, not colorimetry: the Otsu recovery (:func:`rgb_to_cube`) puts every pixel in a
    3-D PCA space of one of 8 clusters, so a network trained only on it learns those shapes and bends
    other real spectra towards them; random bases (:func:`random_spectra`) remove that shortcut.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float64) / 255.0
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or basis.shape[0] != 3:
        raise ValueError(f"rgb_to_random_cube expects an (H, W, 3) image and a (3, C) basis, got {rgb.shape}, "
                         f"{basis.shape}")
    lin = srgb_to_linear(rgb)
    w = (lin + 1e-6) ** sharpness
    cube = (w / w.sum(-1, keepdims=True)) @ basis * lin.max(-1, keepdims=True)
    return np.ascontiguousarray(np.moveaxis(cube, -1, 0)).astype(np.float32)


def rgb_to_bump_cube(rgb: np.ndarray, rng: np.random.Generator, wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """An sRGB image ``(H, W, 3)`` → a cube ``(C, H, W)`` whose spectra move continuously across the crop:
    ``x(λ, p) = v(p) · (b + (1 − b) · exp(−½((λ − c(p)) / σ)²))`` normalised to peak 1, ``v = max_c ℓ_c`` the
    brightness (ℓ the linear RGB), pedestal ``b`` ∈ [0, 0.5] and width ``σ`` ∈ [15, 70] nm drawn per crop.

    The centre ``c(p)`` is, with equal odds, a smooth random field (a random ramp plus bicubic low-frequency
    noise over the range ± 20 nm) or the crop's hue mapped to a wavelength (hue edges become spectral edges).
    Training-data diversity, not colorimetry: :func:`rgb_to_random_cube` gives each crop three spectra, so
    shapes vary in a 3-D span; here every pixel can have its own peak, and flat, textureless regions with a
    spectral gradient (sky, shading under coloured light) teach the network to read their spectra from the
    measurement, as TV-regularised GAP does, instead of from its prior.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float64) / 255.0
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_bump_cube expects an (H, W, 3) image, got shape {rgb.shape}")
    lam = np.asarray(wavelengths, dtype=np.float64)
    lo, hi = float(lam[0]) - 20, float(lam[-1]) + 20
    lin = srgb_to_linear(rgb)
    h, w = lin.shape[:2]
    if rng.random() < 0.5:
        yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
        a = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(a) * xx + np.sin(a) * yy
        g = max(2, h // 16)
        coarse = torch.from_numpy(rng.standard_normal((1, 1, g, g)))
        noise = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0, 0].numpy()
        field = rng.uniform(0, 1.5) * ramp + rng.uniform(0, 0.5) * noise
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
        span = rng.uniform(0.2, 1.0) * (hi - lo)
        centre = rng.uniform(lo, hi - span) + span * field
    else:
        mx, mn = lin.max(-1), lin.min(-1)
        r, gr, b_ = lin[..., 0], lin[..., 1], lin[..., 2]
        d = np.maximum(mx - mn, 1e-6)
        hue = np.where(mx == r, ((gr - b_) / d) % 6, np.where(mx == gr, (b_ - r) / d + 2, (r - gr) / d + 4)) / 6
        hue = (hue + rng.uniform(0, 1)) % 1.0
        centre = lo + (hi - lo) * hue
    b = rng.uniform(0.0, 0.5)
    sigma = rng.uniform(15, 70)
    spec = b + (1 - b) * np.exp(-0.5 * ((lam[:, None, None] - centre[None]) / sigma) ** 2)
    spec = spec / spec.max(0, keepdims=True)
    cube = spec * lin.max(-1)[None]
    return np.ascontiguousarray(cube).astype(np.float32)


def blackbody(temperature: float, wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """Planck's law at ``wavelengths`` (nm), normalised to peak 1 over them."""
    lam = np.asarray(wavelengths, dtype=np.float64) * 1e-9
    h, c, k = 6.62607015e-34, 2.99792458e8, 1.380649e-23
    b = 1 / (lam**5 * (np.exp(h * c / (lam * k * temperature)) - 1))
    return b / b.max()


def _band_weights(wavelengths: np.ndarray) -> np.ndarray:
    wl = np.asarray(wavelengths, dtype=np.float64)
    d = np.gradient(wl)  # trapezoid-like Δλ per sample
    return d


def cube_to_xyz(cube: np.ndarray, wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """``(28, H, W)`` → ``(H, W, 3)`` XYZ, white-balanced so a flat unit spectrum maps to D65 white (Y = 1)."""
    cube = np.asarray(cube, dtype=np.float64)
    wl = np.asarray(wavelengths, dtype=np.float64)
    if cube.shape[0] != len(wl):
        raise ValueError(f"cube has {cube.shape[0]} bands, wavelengths give {len(wl)}")
    cmf = np.stack([np.interp(wl, WAVELENGTHS, CMF_1931[:, i]) for i in range(3)], 1) if len(wl) != len(WAVELENGTHS) or not np.allclose(wl, WAVELENGTHS) else CMF_1931
    w = cmf * _band_weights(wl)[:, None]  # (C, 3)
    flat = w.sum(0)
    xyz = np.einsum("chw,cj->hwj", cube, w)
    return xyz / flat * _D65_XYZ


def cube_to_srgb(cube, wavelengths: np.ndarray = WAVELENGTHS, percentile: float = 99.5,
                 exposure: float | None = None) -> np.ndarray:
    """Render a 28-band cube ``(28, H, W)`` (numpy or torch) to an 8-bit sRGB image ``(H, W, 3)``.

    ``exposure`` scales linear RGB (default: the ``percentile`` of the brightest channel → 1).
    """
    if hasattr(cube, "detach"):
        cube = cube.detach().float().cpu().numpy()
    cube = np.clip(np.asarray(cube, dtype=np.float64), 0, None)
    if cube.ndim == 4:
        cube = cube[0]
    rgb = np.clip(xyz_to_rgb(cube_to_xyz(cube, wavelengths)), 0, None)
    if exposure is None:
        ref = np.percentile(rgb.max(-1), percentile)
        exposure = 1.0 / ref if ref > 0 else 1.0
    return (linear_to_srgb(rgb * exposure) * 255 + 0.5).astype(np.uint8)
