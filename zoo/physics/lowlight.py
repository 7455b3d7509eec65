"""Low-light physics: the Retinex model, input checks, and the synthetic low-light degradation.

The measurement is the low-light sRGB image itself (``A = Aᵀ = I``); what makes it dark is the
illumination of the Retinex model ``I = R ⊙ L`` (reflectance R, illumination L ≥ 0), which the
LLEMamba network solves for.

Synthetic degradation (:class:`LowLightDegradation`; no real paired set is at hand; in the spirit
of LOL-v2-synthetic), per image, from a normal-light sRGB image ``x`` in [0, 1]::

    lin   = srgb⁻¹(x)                               linearise (IEC 61966-2-1 sRGB curve)
    lin   = e · g_c · lin                           exposure e ~ logU(0.03, 0.3); colour cast g_c ~ U(1 ± 0.1)
    lin   = Poisson(Q · lin) / Q + N(0, σ_r²)       shot noise (Q ~ logU(1e3, 1e4) photo-electrons per unit
                                                    of full scale) + read noise σ_r ~ U(5e-4, 3e-3)
    low   = round(255 · srgb(clip(lin, 0, 1))) / 255   camera gamma (the sRGB curve) + 8-bit quantisation

Light sources (``lamps > 0``, training only; :meth:`LowLightDegradation.pair`): with probability
``lamps`` an image gets 1–4 lamps, a Gaussian core plus a faint wide halo (glare) of warm-white to
sodium colour, added to the scene radiance with a peak of ``logU(1, 8)`` times full scale *in the
low frame*, so they clip there as street lights and windows do in real night photos. The target is
the same scene at exposure 1 (``srgb(clip(srgb⁻¹(x) + lamps / e))``): the lamps saturate. Without
them every bright pixel of a synthetic low image is a scene white scaled by the exposure, and a
network that reads the brightest quantiles for the gain stops brightening real night photos.

No learning and no file I/O here; the readers are in :mod:`zoo.data.lowlight`.

Example:
    >>> import torch
    >>> from zoo.physics.lowlight import LowLightDegradation
    >>> deg = LowLightDegradation()
    >>> x = torch.rand(2, 3, 16, 16)
    >>> low = deg(x, generator=torch.Generator().manual_seed(0))
    >>> tuple(low.shape), bool(low.mean() < x.mean())
    ((2, 3, 16, 16), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from zoo.physics.base import LinearPhysics, check_finite, fp32, tracing

__all__ = ["LowLight", "LowLightDegradation", "srgb_to_linear", "linear_to_srgb", "check_lowlight", "global_stats",
           "N_MOMENTS", "N_STATS",
           "STATS_QUANTILES", "lamp_radiance"]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The sRGB decoding curve (IEC 61966-2-1)."""
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """The sRGB encoding curve (IEC 61966-2-1)."""
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


STATS_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
N_MOMENTS = 5  # the leading statistics: mean, std, 3 colour log-ratios
N_STATS = N_MOMENTS + len(STATS_QUANTILES)
_STATS_EPS = 1.0 / 255
_STATS_MAX_PIXELS = 1 << 20  # quantiles of a strided subsample beyond this (torch.quantile's input is bounded)


def global_stats(low: torch.Tensor) -> torch.Tensor:
    """Global statistics of low-light images (N, 3, H, W) → (N, N_STATS), what LLEMamba's relighting
    reads to set the exposure and colour of the whole image.

    With ``ℓ = log max_c I`` (floored at 1/255): mean and standard deviation of ``ℓ``, the log-ratios of
    the R, G, B means to their average, then the quantiles :data:`STATS_QUANTILES` of ``ℓ`` minus its
    mean (the shape of the brightness histogram, as camera auto-exposure reads it). On training images
    the quantiles cut the residual of a linear fit of the ideal log-gain from 0.21 to 0.13 (std, 873
    degraded BSD200/T91 images; the count of distinct 8-bit levels would cut it to 0.10 but is an
    artefact of the simulated quantisation, so it is not used).
    """
    low = low.float()
    logl = torch.log(low.amax(1).clamp_min(_STATS_EPS)).flatten(1)
    m = low.flatten(2).mean(-1).clamp_min(_STATS_EPS)  # (N, 3)
    mean = logl.mean(1, keepdim=True)
    sub = logl[:, :: max(1, -(-logl.shape[1] // _STATS_MAX_PIXELS))]
    qs = torch.quantile(sub, torch.tensor(STATS_QUANTILES, dtype=sub.dtype, device=sub.device), dim=1).T - mean
    return torch.cat([mean, logl.std(1, keepdim=True, unbiased=False), torch.log(m / m.mean(1, keepdim=True)), qs], 1)


def check_lowlight(x: torch.Tensor, what: str = "low-light image", channels: int = 3) -> None:
    """Refuse what the network cannot enhance, with an error that says what to do: not (N, 3, H, W),
    an empty image, integer data, NaN/Inf, or values outside [0, 1]."""
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != channels:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{what} must be an (N, {channels}, H, W) RGB tensor, got {shape}: convert grey or RGBA "
                         "images to RGB first")
    if x.numel() == 0:
        raise ValueError(f"{what} is empty (shape {tuple(x.shape)})")
    check_finite(x, what)
    if tracing():
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{what} has values in [{lo:.4g}, {hi:.4g}]: pass sRGB values in [0, 1] "
                         "(divide 8-bit data by 255, 16-bit data by 65535)")


class LowLight(LinearPhysics):
    """The low-light measurement: the identity on sRGB images, with the input checks of the task."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = int(channels)

    @fp32
    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        check_lowlight(x, "image", self.channels)
        return x

    @fp32
    def A_adjoint(self, y: torch.Tensor, img_size: Sequence[int] | None = None, **kw: Any) -> torch.Tensor:  # noqa: N802
        check_lowlight(y, "image", self.channels)
        return y

    def y_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(x_shape)

    def check_inputs(self, low: torch.Tensor) -> None:
        check_lowlight(low, "low-light image", self.channels)


@dataclass(frozen=True)
class LowLightDegradation:
    """Normal-light sRGB → synthetic low-light sRGB (module docstring); ranges are per image."""

    exposure: tuple[float, float] = (0.03, 0.3)
    cast: float = 0.1
    photons: tuple[float, float] = (1e3, 1e4)
    read_noise: tuple[float, float] = (5e-4, 3e-3)
    bits: int = 8
    lamps: float = 0.0

    def describe(self) -> str:
        lamps = f"; light sources in {self.lamps:.0%} of images" if self.lamps else ""
        return (f"sRGB→linear; exposure logU{self.exposure}; colour cast U(1±{self.cast}) per channel; "
                f"Poisson shot noise, Q logU{self.photons} e-/full scale, + Gaussian read noise U{self.read_noise}; "
                f"clip; linear→sRGB; {self.bits}-bit quantisation{lamps}")

    def sample_params(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-image parameters: ``exposure`` (n,), ``cast`` (n, 3), ``photons`` (n,), ``read`` (n,)."""
        u = torch.rand(n, 6, generator=generator)

        def logu(r, t):
            return torch.exp(math.log(r[0]) + t * (math.log(r[1]) - math.log(r[0])))

        return {"exposure": logu(self.exposure, u[:, 0]), "cast": 1 + self.cast * (2 * u[:, 1:4] - 1),
                "photons": logu(self.photons, u[:, 4]),
                "read": self.read_noise[0] + u[:, 5] * (self.read_noise[1] - self.read_noise[0])}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Degrade normal-light images ``x`` (N, 3, H, W) in [0, 1]; CPU random numbers (reproducible by seed).
        No light sources here whatever ``lamps`` says (they change the target too: :meth:`pair`)."""
        check_lowlight(x, "normal-light image", x.shape[1] if x.ndim == 4 else 3)
        p = params or self.sample_params(x.shape[0], generator)
        return self._expose(srgb_to_linear(x.float()), p, generator)

    @torch.no_grad()
    def pair(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, target)`` of normal-light images ``x``: with light sources (``lamps``, module docstring)
        added to the scene of a random subset, otherwise ``(self(x), x)``."""
        check_lowlight(x, "normal-light image", x.shape[1] if x.ndim == 4 else 3)
        n = x.shape[0]
        p = self.sample_params(n, generator)
        lin = srgb_to_linear(x.float())
        if not self.lamps:
            return self._expose(lin, p, generator), x
        radiance = lamp_radiance(x.shape, generator).to(x.device)  # in units of the low frame's full scale
        keep = (torch.rand(n, generator=generator) < self.lamps).to(x.device)[:, None, None, None]
        scene = lin + keep * radiance / p["exposure"][:, None, None, None].to(x.device)
        return self._expose(scene, p, generator), torch.where(keep, linear_to_srgb(scene.clamp(0, 1)), x.float())

    def _expose(self, lin: torch.Tensor, p: dict[str, torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
        dev = lin.device
        lin = lin * (p["exposure"][:, None, None, None] * p["cast"][:, :, None, None]).to(dev)
        q = p["photons"][:, None, None, None].to(dev)
        shot = torch.poisson((lin.clamp(0, 1) * q).cpu(), generator=generator).to(dev) / q
        read = torch.randn(lin.shape, generator=generator).to(dev) * p["read"][:, None, None, None].to(dev)
        low = linear_to_srgb((shot + read).clamp(0, 1))
        levels = 2 ** self.bits - 1
        return torch.round(low * levels) / levels


def lamp_radiance(shape: Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
    """Radiance (N, 3, H, W) of 1–4 random lamps per image: ``peak · (exp(−r²/2s²) + 0.05/(1 + r²/(4s)²)^1.5)``,
    s ~ U(1 %, 4 %) of the short side, peak ~ logU(1, 8), colour (1, U(0.55, 1), U(0.2, 1)·G)."""
    n, _, h, w = shape
    yy = torch.arange(h, dtype=torch.float32)[:, None]
    xx = torch.arange(w, dtype=torch.float32)[None, :]
    out = torch.zeros(n, 3, h, w)
    for i in range(n):
        for _ in range(1 + int(torch.randint(4, (1,), generator=generator))):
            u = torch.rand(6, generator=generator)
            s = float(min(h, w) * (0.01 + 0.03 * u[0])) + 0.5
            r2 = (yy - float(u[1]) * (h - 1)) ** 2 + (xx - float(u[2]) * (w - 1)) ** 2
            shape_ = torch.exp(-r2 / (2 * s * s)) + 0.05 / (1 + r2 / (4 * s) ** 2) ** 1.5
            g = 0.55 + 0.45 * float(u[4])
            colour = torch.tensor([1.0, g, (0.2 + 0.8 * float(u[5])) * g])
            out[i] += math.exp(math.log(8) * float(u[3])) * colour[:, None, None] * shape_
    return out
