"""Super-resolution physics: ``y = (x ⊛ k)↓s (+ n)`` with a circular boundary (USRNet's model).

* ``⊛`` is circular 2-D convolution with a kernel ``k`` of odd size whose centre pixel is the
  origin, ``↓s`` keeps pixels ``0, s, 2s, …`` (USRNet's ``downsample``); ``x`` is ``(N, C, sH, sW)``.
* The adjoint is ``Aᵀ y = k̃ ⊛ (↑s y)`` (zero insertion, then correlation with ``k``), exact.
* The data step (USRNet eq. 7) has a closed form in the Fourier domain: with ``F_k = FFT(k)``,
  ``r = Aᵀy + α z`` and ``W = mean over the s×s aliases of |F_k|²``,

  ``argmin_x ‖A x − y‖² + α ‖x − z‖² = F⁻¹[(R − conj(F_k) · ↑(mean_aliases(F_k R) / (W + α))) / α]``

  (Woodbury on ``αI + AᵀA``; ``mean_aliases`` sums the s² spectral copies that decimation folds
  together, ``↑`` repeats the result over them).
* MATLAB's bicubic ``imresize`` (the benchmark LR) is :func:`imresize` — exact, antialiased, with
  symmetric borders — and equals this model with :func:`bicubic_kernel` away from the borders.
* Kernel generators for training and the USRNet 12-kernel protocol: :func:`gaussian_kernel`
  (isotropic/anisotropic) and :func:`motion_kernel` (a seeded random camera trajectory).

Kernels of the protocol are placed on MATLAB's LR grid: LR pixel ``i`` is centred at HR
coordinate ``s·i + (s−1)/2`` (so a bicubic upsampling of the LR is aligned with the HR image);
``shift = (s − 1) / 2`` in the generators does this.

Everything runs in float32 inside autocast (:func:`~zoo.physics.base.fp32`).

Example:
    >>> import torch
    >>> from zoo.physics.sr import BlurDownsample, gaussian_kernel
    >>> op = BlurDownsample(scale=2, kernel=gaussian_kernel(1.2, size=9))
    >>> op.A(torch.rand(1, 3, 16, 16)).shape
    torch.Size([1, 3, 8, 8])
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zoo.physics.base import LinearPhysics, check_finite, fp32, tracing

__all__ = ["BlurDownsample", "imresize", "bicubic_kernel", "gaussian_kernel", "motion_kernel", "usrnet_kernels",
           "check_kernel", "psf2otf"]


# -- kernels -------------------------------------------------------------------------------------
def _cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic with a = −0.5 (MATLAB's ``imresize`` kernel)."""
    a = np.abs(t)
    a2, a3 = a**2, a**3
    return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))


def bicubic_kernel(scale: int) -> torch.Tensor:
    """The kernel ``k`` for which ``(x ⊛ k)↓s`` equals MATLAB ``imresize(x, 1/s)`` (bicubic, antialiased)
    away from the borders; odd size ``2·(2s + ⌈(s−1)/2⌉) + 1``, separable, sums to 1.

    MATLAB samples LR pixel ``i`` at HR coordinate ``s·i + (s−1)/2`` with weights ``cubic(t/s)/s``;
    in the convolution ``Σ_m k[m] x[s·i − m]`` that is ``k[m] = cubic((m + (s−1)/2)/s)/s``.
    """
    s = int(scale)
    if s < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    off = (s - 1) / 2
    r = int(math.ceil(2 * s + off))
    m = np.arange(-r, r + 1, dtype=np.float64)
    k1 = _cubic((m + off) / s) / s
    k1 /= k1.sum()
    return torch.from_numpy(np.outer(k1, k1)).float()


def gaussian_kernel(sigma1: float, sigma2: float | None = None, theta: float = 0.0, size: int = 25,
                    shift: float = 0.0) -> torch.Tensor:
    """Normalised (an)isotropic Gaussian kernel ``size×size`` (odd): standard deviations ``sigma1``
    along the direction ``theta`` (radians) and ``sigma2`` across it (default isotropic), centred at
    ``(shift, shift)`` pixels from the centre pixel (see the module docstring for the LR grid)."""
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd (its centre pixel is the origin), got {size}")
    s2 = sigma1 if sigma2 is None else sigma2
    if not (sigma1 > 0 and s2 > 0):
        raise ValueError(f"Gaussian widths must be > 0, got {sigma1}, {s2}")
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([sigma1**2, s2**2]) @ rot.T
    inv = np.linalg.inv(cov)
    r = size // 2
    # the kernel value at offset m is the weight of x[i − m]: centring it at +shift puts the LR
    # sample at HR coordinate s·i + shift
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    d = np.stack([xx + shift, yy + shift], -1)
    k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, inv, d))
    return torch.from_numpy(k / k.sum()).float()


def motion_kernel(seed: int, size: int = 25, length: float = 0.6, shift: float = 0.0) -> torch.Tensor:
    """A motion-blur kernel from a seeded random camera trajectory (Boracchi & Foi 2012 style).

    The trajectory is a curve of length ``length·size`` pixels whose heading turns smoothly at random,
    splatted bilinearly on a 4× finer grid, box-filtered back to ``size×size``, centred on its
    centre of mass (+ ``shift``) and normalised to sum 1.
    """
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    rng = np.random.default_rng(seed)
    n, sup = 500, 4
    # heading: a random walk with inertia (smooth turns) and rare jerks; constant speed along the path
    turn = rng.normal(0, 0.04, n) + (rng.random(n) < 0.006) * rng.normal(0, 1.0, n)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(turn)
    x = np.concatenate([[0], np.cumsum(np.exp(1j * heading[1:]) * (length * size / n))])
    x = x - x.mean()
    big = size * sup
    grid = np.zeros((big, big))
    px = x.real * sup + big / 2 - 0.5 - shift * sup
    py = x.imag * sup + big / 2 - 0.5 - shift * sup
    i0, j0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    fb, fa = py - i0, px - j0
    for di, wi in ((0, 1 - fb), (1, fb)):  # bilinear splatting
        for dj, wj in ((0, 1 - fa), (1, fa)):
            ii, jj = i0 + di, j0 + dj
            ok = (ii >= 0) & (ii < big) & (jj >= 0) & (jj < big)
            np.add.at(grid, (ii[ok], jj[ok]), (wi * wj)[ok])
    k = grid.reshape(size, sup, size, sup).sum((1, 3))
    return torch.from_numpy(k / k.sum()).float()


def usrnet_kernels(scale: int, size: int = 25) -> list[tuple[str, torch.Tensor]]:
    """The 12 kernels of the USRNet protocol, generated as USRNet describes them (not its ``.mat``):
    4 isotropic Gaussians (σ 0.7, 1.2, 1.6, 2.0), 4 anisotropic Gaussians ([ours]: σ (2.0, 0.7) at
    0° and 45°, (2.5, 1.0) at 90° and 135°) and 4 motion kernels (seeds 1–4), on the LR grid of
    ``scale`` (``shift = (s−1)/2``)."""
    sh = (scale - 1) / 2
    ks = [(f"iso{s:.1f}", gaussian_kernel(s, size=size, shift=sh)) for s in (0.7, 1.2, 1.6, 2.0)]
    for s1, s2, deg in ((2.0, 0.7, 0), (2.0, 0.7, 45), (2.5, 1.0, 90), (2.5, 1.0, 135)):
        ks.append((f"aniso{s1:.1f}x{s2:.1f}@{deg}", gaussian_kernel(s1, s2, math.radians(deg), size=size, shift=sh)))
    ks += [(f"motion{i}", motion_kernel(i, size=size, shift=sh)) for i in range(1, 5)]
    return ks


def check_kernel(kernel: torch.Tensor, hr_size: Sequence[int] | None = None) -> torch.Tensor:
    """A blur kernel as ``(N or 1, 1, kh, kw)``: odd sizes, finite, non-negative sum; refused with the fix."""
    if not torch.is_tensor(kernel):
        raise TypeError(f"kernel must be a tensor (kh, kw), got {type(kernel).__name__}")
    k = kernel
    if k.ndim == 2:
        k = k[None, None]
    elif k.ndim == 3:
        k = k[:, None]
    if k.ndim != 4 or k.shape[1] != 1:
        raise ValueError(f"kernel must be (kh, kw), (N, kh, kw) or (N, 1, kh, kw), got {tuple(kernel.shape)}")
    kh, kw = k.shape[-2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel is {kh}×{kw}: its sizes must be odd (the centre pixel is the origin); "
                         "pad it with one row/column of zeros on the side that keeps its centre, "
                         "e.g. torch.nn.functional.pad(k, (0, 1, 0, 1)) and shift by half a pixel if needed")
    check_finite(k, "kernel")
    if hr_size is not None and (kh > hr_size[0] or kw > hr_size[1]):
        raise ValueError(f"kernel {kh}×{kw} is larger than the {hr_size[0]}×{hr_size[1]} high-resolution image: "
                         "use a larger image or crop the kernel")
    if not tracing() and (k.flatten(1).sum(1) <= 0).any():
        raise ValueError("kernel must have a positive sum (a blur kernel sums to 1)")
    return k


def psf2otf(k: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """FFT of the ``(N, 1, kh, kw)`` kernel zero-padded to ``shape`` with its centre pixel at (0, 0)."""
    kh, kw = k.shape[-2:]
    pad = torch.zeros(*k.shape[:-2], int(shape[0]), int(shape[1]), dtype=k.dtype, device=k.device)
    pad[..., :kh, :kw] = k
    pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.fft2(pad)


# -- MATLAB imresize ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The ``n_out × n_in`` matrix of MATLAB ``imresize`` (bicubic) along one axis, symmetric borders."""
    width = 4.0
    if scale < 1 and antialias:
        kernel = lambda t: scale * _cubic(scale * t)  # noqa: E731
        width = width / scale
    else:
        kernel = _cubic
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    j = mirror[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), p), j.ravel()), w.ravel())
    return m


def imresize(x: torch.Tensor, scale: float | None = None, size: Sequence[int] | None = None) -> torch.Tensor:
    """MATLAB-compatible bicubic ``imresize`` of ``(..., H, W)`` by ``scale`` (or to ``size``), antialiased
    when shrinking, symmetric borders; no rounding (the caller quantises to 8 bits if it wants MATLAB's uint8)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])  # plain ints: the weights are built in NumPy (also while tracing)
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (int(math.ceil(h * scale)), int(math.ceil(w * scale)))
        sh = sw = float(scale)
    else:
        size = (int(size[0]), int(size[1]))
        sh, sw = size[0] / h, size[1] / w
    mh = torch.from_numpy(_resize_matrix(h, int(size[0]), sh)).to(x.device)
    mw = torch.from_numpy(_resize_matrix(w, int(size[1]), sw)).to(x.device)
    dt = x.dtype if x.dtype == torch.float64 else torch.float32
    return (mh.to(dt) @ x.to(dt) @ mw.to(dt).T).to(x.dtype if x.is_floating_point() else dt)


# -- the operator ----------------------------------------------------------------------------------------
class BlurDownsample(LinearPhysics):
    """``A x = (x ⊛ k)↓s``, circular; the kernel is a buffer (the default) or passed per call (``kernel=``).

    Args:
        scale: the integer factor ``s``.
        kernel: default kernel ``(kh, kw)`` (odd sizes); default :func:`bicubic_kernel` (``scale``).
    """

    def __init__(self, scale: int = 4, kernel: torch.Tensor | None = None) -> None:
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be an integer >= 1, got {scale}")
        self.scale = int(scale)
        k = bicubic_kernel(self.scale) if kernel is None else kernel
        # derived from the scale (not a weight): kept out of state dicts, so one network loads at every scale
        self.register_buffer("kernel", check_kernel(k)[0, 0].clone().float(), persistent=False)

    def _k(self, kernel: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        k = check_kernel(self.kernel if kernel is None else kernel, tuple(like.shape[-2:]))
        return k.to(like.device, like.dtype)

    def _scale(self, scale: int | None) -> int:
        return self.scale if scale is None else int(scale)

    def y_shape(self, x_shape: Sequence[int]) -> tuple[int, ...]:
        s = self.scale
        return (*x_shape[:-2], x_shape[-2] // s, x_shape[-1] // s)

    @fp32
    def A(self, x: torch.Tensor, kernel: torch.Tensor | None = None, scale: int | None = None) -> torch.Tensor:  # noqa: N802
        s = self._scale(scale)
        h, w = x.shape[-2:]
        if h % s or w % s:
            raise ValueError(f"the high-resolution size {h}×{w} must be a multiple of the scale {s}: "
                             f"crop it to {h // s * s}×{w // s * s} (the SR protocol's modcrop)")
        fk = psf2otf(self._k(kernel, x), (h, w))
        blurred = torch.fft.ifft2(torch.fft.fft2(x) * fk).real
        return blurred[..., ::s, ::s]

    @fp32
    def A_adjoint(self, y: torch.Tensor, kernel: torch.Tensor | None = None, scale: int | None = None,  # noqa: N802
                  img_size: Sequence[int] | None = None, **_: Any) -> torch.Tensor:
        s = self._scale(scale)
        h, w = y.shape[-2] * s, y.shape[-1] * s
        up = torch.zeros(*y.shape[:-2], h, w, dtype=y.dtype, device=y.device)
        up[..., ::s, ::s] = y
        fk = psf2otf(self._k(kernel, up), (h, w))
        return torch.fft.ifft2(torch.fft.fft2(up) * fk.conj()).real

    @fp32
    def A_dagger(self, y: torch.Tensor, scale: int | None = None, **_: Any) -> torch.Tensor:  # noqa: N802
        """Bicubic (MATLAB) upsampling: aligned with the HR grid of kernels placed as in the module docstring."""
        s = self._scale(scale)
        return imresize(y, size=(y.shape[-2] * s, y.shape[-1] * s))

    def gradient(self, x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor | None = None,  # type: ignore[override]
                 scale: int | None = None) -> torch.Tensor:
        return self.A_adjoint(self.A(x, kernel, scale) - y, kernel, scale)

    @fp32
    def data_step(self, z: torch.Tensor, y: torch.Tensor, alpha: torch.Tensor | float,
                  kernel: torch.Tensor | None = None, scale: int | None = None) -> torch.Tensor:
        """``argmin_x ‖(x ⊛ k)↓s − y‖² + α‖x − z‖²`` in closed form (module docstring); ``α`` a float or
        a ``(N,)``/``(N, 1, 1, 1)`` tensor."""
        s = self._scale(scale)
        n, c, h, w = z.shape
        if y.shape[-2] * s != h or y.shape[-1] * s != w:
            raise ValueError(f"z is {h}×{w} but y is {tuple(y.shape[-2:])} at scale {s}: z must be s× y")
        fk = psf2otf(self._k(kernel, z), (h, w))  # (N|1, 1, h, w)
        a = torch.as_tensor(alpha, dtype=z.dtype, device=z.device).reshape(-1, 1, 1, 1)
        up = torch.zeros_like(z)
        up[..., ::s, ::s] = y
        r = fk.conj() * torch.fft.fft2(up) + a * torch.fft.fft2(z)
        hs, ws = h // s, w // s

        def alias_mean(t: torch.Tensor) -> torch.Tensor:
            # the s·s spectral copies that decimation folds onto each low-resolution frequency
            return t.reshape(*t.shape[:-2], s, hs, s, ws).mean(dim=(-4, -2))

        fbr = alias_mean(fk * r)
        wgt = alias_mean(fk.abs() ** 2)
        q = (fbr / (wgt + a)).repeat(1, 1, s, s)
        x = (r - fk.conj() * q) / a
        return torch.fft.ifft2(x).real
