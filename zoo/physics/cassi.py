"""Single-disperser coded-aperture snapshot spectral imaging (SD-CASSI), TSA/MST convention.

A cube ``x ∈ R^{C×H×W}`` is modulated by one 2-D coded aperture ``M ∈ R^{H×W}`` (tiled over the
``C`` bands), band ``k`` is sheared by ``s·k`` pixels along the width (the disperser) and the
bands are **summed** on the detector::

    y[h, w] = Σ_k  M[h, w − s·k] · x[k, h, w − s·k],        y ∈ R^{H × (W + s·(C−1))}

(TSA-Net / DGSMP / MST / DAUHST use ``C = 28``, ``s = 2``: a 256×256 mask gives 256×310).
The adjoint is ``Aᵀy = M ⊙ shift_back(y)`` with ``shift_back(y)[k] = y[:, s·k : s·k + W]``;
``AAᵀ`` is diagonal, ``ΦΦᵀ = Σ_k shift(M)²`` (zeros → 1, the benchmark code's convention), which
makes the GAP projection ``x + Aᵀ((y − Ax)/ΦΦᵀ)`` exact. The initial estimate of the benchmark
code is ``A_dagger(y) = shift_back(y / C · 2)`` (no mask).

Shapes: cubes ``(N, C, H, W)``, measurements ``(N, 1, H, W + s(C−1))``, masks ``(H, W)`` or one
per sample ``(N, 1, H, W)`` (random mask crops while training). Every method takes an optional
``mask=`` that overrides the operator's own (a crop of it, or a real system's mask).

Real system (TSA-Net's 660×660 mask, 660×714 captures): the captured image is normalised as in
MST's real-data code, ``meas = y · 2/C · 1.2``, and training simulates its shot noise with
:meth:`SDCASSI.shot_noise` (binomial photon counting, QE 0.4, 2048 levels).

Example:
    >>> import torch
    >>> from zoo.physics import SDCASSI
    >>> op = SDCASSI(torch.rand(32, 32), bands=28, step=2)
    >>> y = op.A(torch.rand(1, 28, 32, 32))
    >>> tuple(y.shape), tuple(op.A_adjoint(y).shape)
    ((1, 1, 32, 86), (1, 28, 32, 32))
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zoo.physics.base import LinearPhysics, check_finite, fp32
from zoo.utils.tracing import tracing

__all__ = ["SDCASSI", "random_mask", "REAL_SCALE", "real_to_operator", "operator_to_real"]

#: MST's real-data normalisation of a measurement: ``meas = y / C · 2 · 1.2`` (× C is undone here)
REAL_SCALE = 2 * 1.2


def random_mask(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A seeded random binary mask (placeholder until a real mask is loaded from a checkpoint)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(h, w, generator=g) > 0.5).float()


class SDCASSI(LinearPhysics):
    """SD-CASSI forward model (module docstring): ``y = Σ_k shift_k(M ⊙ x_k)``.

    Args:
        mask: 2-D coded aperture ``(H, W)``; default a seeded random binary mask of ``mask_size``.
        bands: number of spectral bands ``C``.
        step: dispersion in pixels per band ``s``.
        mask_size: size of the default random mask (ignored when ``mask`` is given).
        seed: seed of the default mask.
    """

    def __init__(
        self,
        mask: torch.Tensor | None = None,
        bands: int = 28,
        step: int = 2,
        mask_size: Sequence[int] | int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if int(bands) < 1 or int(step) < 0:
            raise ValueError(f"bands must be ≥ 1 and step ≥ 0, got bands={bands}, step={step}")
        self.bands, self.step = int(bands), int(step)
        if mask is None:
            hw = (mask_size, mask_size) if isinstance(mask_size, int) else tuple(mask_size)
            mask = random_mask(int(hw[0]), int(hw[1]), seed)
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.ndim != 2:
            raise ValueError(f"the coded aperture must be 2-D (H, W), got shape {tuple(mask.shape)}")
        check_finite(mask, "mask")
        self.register_buffer("mask", mask.clone())

    # -- shapes -------------------------------------------------------------------------------
    @property
    def spread(self) -> int:
        """Extra measurement columns: ``s·(C−1)``."""
        return self.step * (self.bands - 1)

    def y_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        n, _, h, w = x_shape
        return (n, 1, h, w + self.spread)

    def resolve_mask(self, mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """The mask as ``(N|1, 1, H, W)`` in ``like``'s dtype/device."""
        m = self.mask if mask is None else torch.as_tensor(mask)
        if m.ndim == 2:
            m = m[None, None]
        elif m.ndim == 3:
            m = m[:, None]
        if m.ndim != 4 or m.shape[1] != 1:
            raise ValueError(f"mask must be (H, W), (N, H, W) or (N, 1, H, W), got {tuple(m.shape)}")
        m = m.to(device=like.device, dtype=like.dtype)  # a 0/1 integer or boolean mask is fine
        if mask is not None:
            check_finite(m, "mask")
        return m

    def check_cube(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"SD-CASSI expects a cube batch (N, C={self.bands}, H, W), got shape {tuple(x.shape)}; "
                "a single (H, W, C) cube from a .mat file needs x.permute(2, 0, 1)[None]."
            )
        if x.shape[1] != self.bands:
            raise ValueError(
                f"cube has {x.shape[1]} bands but this operator disperses {self.bands}: interpolate the cube "
                f"to {self.bands} wavelengths (zoo.data.cassi.resample_bands) or build SDCASSI(bands={x.shape[1]})."
            )
        check_finite(x, "cube")

    def _check_meas(self, y: torch.Tensor, m: torch.Tensor, img_size: Sequence[int] | None) -> None:
        if y.ndim != 4 or y.shape[1] != 1:
            raise ValueError(
                f"measurement must be (N, 1, H, W + {self.spread}), got shape {tuple(y.shape)}; "
                "a 2-D detector image needs y[None, None]. A 3-D array is a cube, not an SD-CASSI measurement."
            )
        check_finite(y, "measurement")
        h, w = m.shape[-2:]
        if tuple(y.shape[-2:]) != (h, w + self.spread):
            raise ValueError(
                f"measurement/mask size mismatch: a {h}×{w} mask with {self.bands} bands at step {self.step} gives "
                f"{h}×{w + self.spread} measurements, got {y.shape[-2]}×{y.shape[-1]}. Use the mask of the system "
                f"that took it (real captures: 660×660 mask, 660×714) or the right bands/step."
            )
        if img_size is not None and tuple(int(s) for s in img_size) != (h, w):
            raise ValueError(f"img_size {tuple(img_size)} differs from the mask size {h}×{w}")

    # -- shear ----------------------------------------------------------------------------------
    def shift(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C, H, W) → (N, C, H, W + s(C−1))``: band ``k`` of ``mask ⊙ x`` moved ``s·k`` columns right,
        zero-filled (``mask`` (N|1, 1, H, W) or None).

        One skew instead of C slice copies: with the bands next to the columns, rows of length
        ``L = W' + s`` (``W' = W + s(C−1)``) read back as rows of length ``W'`` move row ``k`` by ``s·k``
        (flat index ``k·L + j = k·W' + s·k + j``); the padding supplies the zeros. The product is written
        straight into the padded buffer and only the padding is zeroed (:func:`_shear`); while tracing,
        the same skew through ``F.pad`` (:func:`_shear_traceable`), which exports.
        """
        return (_shear_traceable if tracing() else _shear)(x, self.step, mask)

    def shift_back(self, y: torch.Tensor, bands: int | None = None) -> torch.Tensor:
        """``(N, 1|C, H, W') → (N, C, H, W' − s(C−1))``: the adjoint of :meth:`shift` (then summed for a
        1-channel ``y``, which every band reads); a new tensor (see :meth:`_unshear`)."""
        return self._unshear(y, bands).clone(memory_format=torch.contiguous_format)

    def _unshear(self, y: torch.Tensor, bands: int | None = None) -> torch.Tensor:
        """:meth:`shift_back` as a strided view of ``y`` (band ``k`` starts ``s·k`` elements further along each
        row; no copy) whose gradient is :meth:`shift`; the operator consumes it at once (a write into the view
        would write into ``y``). While tracing, the inverse skew through copies (:func:`_unshear_traceable`)."""
        c = self.bands if bands is None else int(bands)
        return _unshear_traceable(y, c, self.step) if tracing() else _Unshear.apply(y, c, self.step)

    # -- operator ------------------------------------------------------------------------------
    @fp32
    def A(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # noqa: N802
        self.check_cube(x)
        m = self.resolve_mask(mask, x)
        if tuple(m.shape[-2:]) != tuple(x.shape[-2:]):
            raise ValueError(
                f"cube is {x.shape[-2]}×{x.shape[-1]} but the mask is {m.shape[-2]}×{m.shape[-1]}: crop the cube, or "
                "pass mask=SDCASSI.crop_mask(...) of the cube's size."
            )
        return self.shift(x, m).sum(1, keepdim=True)

    @fp32
    def A_adjoint(self, y: torch.Tensor, mask: torch.Tensor | None = None,  # noqa: N802
                  img_size: Sequence[int] | None = None) -> torch.Tensor:
        m = self.resolve_mask(mask, y)
        self._check_meas(y, m, img_size)
        return m * self._unshear(y)

    @fp32
    def A_dagger(self, y: torch.Tensor, mask: torch.Tensor | None = None,  # noqa: N802
                 img_size: Sequence[int] | None = None) -> torch.Tensor:
        """The benchmark's initial estimate ``shift_back(y / C · 2)`` (no mask: MST's "H" input)."""
        m = self.resolve_mask(mask, y)
        self._check_meas(y, m, img_size)
        return self._unshear(y) * (2.0 / self.bands)

    @fp32
    def phi_phit(self, mask: torch.Tensor | None = None, like: torch.Tensor | None = None) -> torch.Tensor:
        """Diagonal of ``AAᵀ``: ``Σ_k shift(M)²`` as ``(N|1, 1, H, W')``, zeros replaced by 1."""
        ref = like if like is not None else self.mask
        m = self.resolve_mask(mask, ref)
        s = self.shift((m * m).expand(-1, self.bands, -1, -1)).sum(1, keepdim=True)
        return torch.where(s == 0, torch.ones_like(s), s)

    @fp32
    def gradient(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """∇ ½‖A x − y‖² = Aᵀ(A x − y)."""
        return self.A_adjoint(self.A(x, mask=mask) - y, mask=mask)

    @fp32
    def gap_step(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Generalised-alternating-projection step ``Aᵀ((y − A x) / ΦΦᵀ)`` (adding it makes ``A x = y``)."""
        return self.A_adjoint((y - self.A(x, mask=mask)) / self.phi_phit(mask, like=y), mask=mask)

    # -- masks and noise -------------------------------------------------------------------------
    def crop_mask(self, h: int, w: int, top: int | None = None, left: int | None = None,
                  batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(batch, 1, h, w)`` windows of the operator's mask: random (``top``/``left`` None) or fixed."""
        mh, mw = self.mask.shape
        if h > mh or w > mw:
            raise ValueError(f"a {h}×{w} cube is larger than the {mh}×{mw} coded aperture: crop the cube to ≤ {mh}×{mw}")
        out = []
        for _ in range(batch):
            t = int(torch.randint(0, mh - h + 1, (1,), generator=generator)) if top is None else int(top)
            l_ = int(torch.randint(0, mw - w + 1, (1,), generator=generator)) if left is None else int(left)
            out.append(self.mask[t : t + h, l_ : l_ + w])
        return torch.stack(out)[:, None]

    @staticmethod
    def shot_noise(y: torch.Tensor, bands: int, qe: float = 0.4, bit: int = 2048,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """MST's real-system noise on ``y`` (operator units): photon counts ~ Binomial(⌊y·s·bit/QE⌋, QE)/bit/s.

        ``s = 2/C·1.2`` is the normalisation of the real captures (:data:`REAL_SCALE`).
        """
        scale = REAL_SCALE / bands
        counts = torch.floor((y.float() * scale * bit / qe).clamp_min(0))
        noisy = torch.binomial(counts, torch.full_like(counts, qe), generator=generator)
        return (noisy / (bit * scale)).to(y.dtype)

    def extra_repr(self) -> str:
        return f"bands={self.bands}, step={self.step}, mask={tuple(self.mask.shape)}"


def _shear(x: torch.Tensor, step: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:meth:`SDCASSI.shift`: ``mask ⊙ x`` written once into the padded (N, H, C, W' + s) buffer."""
    n, c, h, w = x.shape
    if mask is not None:
        n = max(n, mask.shape[0])
    wp = w + step * (c - 1)
    dtype = x.dtype if mask is None else torch.promote_types(x.dtype, mask.dtype)
    buf = torch.empty(n, h, c, wp + step, dtype=dtype, device=x.device)
    buf[..., w:].zero_()
    dst, xt = buf[..., :w], x.transpose(1, 2)
    if mask is None:
        dst.copy_(xt)
    elif torch.is_grad_enabled() and (x.requires_grad or mask.requires_grad):
        dst.copy_(xt * mask.transpose(1, 2))  # out= does not record autograd
    else:
        torch.mul(xt, mask.transpose(1, 2), out=dst)
    return buf.reshape(n, h, c * (wp + step))[..., : c * wp].reshape(n, h, c, wp).transpose(1, 2)


def _shear_traceable(x: torch.Tensor, step: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`_shear` through ``F.pad`` (ONNX / TorchScript export)."""
    if mask is not None:
        x = mask * x
    n, c, h, w = x.shape
    wp = w + step * (c - 1)
    t = F.pad(x.transpose(1, 2), (0, wp - w + step)).reshape(n, h, c * (wp + step))
    return t[..., : c * wp].reshape(n, h, c, wp).transpose(1, 2)


def _unshear_view(y: torch.Tensor, bands: int, step: int) -> torch.Tensor:
    n, ch, h, wp = y.shape
    if ch not in (1, bands):
        raise ValueError(f"shift_back reads a 1- or {bands}-channel measurement, got {ch} channels")
    w = wp - step * (bands - 1)
    if w < 1:
        raise ValueError(f"a {wp}-column measurement is narrower than the {step * (bands - 1) + 1} columns that "
                         f"{bands} bands at step {step} need")
    sn, sc, sh, sw = y.stride()
    return y.as_strided((n, bands, h, w), (sn, (sc if ch > 1 else 0) + step * sw, sh, sw), y.storage_offset())


class _Unshear(torch.autograd.Function):
    """:func:`_unshear_view` with the shear as its gradient (autograd's generic ``as_strided`` backward for
    overlapping views is slower and allocates the whole storage)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, bands: int, step: int) -> torch.Tensor:  # noqa: D102
        ctx.step, ctx.single = step, y.shape[1] == 1
        return _unshear_view(y, bands, step)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: D102
        gy = _shear(g, ctx.step)
        return (gy.sum(1, keepdim=True) if ctx.single else gy), None, None


def _unshear_traceable(y: torch.Tensor, bands: int, step: int) -> torch.Tensor:
    """:func:`_unshear_view` through copies (ONNX / TorchScript export)."""
    n, _, h, wp = y.shape
    w = wp - step * (bands - 1)
    t = y.transpose(1, 2).expand(n, h, bands, wp).reshape(n, h, bands * wp)
    return F.pad(t, (0, bands * step)).reshape(n, h, bands, wp + step)[..., :w].transpose(1, 2)


def real_to_operator(meas: torch.Tensor, bands: int = 28) -> torch.Tensor:
    """A real capture normalised like MST's (``y/C·2·1.2``) → operator units ``y``."""
    return meas * (bands / REAL_SCALE)


def operator_to_real(y: torch.Tensor, bands: int = 28) -> torch.Tensor:
    """Operator units ``y`` → MST's real-capture normalisation (inverse of :func:`real_to_operator`)."""
    return y * (REAL_SCALE / bands)
