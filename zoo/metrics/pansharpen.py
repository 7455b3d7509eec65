"""Pansharpening quality indices, following Vivone et al.'s MATLAB toolbox definitions.

Reduced resolution (fused vs reference, (N, C, H, W) tensors, any common scale):

* **SAM** (degrees; :func:`~zoo.metrics.spectral.sam_toolbox`) and **ERGAS** (:func:`~zoo.metrics.spectral.ergas`).
* **Q2n** (Q4 / Q8): hypercomplex UIQI on ``block×block`` blocks, stride ``block`` (32), bands padded
  with zeros to a power of two, Cayley–Dickson products as in ``onion_mult``; the index is the mean
  over blocks of the modulus. (Sizes that are not a multiple of the block are padded by symmetric
  reflection per band — the toolbox reflects band 1 only, a known bug we do not copy.)
* **SCC**: correlation of Sobel gradient magnitudes, all bands together.
* **PSNR**: one MSE over all bands, ``data_range`` 1.

Every index takes ``border`` (pixels cut on each side before computing); the benches record it.

Full resolution (fused vs original MS and PAN):

* **D_λ** (Khan): ``1 − Q2n(MS, S(k_MTF ∗ fused))``;
* **D_s** (QNR): ``mean_b |Q(fused_b, PAN) − Q(MS↑_b, PAN_LP)|`` with UIQI on 32×32 sliding windows;
* **HQNR** = ``(1 − D_λ)(1 − D_s)``.

Example:
    >>> import torch
    >>> from zoo.metrics.pansharpen import sam_toolbox, ergas, q2n
    >>> x = torch.rand(1, 4, 64, 64) + 0.1
    >>> float(sam_toolbox(x, x)[0]), float(ergas(x, x)[0]), round(float(q2n(x, x)[0]), 6)
    (0.0, 0.0, 1.0)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from zoo.metrics.image import crop_border
from zoo.physics.pansharpen import Pansharpening, interp23tap
from zoo.metrics.spectral import _EPS, _prep, ergas, sam_toolbox

__all__ = ["sam_toolbox", "ergas", "q2n", "scc", "psnr_ms", "uiqi", "d_lambda_khan", "d_s", "hqnr", "reduced_metrics"]

@torch.no_grad()
def psnr_ms(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, border: int = 0) -> torch.Tensor:
    """PSNR over all bands (one MSE per image), ``pred`` clipped to [0, data_range]."""
    p, t = _prep(pred.clamp(0, data_range), target, border)
    mse = ((p - t) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse.clamp_min(1e-20))).float()


@torch.no_grad()
def scc(pred: torch.Tensor, target: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Spatial correlation coefficient of Sobel gradient magnitudes (replicate borders), per image."""
    p, t = _prep(pred, target, border)
    sob = torch.tensor([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=torch.float64, device=p.device)

    def grad_mag(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        xr = F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
        gy = F.conv2d(xr, sob[None, None])
        gx = F.conv2d(xr, sob.T[None, None])
        return torch.sqrt(gx**2 + gy**2).reshape(n, c, h, w)

    a, b = grad_mag(p), grad_mag(t)
    num = (a * b).flatten(1).sum(1)
    return (num / torch.sqrt((a * a).flatten(1).sum(1) * (b * b).flatten(1).sum(1)).clamp_min(_EPS)).float()


# -- Q2n -----------------------------------------------------------------------------------------------


def _conj(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([q[:1], -q[1:]], 0)


def _onion_mult(a_: torch.Tensor, b_: torch.Tensor) -> torch.Tensor:
    """Cayley–Dickson product along dim 0 (the toolbox's ``onion_mult``/``onion_mult2D``)."""
    n = a_.shape[0]
    if n == 1:
        return a_ * b_
    h = n // 2
    a, b = a_[:h], _conj(a_[h:])
    c, d = b_[:h], _conj(b_[h:])
    if n == 2:
        return torch.cat([a * c - d * b, a * d + c * b], 0)
    r1 = _onion_mult(a, c)
    r2 = _onion_mult(d, _conj(b))
    r3 = _onion_mult(_conj(a), d)
    r4 = _onion_mult(c, b)
    return torch.cat([r1 - r2, r3 + r4], 0)


def _onions_quality(d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """``onions_quality`` on one block: d1, d2 (C, s, s) float64, C a power of two → (C,)."""
    c = d1.shape[0]
    d2 = _conj(d2)
    m = d1.flatten(1).mean(1)
    s = d1.flatten(1).std(1)  # std2: unbiased
    s = torch.where(s == 0, torch.full_like(s, _EPS), s)
    d1 = (d1 - m[:, None, None]) / s[:, None, None] + 1
    sign = torch.ones(c, dtype=d1.dtype, device=d1.device)
    sign[1:] = -1
    # the reference's affine normalisation applied to the (conjugated) fused block
    d2 = sign[:, None, None] * (((sign[:, None, None] * d2) - m[:, None, None]) / s[:, None, None] + 1)
    npx = d1.shape[1] * d1.shape[2]
    k = npx / (npx - 1)
    m1, m2 = d1.flatten(1).mean(1), d2.flatten(1).mean(1)
    mod_q1m, mod_q2m = torch.sqrt((m1**2).sum()), torch.sqrt((m2**2).sum())
    int1 = k * (d1**2).sum(0).mean()
    int2 = k * (d2**2).sum(0).mean()
    termine3 = int1 + int2 - k * (mod_q1m**2 + mod_q2m**2)
    mean_bias = 2 * mod_q1m * mod_q2m / (mod_q1m**2 + mod_q2m**2)
    if termine3 == 0:
        q = torch.zeros(c, dtype=d1.dtype, device=d1.device)
        q[-1] = mean_bias
        return q
    qu = _onion_mult(d1, d2).flatten(1).mean(1)
    qm = _onion_mult(m1[:, None, None], m2[:, None, None])[:, 0, 0]
    return (k * qu - k * qm) * mean_bias * (2 / termine3)


@torch.no_grad()
def q2n(pred: torch.Tensor, target: torch.Tensor, block: int = 32, border: int = 0) -> torch.Tensor:
    """Q2n (Q4 for 4 bands, Q8 for 8) per image, ``block×block`` blocks with stride ``block``."""
    p, t = _prep(pred, target, border)
    out = []
    for pi, ti in zip(p, t):
        c, h, w = ti.shape
        c2 = 2 ** math.ceil(math.log2(c))
        if c2 != c:  # zero bands up to a power of two (toolbox)
            z = ti.new_zeros(c2 - c, h, w)
            pi, ti = torch.cat([pi, z]), torch.cat([ti, z])
        ph, pw = (-h) % block, (-w) % block
        if ph >= h or pw >= w:  # mirror padding up to a whole block needs more than half a block of image
            raise ValueError(f"Q2n: image {h}x{w} is too small for {block}x{block} blocks (mirror padding to a multiple "
                             f"of the block needs > {block // 2} pixels); pass a smaller block= or score a larger image")
        if ph or pw:
            pi = F.pad(pi[None], (0, pw, 0, ph), mode="reflect")[0]
            ti = F.pad(ti[None], (0, pw, 0, ph), mode="reflect")[0]
        vals = []
        for i in range(0, ti.shape[1], block):
            for j in range(0, ti.shape[2], block):
                q = _onions_quality(ti[:, i : i + block, j : j + block], pi[:, i : i + block, j : j + block])
                vals.append(torch.sqrt((q**2).sum()))
        out.append(torch.stack(vals).mean())
    return torch.stack(out).float()


# -- full resolution -----------------------------------------------------------------------------


def uiqi(a: torch.Tensor, b: torch.Tensor, block: int = 32) -> torch.Tensor:
    """Wang–Bovik UIQI of two (H, W) images, mean over ``block×block`` sliding windows ('valid')."""
    a, b = a.double(), b.double()
    n = block * block

    def s(x: torch.Tensor) -> torch.Tensor:
        # 'valid' block sums via an integral image (O(HW), not O(HW·block²))
        c = F.pad(x.cumsum(0).cumsum(1), (1, 0, 1, 0))
        return c[block:, block:] - c[:-block, block:] - c[block:, :-block] + c[:-block, :-block]

    sa, sb, saa, sbb, sab = s(a), s(b), s(a * a), s(b * b), s(a * b)
    mul = sa * sb
    sq = sa * sa + sb * sb
    num = 4 * (n * sab - mul) * mul
    den1 = n * (saa + sbb) - sq
    den = den1 * sq
    q = torch.ones_like(den)
    idx = (den1 == 0) & (sq != 0)
    q = torch.where(idx, 2 * mul / torch.where(sq == 0, torch.ones_like(sq), sq), q)
    q = torch.where(den != 0, num / torch.where(den == 0, torch.ones_like(den), den), q)
    return q.mean()


@torch.no_grad()
def d_lambda_khan(fused: torch.Tensor, ms: torch.Tensor, physics, block: int = 32) -> torch.Tensor:
    """Khan's spectral distortion ``1 − Q2n(MS, S(k_MTF ∗ fused))`` per image."""
    red = physics.A_ms(fused.float())
    return 1 - q2n(red, ms.float(), block=block)


@torch.no_grad()
def d_s(fused: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor, physics, pan_gain: float, block: int = 32) -> torch.Tensor:
    """QNR spatial distortion (q = 1) per image, PAN low-passed with the PAN MTF at the MS scale."""
    op_pan = Pansharpening(None, physics.ratio, gains=[pan_gain], kernel_size=physics.kernel_size, offset=physics.offset)
    pan = pan if pan.ndim == 4 else pan[:, None]
    pan_lp = interp23tap(op_pan.A_ms(pan.float()), physics.ratio)[..., : pan.shape[-2], : pan.shape[-1]]
    ms_up = interp23tap(ms.float(), physics.ratio)[..., : pan.shape[-2], : pan.shape[-1]]
    out = []
    for f, m, p, pl in zip(fused, ms_up, pan, pan_lp):
        v = [abs(float(uiqi(f[b], p[0], block)) - float(uiqi(m[b], pl[0], block))) for b in range(f.shape[0])]
        out.append(sum(v) / len(v))
    return torch.tensor(out)


@torch.no_grad()
def hqnr(fused: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor, physics, pan_gain: float,
         block: int = 32) -> dict[str, torch.Tensor]:
    """``{"d_lambda", "d_s", "hqnr"}`` per image (Khan D_λ, QNR D_s)."""
    dl = d_lambda_khan(fused, ms, physics, block)
    ds = d_s(fused, ms, pan, physics, pan_gain, block)
    return {"d_lambda": dl, "d_s": ds, "hqnr": (1 - dl) * (1 - ds)}


def reduced_metrics(pred: torch.Tensor, target: torch.Tensor, ratio: int = 4, border: int = 0,
                    block: int = 32) -> dict[str, float]:
    """All reduced-resolution indices of one image pair as floats (SAM, ERGAS, Q2n, SCC, PSNR)."""
    return {
        "sam": float(sam_toolbox(pred, target, border)[0]), "ergas": float(ergas(pred, target, ratio, border)[0]),
        "q2n": float(q2n(pred, target, block, border)[0]), "scc": float(scc(pred, target, border)[0]),
        "psnr": float(psnr_ms(pred, target, 1.0, border)[0]),
    }
