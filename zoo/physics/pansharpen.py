"""Pansharpening physics: sensor-MTF blur + decimation (MS) and a spectral sum (PAN).

For a high-resolution multispectral image ``x`` (N, C, H, W) and resolution ratio ``r``::

    y_ms  = S_r(k_MTF ∗ x)          (N, C, h, w),  h = ⌈(H − o)/r⌉, sampling rows o, o+r, ...
    y_pan = Σ_b w_b x_b             (N, 1, H, W)

``k_MTF`` is, per band, the Gaussian whose frequency response equals the sensor's MTF gain ``G_b``
at the MS Nyquist frequency ``1/(2r)`` cycles/pixel (Wald's protocol, the toolbox's ``MTF.m``
design without its weak Kaiser window): ``σ_b = r·√(−2 ln G_b)/π``, ``kernel_size`` taps,
replicate border (as ``imfilter(…, 'replicate')``). ``S_r`` keeps every ``r``-th pixel from
offset ``o = r//2`` (MATLAB ``imresize(…, 1/r, 'nearest')``). The adjoint is exact (the adjoint of
the replicate padding folds the margins back onto the edge pixels).

``A`` returns ``{"ms": y_ms, "pan": y_pan}``; ``A_adjoint`` takes that dict. ``A_dagger`` is the
23-tap polynomial interpolation of the MS image (``interp23tap``, the standard "EXP" baseline).
:func:`wald_reduce` builds reduced-resolution training pairs from full-resolution MS/PAN.

Example:
    >>> import torch
    >>> from zoo.physics.pansharpen import Pansharpening
    >>> op = Pansharpening("WV3")
    >>> y = op.A(torch.rand(1, 8, 64, 64))
    >>> tuple(y["ms"].shape), tuple(y["pan"].shape)
    ((1, 8, 16, 16), (1, 1, 64, 64))
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from zoo.physics.base import LinearPhysics, check_finite, fp32, tracing

__all__ = ["SENSORS", "Pansharpening", "mtf_sigma", "gaussian_kernel1d", "interp23tap", "wald_reduce", "sensor_gains", "random_band_mask", "fill_missing", "per_pixel"]

# MTF gains at Nyquist: (MS bands, PAN). Vivone et al.'s toolbox (MTF.m / MTF_PAN.m) values.
SENSORS: dict[str, tuple[tuple[float, ...], float]] = {
    "QB": ((0.34, 0.32, 0.30, 0.22), 0.15),
    "IKONOS": ((0.26, 0.28, 0.29, 0.28), 0.17),
    "GeoEye1": ((0.23, 0.23, 0.23, 0.23), 0.16),
    "WV2": ((0.35,) * 7 + (0.27,), 0.11),
    "WV3": ((0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315), 0.14),
    # [ours] no Pléiades entry in the toolbox: its generic ("none") gains
    "Pleiades": ((0.29, 0.29, 0.29, 0.29), 0.15),
}
_ALIASES = {"GE1": "GeoEye1", "GEOEYE1": "GeoEye1", "WV-2": "WV2", "WV-3": "WV3", "PLEIADES": "Pleiades",
            "PL": "Pleiades", "QUICKBIRD": "QB", "IKONOS": "IKONOS"}


def sensor_gains(sensor: str) -> tuple[tuple[float, ...], float]:
    """``(MS gains, PAN gain)`` of a sensor name (``WV3``, ``WV2``, ``QB``, ``GeoEye1``, …)."""
    key = sensor if sensor in SENSORS else _ALIASES.get(sensor.upper().replace(" ", ""), sensor)
    if key not in SENSORS:
        raise ValueError(f"unknown sensor {sensor!r}; known: {sorted(SENSORS)} (or pass gains=[...] explicitly)")
    return SENSORS[key]


def mtf_sigma(gain: float, ratio: int) -> float:
    """Std (HR pixels) of the Gaussian with response ``gain`` at frequency ``1/(2·ratio)``."""
    if not 0 < gain < 1:
        raise ValueError(f"MTF gain must be in (0, 1), got {gain}")
    return ratio * math.sqrt(-2 * math.log(gain)) / math.pi


def gaussian_kernel1d(sigma: Any, size: int) -> torch.Tensor:
    """Normalised Gaussian taps, ``sigma`` a tensor of any shape → (*sigma.shape, size)."""
    sigma = torch.as_tensor(sigma)
    t = torch.arange(size, dtype=sigma.dtype if sigma.is_floating_point() else torch.float32, device=sigma.device) - (size - 1) / 2
    k = torch.exp(-0.5 * (t / sigma[..., None]) ** 2)
    return k / k.sum(-1, keepdim=True)


# -- separable filtering with exact adjoints ----------------------------------------------------------


def _conv1d(x: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid correlation of (N, C, H, W) with per-(N, C) taps ``k`` (N, C, K) along dim -1 or -2."""
    n, c, h, w = x.shape
    kk = k.shape[-1]
    xr = x.reshape(1, n * c, h, w)
    weight = k.reshape(n * c, 1, 1, kk) if dim == -1 else k.reshape(n * c, 1, kk, 1)
    y = F.conv2d(xr, weight.to(x.dtype), groups=n * c)
    return y.reshape(n, c, *y.shape[-2:])


def _pad(x: torch.Tensor, p: int, dim: int, mode: str) -> torch.Tensor:
    pads = (p, p, 0, 0) if dim == -1 else (0, 0, p, p)
    return F.pad(x, pads, mode=mode) if mode != "zeros" else F.pad(x, pads)


def _pad_replicate_adjoint(z: torch.Tensor, p: int, dim: int) -> torch.Tensor:
    z = z.movedim(dim, -1)
    n = z.shape[-1] - 2 * p
    out = z[..., p : p + n].clone()
    out[..., 0] += z[..., :p].sum(-1)
    out[..., -1] += z[..., p + n :].sum(-1)
    return out.movedim(-1, dim)


def blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable symmetric blur with replicate borders; ``k`` (N, C, K) odd taps."""
    p = k.shape[-1] // 2
    x = _conv1d(_pad(x, p, -1, "replicate"), k, -1)
    return _conv1d(_pad(x, p, -2, "replicate"), k, -2)


def blur_adjoint(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Exact adjoint of :func:`blur` (symmetric taps: full correlation, then fold the margins)."""
    p = k.shape[-1] // 2
    y = _pad_replicate_adjoint(_conv1d(_pad(y, 2 * p, -2, "zeros"), k, -2), p, -2)
    return _pad_replicate_adjoint(_conv1d(_pad(y, 2 * p, -1, "zeros"), k, -1), p, -1)


def _conv1d_strided(x: torch.Tensor, k: torch.Tensor, dim: int, stride: int) -> torch.Tensor:
    """:func:`_conv1d` evaluated only at every ``stride``-th output (from the first)."""
    n, c, h, w = x.shape
    kk = k.shape[-1]
    weight = k.reshape(n * c, 1, 1, kk) if dim == -1 else k.reshape(n * c, 1, kk, 1)
    st = (1, stride) if dim == -1 else (stride, 1)
    y = F.conv2d(x.reshape(1, n * c, h, w), weight.to(x.dtype), stride=st, groups=n * c)
    return y.reshape(n, c, *y.shape[-2:])


def _conv1d_strided_adjoint(y: torch.Tensor, k: torch.Tensor, dim: int, stride: int, length: int) -> torch.Tensor:
    """Adjoint of :func:`_conv1d_strided` for an input of ``length`` samples along ``dim``."""
    n, c, h, w = y.shape
    kk = k.shape[-1]
    weight = k.reshape(n * c, 1, 1, kk) if dim == -1 else k.reshape(n * c, 1, kk, 1)
    st = (1, stride) if dim == -1 else (stride, 1)
    z = F.conv_transpose2d(y.reshape(1, n * c, h, w), weight.to(y.dtype), stride=st, groups=n * c)
    z = z.reshape(n, c, *z.shape[-2:])
    short = length - z.shape[dim]  # trailing inputs no kept output reached
    return _pad_end(z, short, dim)


def _pad_end(z: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    return F.pad(z, (0, n) if dim == -1 else (0, 0, 0, n)) if n > 0 else z


def blur_decimate(x: torch.Tensor, k: torch.Tensor, ratio: int, offset: int) -> torch.Tensor:
    """``blur(x, k)[..., offset::ratio, offset::ratio]`` computed at the kept pixels only (strided
    convolutions: exact, and ~ratio² fewer multiply-adds than blurring every pixel)."""
    p = k.shape[-1] // 2
    x = _conv1d_strided(_pad(x, p, -1, "replicate")[..., offset:], k, -1, ratio)
    return _conv1d_strided(_pad(x, p, -2, "replicate")[..., offset:, :], k, -2, ratio)


def blur_decimate_adjoint(y: torch.Tensor, k: torch.Tensor, ratio: int, offset: int,
                          size: tuple[int, int]) -> torch.Tensor:
    """Exact adjoint of :func:`blur_decimate` onto an ``size`` = (H, W) image."""
    p = k.shape[-1] // 2
    h, w = size
    z = _conv1d_strided_adjoint(y, k, -2, ratio, h + 2 * p - offset)
    z = _pad_replicate_adjoint(F.pad(z, (0, 0, offset, 0)), p, -2)
    z = _conv1d_strided_adjoint(z, k, -1, ratio, w + 2 * p - offset)
    return _pad_replicate_adjoint(F.pad(z, (offset, 0)), p, -1)


_CDF23 = [0.5, 0.305334091185, 0, -0.072698593239, 0, 0.021809577942, 0, -0.005192756653, 0, 0.000807762146, 0,
          -0.000060081482]


# smallest MS side the 23-tap filter's circular padding (11 taps each side of the ×2 grid) accepts
INTERP_MIN = 6


def interp23tap(ms: torch.Tensor, ratio: int) -> torch.Tensor:
    """The toolbox's ``interp23tap``: ×2 steps of zero insertion + the 23-tap symmetric filter
    (circular borders). The first step puts samples at odd positions, later ones at even positions,
    so LR pixel ``i`` lands on HR pixel ``r·i + r/2`` — the decimation offset of :class:`Pansharpening`.
    """
    if ratio < 1 or 2 ** round(math.log2(ratio)) != ratio:
        raise ValueError(f"interp23tap needs a power-of-two ratio, got {ratio}")
    if min(ms.shape[-2:]) < INTERP_MIN:
        raise ValueError(f"the MS image is {tuple(ms.shape[-2:])} pixels: the 23-tap interpolation (circular borders) "
                         f"needs at least {INTERP_MIN}x{INTERP_MIN}; pass a larger image")
    half = torch.tensor([2 * c for c in _CDF23], dtype=ms.dtype, device=ms.device)
    taps = torch.cat([half.flip(0), half[1:]])  # 23 taps
    n, c = ms.shape[:2]
    k = taps.expand(n, c, -1)
    x = ms
    for step in range(int(round(math.log2(ratio)))):
        h, w = x.shape[-2:]
        up = x.new_zeros(n, c, 2 * h, 2 * w)
        o = 1 if step == 0 else 0
        up[..., o::2, o::2] = x
        up = _conv1d(_pad(up, 11, -1, "circular"), k, -1)
        x = _conv1d(_pad(up, 11, -2, "circular"), k, -2)
    return x


class Pansharpening(LinearPhysics):
    """Two-output operator ``x ↦ {ms: S(k ∗ x), pan: Σ_b w_b x_b}`` (module docstring).

    Args:
        sensor: a key of :data:`SENSORS` (sets the band count and MTF gains), or ``None`` with ``gains``.
        ratio: resolution ratio r (4 for the usual sensors).
        gains: per-band MTF gains (overrides the sensor's).
        pan_weights: spectral weights ``w`` of the PAN (default uniform ``1/C``); per-sample weights
            can also be passed to :meth:`A` / :meth:`A_adjoint`.
        kernel_size: MTF filter taps (41 as in the toolbox).
        offset: decimation phase (default ``r // 2``).
    """

    @property
    def tile_multiple(self) -> int:
        return self.ratio

    def __init__(
        self,
        sensor: str | None = "WV3",
        ratio: int = 4,
        gains: Sequence[float] | None = None,
        pan_weights: Sequence[float] | torch.Tensor | None = None,
        kernel_size: int = 41,
        offset: int | None = None,
    ) -> None:
        super().__init__()
        if gains is None:
            if sensor is None:
                raise ValueError("give a sensor name or the per-band MTF gains")
            gains = sensor_gains(sensor)[0]
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.sensor, self.ratio, self.kernel_size = sensor, int(ratio), int(kernel_size)
        self.offset = self.ratio // 2 if offset is None else int(offset)
        if not 0 <= self.offset < self.ratio:
            raise ValueError(f"offset must be in [0, ratio), got {self.offset}")
        self.bands = len(gains)
        self.register_buffer("sigmas", torch.tensor([mtf_sigma(g, self.ratio) for g in gains], dtype=torch.float32))
        w = torch.full((self.bands,), 1.0 / self.bands) if pan_weights is None else torch.as_tensor(pan_weights, dtype=torch.float32)
        if w.shape != (self.bands,):
            raise ValueError(f"pan_weights must have {self.bands} entries (one per band), got {tuple(w.shape)}")
        self.register_buffer("pan_weights", w.clone())

    # -- shapes and checks -------------------------------------------------------------------------
    def lr_size(self, h: int, w: int) -> tuple[int, int]:
        o, r = self.offset, self.ratio
        return (len(range(o, h, r)), len(range(o, w, r)))

    def y_shapes(self, x_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        n, c, h, w = x_shape
        return {"ms": (n, c, *self.lr_size(h, w)), "pan": (n, 1, h, w)}

    def _check_x(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.bands:
            raise ValueError(
                f"expected a (N, {self.bands}, H, W) image for {self.sensor or 'this sensor'} ({self.bands} bands), "
                f"got {tuple(x.shape)}; build the operator for the right sensor/band count."
            )
        check_finite(x, "image")

    def check_inputs(self, ms: torch.Tensor, pan: torch.Tensor, nonneg: bool = True) -> torch.Tensor:
        """Validate an (MS, PAN) pair; returns PAN as (N, 1, H, W). Errors say what to fix."""
        if ms.ndim != 4:
            raise ValueError(f"MS must be (N, C, h, w), got {tuple(ms.shape)}")
        if ms.shape[1] != self.bands:
            raise ValueError(
                f"MS has {ms.shape[1]} bands but the {self.sensor or 'configured'} sensor has {self.bands}; "
                f"use a model/operator built for a {ms.shape[1]}-band sensor (e.g. sensor='WV3' for 8, 'QB'/'GeoEye1' for 4)."
            )
        if pan.ndim == 3:
            pan = pan[:, None]
        if pan.ndim != 4 or pan.shape[1] != 1 or pan.shape[0] != ms.shape[0]:
            raise ValueError(f"PAN must be (N, 1, H, W) with N = {ms.shape[0]}, got {tuple(pan.shape)}")
        if self.lr_size(*pan.shape[-2:]) != tuple(ms.shape[-2:]):
            raise ValueError(
                f"PAN {tuple(pan.shape[-2:])} and MS {tuple(ms.shape[-2:])} do not match the ratio {self.ratio}: "
                f"expected MS {self.lr_size(*pan.shape[-2:])} for this PAN (PAN = {self.ratio} × MS); "
                "check the ratio or crop both images consistently."
            )
        check_finite(ms, "MS image")
        check_finite(pan, "PAN image")
        if nonneg and not tracing():
            for t, what in ((ms, "MS"), (pan, "PAN")):
                if (t < 0).any():
                    raise ValueError(
                        f"{what} image has negative values (min {float(t.min()):.4g}): radiances are non-negative; "
                        "pass data scaled to [0, 1] (e.g. 11-bit DN / 2047) without offsets."
                    )
        return pan

    # -- pieces ----------------------------------------------------------------------------------------
    def kernels(self, n: int, sigmas: torch.Tensor | None = None, like: torch.Tensor | None = None) -> torch.Tensor:
        s = self.sigmas if sigmas is None else sigmas
        if like is not None:
            s = s.to(like)
        s = s.expand(n, self.bands) if s.ndim == 1 else s
        return gaussian_kernel1d(s, self.kernel_size)

    def _weights(self, n: int, weights: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        w = self.pan_weights if weights is None else weights
        w = w.to(like)
        return (w.expand(n, self.bands) if w.ndim == 1 else w)[..., None, None]

    def decimate(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.offset :: self.ratio, self.offset :: self.ratio]

    def decimate_adjoint(self, y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = y.new_zeros(*y.shape[:2], *size)
        out[..., self.offset :: self.ratio, self.offset :: self.ratio] = y
        return out

    # -- operator ------------------------------------------------------------------------------------
    @fp32
    def A_ms(self, x: torch.Tensor, sigmas: torch.Tensor | None = None) -> torch.Tensor:  # noqa: N802
        return blur_decimate(x, self.kernels(x.shape[0], sigmas, x), self.ratio, self.offset)

    @fp32
    def A_pan(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:  # noqa: N802
        return (x * self._weights(x.shape[0], weights, x)).sum(1, keepdim=True)

    @fp32
    def A(self, x: torch.Tensor, weights: torch.Tensor | None = None, sigmas: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # noqa: N802
        self._check_x(x)
        return {"ms": self.A_ms(x, sigmas), "pan": self.A_pan(x, weights)}

    @fp32
    def A_adjoint(self, y: dict[str, torch.Tensor], img_size: Sequence[int] | None = None,  # noqa: N802
                  weights: torch.Tensor | None = None, sigmas: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(y, dict) or not {"ms", "pan"} <= set(y):
            raise ValueError("A_adjoint takes the dict {'ms': ..., 'pan': ...} returned by A")
        ms, pan = y["ms"], y["pan"]
        size = tuple(int(s) for s in (img_size if img_size is not None else pan.shape[-2:]))
        n = ms.shape[0]
        x = blur_decimate_adjoint(ms, self.kernels(n, sigmas, ms), self.ratio, self.offset, size)
        return x + pan * self._weights(n, weights, pan)

    def gradient(self, x: torch.Tensor, y: dict[str, torch.Tensor], weights: torch.Tensor | None = None,
                 sigmas: torch.Tensor | None = None, lam_ms: Any = 1.0, lam_pan: Any = 1.0) -> torch.Tensor:
        """∇ of ``λ_ms/2 ‖A_ms x − y_ms‖² + λ_pan/2 ‖A_pan x − y_pan‖²``."""
        ax = self.A(x, weights=weights, sigmas=sigmas)
        r = {"ms": lam_ms * (ax["ms"] - y["ms"]), "pan": lam_pan * (ax["pan"] - y["pan"])}
        return self.A_adjoint(r, img_size=x.shape[-2:], weights=weights, sigmas=sigmas)

    @fp32
    def A_dagger(self, y: dict[str, torch.Tensor], img_size: Sequence[int] | None = None, **kw: Any) -> torch.Tensor:  # noqa: N802
        """23-tap interpolation of the MS image to the PAN grid (the EXP baseline)."""
        ms, pan = y["ms"], y["pan"]
        size = tuple(int(s) for s in (img_size if img_size is not None else pan.shape[-2:]))
        up = interp23tap(ms, self.ratio) if 2 ** round(math.log2(self.ratio)) == self.ratio else \
            F.interpolate(ms, scale_factor=self.ratio, mode="bicubic", align_corners=False)
        return up[..., : size[0], : size[1]] if up.shape[-2] >= size[0] and up.shape[-1] >= size[1] else \
            F.pad(up, (0, max(0, size[1] - up.shape[-1]), 0, max(0, size[0] - up.shape[-2])), mode="replicate")[..., : size[0], : size[1]]

    def extra_repr(self) -> str:
        return f"sensor={self.sensor}, bands={self.bands}, ratio={self.ratio}, kernel_size={self.kernel_size}, offset={self.offset}"


@torch.no_grad()
def wald_reduce(ms: torch.Tensor, pan: torch.Tensor, sensor: str | None = None, ratio: int = 4,
                gains: Sequence[float] | None = None, pan_gain: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Wald's protocol: reduce a full-resolution pair by ``ratio`` (MTF blur + decimation of both).

    ``ms`` (N, C, h, w) and ``pan`` (N, 1, r·h, r·w) at full resolution → ``(ms_lr, pan_lr)`` of
    shapes (N, C, h/r, w/r) and (N, 1, h, w); the original ``ms`` is then the reference.
    """
    if gains is None or pan_gain is None:
        g, gp = sensor_gains(sensor or "")
        gains = gains if gains is not None else g
        pan_gain = pan_gain if pan_gain is not None else gp
    op_ms = Pansharpening(None, ratio, gains=gains)
    op_pan = Pansharpening(None, ratio, gains=[pan_gain])
    op_ms.check_inputs(ms, pan)
    return op_ms.A_ms(ms.float()), op_pan.A_ms(pan.float())


def random_band_mask(n: int, c: int, frac: float, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, C) availability mask with ``round(frac·C)`` random bands dropped per image (≥ 1 kept)."""
    drop = min(c - 1, int(round(frac * c)))
    m = torch.ones(n, c)
    for i in range(n):
        idx = torch.randperm(c, generator=generator)[:drop]
        m[i, idx] = 0
    return m.to(device)


def fill_missing(ms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill masked MS samples with the per-pixel mean of the available bands (image mean where none)."""
    m = per_pixel(mask, ms)
    cnt = m.sum(1, keepdim=True)
    pix = (ms * m).sum(1, keepdim=True) / cnt.clamp_min(1)
    glob = (ms * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
    pix = torch.where(cnt > 0, pix, glob[:, None, None, None].expand_as(pix))
    return torch.where(m > 0, ms, pix.expand_as(ms))


def per_pixel(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """An (N, C) per-band or (N, C, h, w) per-pixel availability mask as an (N, C, h, w) tensor like ``like``."""
    return mask[..., None, None].expand_as(like) if mask.ndim == 2 else mask.expand_as(like)
