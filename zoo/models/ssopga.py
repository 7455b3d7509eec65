"""SSO-PGA unfolded networks (arXiv 2510.23362) and their additive-PGA twins.

K stages of the multiplicative sliding-sigmoid step on a multi-modal data term, each followed by
a guide-conditioned proximal network with a non-negative output::

    x_0 = positive initial estimate (interpolated MS / the noisy image, floored at > 0)
    y_k = x_{k−1} ⊙ SSO_{α_k}(η_k ∇f(x_{k−1}))         update="sso" (this model)
    y_k = x_{k−1} − η_k ∇f(x_{k−1})                     update="pga" (the additive twin)
    x_k = P_k(y_k, guide)                                guide-conditioned prox, output > 0

with ``α_k = softplus(a_k) ≥ 0`` and ``η_k = softplus(e_k) > 0`` learned per stage. For α ≥ 0 the
SSO step keeps every iterate positive whatever η; the PGA twin can step below zero before the prox
(its prox output is still non-negative). ``net.last_min_iterate`` records the smallest value any
intermediate ``y_k`` reached in the last forward pass (the tested non-negativity claim).

Tasks ([ours] where the paper is silent; the design decisions are listed in the model cards):

* **pansharpening** — ``f(x) = λ_ms/2 ‖M ⊙ (S(k_MTF ∗ x) − y_ms)‖² + λ_pan/2 ‖Σ_b w_b x_b − y_pan‖²``
  (:class:`~zoo.physics.pansharpen.Pansharpening`). The PAN spectral weights ``w`` are estimated
  per image by non-negative least squares of the MTF-reduced PAN on the MS bands (the classical
  SSO-PGA solver; adaptive like GSA) instead of fixed learned weights, so one network serves any
  band count. ``M`` is an optional availability mask (``ms_mask``: (N, C) per band or
  (N, C, h, w) per pixel) for missing MS data: masked samples leave the data term, are filled for
  the initial estimate from the available bands, and the mask is an input of the prox.
  Inputs are divided by the image's mean MS level (output multiplied back: scale equivariance);
  the prox sees (iterate, PAN residual ``y_pan − Σ_b w_b y_b`` of the iterate, mask). Inputs must be non-negative and finite; PAN size must be
  the ratio times the MS size.
* **flash** — ``f(x) = λ/2 ‖x − y‖²`` (``y`` the noisy ambient image, no clipping); the flash
  image guides the prox, which also sees the noise level map ``σ`` (σ-aware: one network for
  σ ∈ [0, 80]/255).

Example:
    >>> import torch, zoo
    >>> net = zoo.create("ssopga-pansharpen-wv", stages=2, widths=(8, 16))
    >>> x = torch.rand(1, 8, 64, 64)
    >>> out = net(**net.measure(x))
    >>> tuple(out.shape), bool((out >= 0).all())
    ((1, 8, 64, 64), True)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.models.base import Restorer
from zoo.nn.guided_prox import GuidedProx, positive
from zoo.physics.base import check_finite, tracing
from zoo.physics.flash import FlashDenoising
from zoo.physics.pansharpen import Pansharpening, fill_missing, per_pixel, random_band_mask, sensor_gains
from zoo.registry import ModelEntry, register_model
from zoo.solvers.sso import estimate_pan_weights, sso

__all__ = ["SSOPGABase", "SSOPGAPansharpen", "SSOPGAFlash", "ssopga_pansharpen", "ssopga_flash"]

PAPER = "Robust Non-negative Proximal Gradient Algorithm (SSO-PGA), arXiv 2510.23362"


def _inv_softplus(v: float) -> float:
    return math.log(math.expm1(v))


class SSOPGABase(Restorer):
    """Stage parameters, the SSO / PGA update and the prox loop shared by the tasks."""

    def __init__(self, stages: int, prox: GuidedProx | nn.ModuleList, update: str = "sso",
                 alpha_init: float = 0.1, step_init: float = 1.0) -> None:
        super().__init__()
        if update not in ("sso", "pga"):
            raise ValueError(f"update must be 'sso' or 'pga', got {update!r}")
        if stages < 1:
            raise ValueError(f"stages must be >= 1, got {stages}")
        self.update, self.stages = update, int(stages)
        self.prox = prox
        self.alpha_raw = nn.Parameter(torch.full((stages,), _inv_softplus(max(alpha_init, 1e-4))))
        self.step_raw = nn.Parameter(torch.full((stages,), _inv_softplus(step_init)))
        self.last_min_iterate: float = math.inf

    @property
    def alpha(self) -> torch.Tensor:
        return F.softplus(self.alpha_raw)

    @property
    def eta(self) -> torch.Tensor:
        return F.softplus(self.step_raw)

    def prox_k(self, k: int) -> GuidedProx:
        """The prox network of stage ``k`` (the shared one, or the k-th of unshared proxes)."""
        return self.prox[k] if isinstance(self.prox, nn.ModuleList) else self.prox

    def diagnostics(self) -> dict[str, float]:
        """``min_iterate``: the smallest value any iterate reached in the last forward pass."""
        return {"min_iterate": float(self.last_min_iterate)}

    def _step(self, x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        eta = self.eta[k].to(grad.dtype)
        if self.update == "sso":
            y = x * sso(eta * grad, self.alpha[k].to(grad.dtype))
        else:
            y = x - eta * grad
        if not tracing():  # a host read: not part of an exported graph
            self.last_min_iterate = min(self.last_min_iterate, float(y.detach().min()))
        return y

    def _unfold(self, x: torch.Tensor, grad_fn, guide, extra: torch.Tensor | None,
                return_all: bool) -> torch.Tensor | list[torch.Tensor]:
        """``y_k = step(x_{k−1}, ∇f_k(x_{k−1}))``, ``x_k = P_k(y_k, guide(y_k), extra)`` for k = 1..K."""
        self.last_min_iterate = float("inf") if tracing() else float(x.detach().min())
        outs = []
        for k in range(self.stages):
            y = self._step(x, grad_fn(x.float(), k), k)
            g = guide(y) if callable(guide) else guide
            x = self.prox_k(k)(y, g, extra, stage=k)
            if not tracing():
                self.last_min_iterate = min(self.last_min_iterate, float(x.detach().min()))
            outs.append(x)
        return outs if return_all else x


class SSOPGAPansharpen(SSOPGABase):
    """SSO-PGA (or its PGA twin) for MS + PAN fusion (module docstring).

    Args:
        physics: the :class:`~zoo.physics.pansharpen.Pansharpening` operator (sensor, ratio).
        prox: shared :class:`~zoo.nn.guided_prox.GuidedProx` (guide = PAN, extra = mask when enabled).
        stages, update, alpha_init, step_init: see :class:`SSOPGABase`.
        pan_gain: PAN MTF gain, used to reduce the PAN for the spectral-weight estimate.
        missing_bands: enable the missing-data option (mask input to the prox and data term).
    """

    def __init__(self, physics: Pansharpening, prox: GuidedProx, stages: int = 4, update: str = "sso",
                 alpha_init: float = 0.1, step_init: float = 1.0, pan_gain: float = 0.15, missing_bands: bool = True) -> None:
        super().__init__(stages, prox, update, alpha_init, step_init)
        self.physics, self.pan_gain, self.missing_bands = physics, float(pan_gain), bool(missing_bands)
        self.pan_op = Pansharpening(None, physics.ratio, gains=[pan_gain], kernel_size=physics.kernel_size, offset=physics.offset)
        self.lam_pan_raw = nn.Parameter(torch.full((stages,), _inv_softplus(1.0)))
        self.channels = physics.bands

    @property
    def tile_multiple(self) -> int:
        return self.physics.tile_multiple

    # -- contract ------------------------------------------------------------------------------
    def measure(self, x: torch.Tensor, missing: float = 0.0, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Simulate (MS, PAN) from a reference image at the PAN scale (Wald): ``{"ms", "pan"[, "ms_mask"]}``.

        ``missing`` > 0 drops that fraction of MS bands per image (at least one band is kept).
        """
        y = self.physics.A(x.float())
        out = {"ms": y["ms"].clamp_min(0), "pan": y["pan"].clamp_min(0)}
        if missing > 0:
            out["ms_mask"] = random_band_mask(x.shape[0], self.channels, missing, generator, x.device)
        return out

    def example_inputs(self, size: int) -> dict[str, Any]:
        s = size // self.physics.ratio * self.physics.ratio
        return self.measure(torch.rand(1, self.channels, s, s))

    def reduce(self, ms: torch.Tensor, pan: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Wald-reduce an input pair with this model's own sensor MTFs: ``(ms, pan)`` → ``(ms_lr, pan_lr)``.

        The MS goes through the MS operator (per-band MTF blur + decimation), the PAN through the
        PAN MTF; ``ms`` is then the reference of the reduced pair (target-adaptive inference).
        """
        pan = self.physics.check_inputs(ms, pan)
        return self.physics.A_ms(ms.float()), self.pan_op.A_ms(pan.float())

    def initial(self, ms: torch.Tensor, pan: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Positive initial estimate: 23-tap interpolation of the (gap-filled) MS, floored at 1e-3."""
        if mask is not None:
            ms = fill_missing(ms, mask)
        return self.physics.A_dagger({"ms": ms, "pan": pan}).clamp_min(1e-3)

    def _prepare(self, ms: torch.Tensor, pan: torch.Tensor, ms_mask: torch.Tensor | None,
                 weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Checks, the availability mask, the PAN weights ``w`` (NNLS) and the scale ``μ`` (mean MS level)."""
        pan = self.physics.check_inputs(ms, pan)
        ms, pan = ms.float(), pan.float()
        mask = None
        if ms_mask is not None:
            mask = ms_mask.to(ms).reshape(ms.shape[0], ms.shape[1], *ms_mask.shape[2:])
            if not self.missing_bands:
                raise ValueError("this model was built with missing_bands=False: it cannot take ms_mask")
            if not tracing() and (mask.flatten(1).sum(1) == 0).any():
                raise ValueError("ms_mask removes every MS sample of an image: at least one band must be available")
        if weights is None:
            band_mask = mask if (mask is not None and mask.ndim == 2) else None
            masked_ms = ms if mask is None or mask.ndim == 2 else ms * mask
            weights = estimate_pan_weights(masked_ms, self.pan_op.A_ms(pan), band_mask)
        # the prox sees data at unit mean MS level whatever the sensor's range; η keeps its meaning
        avail = torch.ones_like(ms) if mask is None else per_pixel(mask, ms)
        scale = ((ms * avail).flatten(1).sum(1) / avail.flatten(1).sum(1).clamp_min(1)).clamp_min(1e-6)
        return ms, pan, mask, weights, scale[:, None, None, None]

    def forward(self, ms: torch.Tensor, pan: torch.Tensor, ms_mask: torch.Tensor | None = None,
                weights: torch.Tensor | None = None, return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Fuse ``ms`` (N, C, h, w) and ``pan`` (N, 1, H, W) → (N, C, H, W), non-negative."""
        ms, pan, mask, weights, scale = self._prepare(ms, pan, ms_mask, weights)
        y = {"ms": ms / scale, "pan": pan / scale}
        x0 = self.initial(y["ms"], y["pan"], mask)
        lam_ms = 1.0 if mask is None else per_pixel(mask, ms)
        lam_pan = F.softplus(self.lam_pan_raw)
        w = weights.to(ms)[..., None, None]

        def grad_fn(x: torch.Tensor, k: int) -> torch.Tensor:  # ∇f_k(x)
            return self.physics.gradient(x, y, weights=weights, lam_ms=lam_ms, lam_pan=lam_pan[k])

        def guide(yk: torch.Tensor) -> torch.Tensor:
            # the PAN detail the iterate does not explain: zero where y_k is consistent with the PAN
            return y["pan"] - (yk.float() * w).sum(1, keepdim=True)

        extra = None
        if self.missing_bands:
            avail = torch.ones_like(ms) if mask is None else per_pixel(mask, ms)
            extra = F.interpolate(avail, size=pan.shape[-2:], mode="nearest")
        out = self._unfold(x0, grad_fn, guide, extra, return_all)
        return [o * scale for o in out] if return_all else out * scale


class SSOPGAFlash(SSOPGABase):
    """SSO-PGA (or its PGA twin) for flash-guided denoising (module docstring).

    Args:
        physics: :class:`~zoo.physics.flash.FlashDenoising`.
        prox: shared :class:`~zoo.nn.guided_prox.GuidedProx` (guide = flash, extra = σ map).
        sigma_train: noise level used by :meth:`measure` when none is given.
    """

    def __init__(self, physics: FlashDenoising, prox: GuidedProx, stages: int = 3, update: str = "sso",
                 alpha_init: float = 0.1, step_init: float = 1.0, sigma_train: float = 25 / 255) -> None:
        super().__init__(stages, prox, update, alpha_init, step_init)
        self.physics, self.sigma_train = physics, float(sigma_train)
        self.lam_raw = nn.Parameter(torch.full((stages,), _inv_softplus(1.0)))
        self.channels = physics.channels

    def measure(self, x: torch.Tensor, flash: torch.Tensor | None = None, sigma: float | torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Any]:
        """``{"noisy", "flash", "sigma"}`` for a clean ambient image ``x``.

        Without a real ``flash`` image a synthetic guide (a brightened, gamma-shifted copy of ``x``)
        is used: for cost profiling and smoke tests only, never for reported quality numbers.
        """
        s = self.sigma_train if sigma is None else sigma
        sig = torch.as_tensor(s, dtype=torch.float32).expand(x.shape[0]).clone()
        if flash is None:
            flash = (x.float().clamp(0, 1) ** 0.8 * 0.9 + 0.05)
        return {"noisy": self.physics.noisy(x.float(), sig, generator), "flash": flash, "sigma": sig}

    def forward(self, noisy: torch.Tensor, flash: torch.Tensor, sigma: float | torch.Tensor = 25 / 255,
                return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Denoise ``noisy`` (N, C, H, W) with the flash guide; ``sigma`` per image or a number (0–1 scale)."""
        self.physics.check_inputs(noisy, flash)
        noisy, flash = noisy.float(), flash.float()
        sig = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device).reshape(-1)
        if sig.numel() == 1:
            sig = sig.expand(noisy.shape[0])
        check_finite(sig, "sigma")
        if sig.numel() != noisy.shape[0]:
            raise ValueError(f"sigma must be one value or one per image ({noisy.shape[0]}), got {sig.numel()} values")
        if not tracing() and (sig < 0).any():
            raise ValueError(f"sigma must be >= 0, got {sig.tolist()}")
        if not tracing() and (sig > 1).any():
            raise ValueError(f"sigma is the noise level on the [0, 1] scale of the image (25/255 = 0.098), got "
                             f"{sig.tolist()}: divide by 255 if it is in /255 units")
        if flash.shape[1] == 1:
            flash = flash.expand(-1, noisy.shape[1], -1, -1)
        x0 = positive(noisy, 100.0)
        lam = F.softplus(self.lam_raw)

        def grad_fn(x: torch.Tensor, k: int) -> torch.Tensor:  # ∇f_k(x) = λ_k (x − y)
            return lam[k] * self.physics.gradient(x, noisy)

        extra = sig[:, None, None, None].expand(-1, 1, *noisy.shape[-2:]) * 4.0  # σ≈0.3 → ≈1
        return self._unfold(x0, grad_fn, flash, extra, return_all)


# ---------------------------------------------------------------------------------------------
# registered constructors


def _make_prox(channels: int, guide: int, extra: int, widths: Sequence[int], blocks: int, stages: int,
          share: bool) -> GuidedProx | nn.ModuleList:
    if share:
        return GuidedProx(channels, guide, extra, widths, blocks, stages=stages)
    return nn.ModuleList([GuidedProx(channels, guide, extra, widths, blocks, stages=1) for _ in range(stages)])


def ssopga_pansharpen(sensor: str = "WV3", ratio: int = 4, stages: int = 4, update: str = "sso",
                      widths: Sequence[int] = (16, 32, 48), blocks: int = 1, share_prox: bool = True,
                      alpha_init: float = 0.1, step_init: float = 1.0, missing_bands: bool = True,
                      kernel_size: int = 41) -> SSOPGAPansharpen:
    """SSO-PGA pansharpening for ``sensor`` (its band count and MTF gains; ``ratio``)."""
    gains, pan_gain = sensor_gains(sensor)
    physics = Pansharpening(sensor, ratio, kernel_size=kernel_size)
    prox = _make_prox(len(gains), 1, len(gains) if missing_bands else 0, widths, blocks, stages, share_prox)
    return SSOPGAPansharpen(physics, prox, stages, update, alpha_init, step_init, pan_gain, missing_bands)


def ssopga_flash(channels: int = 3, stages: int = 3, update: str = "sso", widths: Sequence[int] = (16, 32, 48),
                 blocks: int = 1, share_prox: bool = True, alpha_init: float = 0.1, step_init: float = 1.0,
                 sigma_train: float = 25 / 255) -> SSOPGAFlash:
    """σ-aware SSO-PGA flash-guided denoiser."""
    prox = _make_prox(channels, channels, 1, widths, blocks, stages, share_prox)
    return SSOPGAFlash(FlashDenoising(channels), prox, stages, update, alpha_init, step_init, sigma_train)


_TINY = {"stages": 2, "widths": (8, 16)}
_PS = dict(architecture="ssopga", task="pansharpen", builder=ssopga_pansharpen, paper=PAPER, test_config=_TINY,
           lightning_module="zoo.training.RestorationModule")
_FL = dict(architecture="ssopga", task="flash", builder=ssopga_flash, paper=PAPER, test_config=_TINY)

register_model(ModelEntry(name="ssopga-pansharpen-wv", default_config={"sensor": "WV3", "update": "sso"},
                          description="SSO-PGA pansharpening, WorldView 8-band (ratio 4), PAN-guided non-negative prox", **_PS))
register_model(ModelEntry(name="pga-pansharpen-wv", default_config={"sensor": "WV3", "update": "pga"},
                          description="Additive-PGA twin of ssopga-pansharpen-wv (same prox network)",
                          **{**_PS, "architecture": "pga-twin"}))
register_model(ModelEntry(name="ssopga-pansharpen-4band", default_config={"sensor": "Pleiades", "update": "sso"},
                          description="SSO-PGA pansharpening, 4-band sensors (Pléiades/QB/GeoEye gains), ratio 4", **_PS))
register_model(ModelEntry(name="ssopga-flash", default_config={"update": "sso"},
                          description="SSO-PGA flash-guided denoising, sigma-aware (0-80/255)", **_FL))
register_model(ModelEntry(name="pga-flash", default_config={"update": "pga"},
                          description="Additive-PGA twin of ssopga-flash (same prox network)",
                          **{**_FL, "architecture": "pga-twin"}))
