"""Classical low-light enhancement: LIME (Guo, Li & Ling, IEEE TIP 2017), gamma correction, histogram equalisation.

LIME (illumination-map estimation, the "sped-up" solver with weighting strategy III)::

    T̂(x) = max_c I_c(x)                                         initial illumination
    T = argmin_T ‖T̂ − T‖² + α Σ_{d∈{h,v}} W_d(x) (∂_d T(x))²       (I + α Σ_d D_dᵀ diag(W_d) D_d) t = t̂
    W_d(x) = Σ_{y∈Ω(x)} G_σ(x, y) / (|Σ_{y∈Ω(x)} G_σ(x, y) ∂_d T̂(y)| + ε)
    Î = I / max(T, ε_T)^γ                                        relit image (clipped to [0, 1])

The sparse symmetric positive definite system (a weighted 5-point Laplacian) is solved exactly
with SciPy's sparse direct solver. The paper's optional BM3D denoising of the result is not done.
No learning; the parameters (α, γ) of the zoo's floor are tuned on training images only
(``experiments/studies/lowlight_floors.py``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F

__all__ = ["lime", "lime_illumination", "gamma_correction", "histogram_equalisation"]


def _gauss_smooth(a: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-x * x / (2 * sigma * sigma))
    t = torch.from_numpy(a)[None, None]
    t = F.conv2d(F.pad(t, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return t[0, 0].numpy()


def lime_illumination(t_hat: np.ndarray, alpha: float = 0.15, sigma: float = 2.0, eps: float = 1e-3) -> np.ndarray:
    """The refined illumination map ``T`` of one (H, W) initial map ``T̂`` (module docstring)."""
    h, w = t_hat.shape
    t_hat = t_hat.astype(np.float64)
    dh = np.zeros_like(t_hat)
    dv = np.zeros_like(t_hat)
    dh[:, :-1] = t_hat[:, 1:] - t_hat[:, :-1]
    dv[:-1, :] = t_hat[1:, :] - t_hat[:-1, :]
    radius = max(1, int(round(2 * sigma)))
    wh = _gauss_smooth(np.ones_like(t_hat), sigma, radius) / (np.abs(_gauss_smooth(dh, sigma, radius)) + eps)
    wv = _gauss_smooth(np.ones_like(t_hat), sigma, radius) / (np.abs(_gauss_smooth(dv, sigma, radius)) + eps)
    wh[:, -1] = 0.0  # no edge past the border
    wv[-1, :] = 0.0
    n = h * w
    idx = np.arange(n).reshape(h, w)
    # edges (p, p+1) horizontally and (p, p+w) vertically, weight α W_d(p)
    eh, ev = alpha * wh.ravel(), alpha * wv.ravel()
    diag = 1.0 + eh + ev
    diag[1:] += eh[:-1]  # the right neighbour's edge to its left
    diag[w:] += ev[:-w]
    rows = np.concatenate([idx.ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1].ravel(), idx[1:].ravel()])
    cols = np.concatenate([idx.ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:].ravel(), idx[:-1].ravel()])
    vals = np.concatenate([diag, -wh[:, :-1].ravel() * alpha, -wh[:, :-1].ravel() * alpha,
                           -wv[:-1].ravel() * alpha, -wv[:-1].ravel() * alpha])
    a = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
    return spla.spsolve(a, t_hat.ravel()).reshape(h, w)


def lime(low: torch.Tensor, alpha: float = 0.15, gamma: float = 0.8, sigma: float = 2.0,
         floor: float = 1e-2) -> torch.Tensor:
    """LIME enhancement of sRGB images (N, 3, H, W) in [0, 1] → (N, 3, H, W) in [0, 1]."""
    out = []
    for im in low.detach().double().cpu():
        t = lime_illumination(im.amax(0).numpy(), alpha, sigma)
        t = torch.from_numpy(np.maximum(t, floor)) ** gamma
        out.append((im / t).clamp(0, 1))
    return torch.stack(out).to(low.device, low.dtype)


def gamma_correction(low: torch.Tensor, gamma: float = 0.4) -> torch.Tensor:
    """``I^γ`` per channel (γ < 1 brightens)."""
    return low.clamp(0, 1) ** gamma


def histogram_equalisation(low: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Global histogram equalisation of the luminance ``Y = max_c I_c`` (HSV value), colours kept:
    ``Î = I · Y_eq / Y`` (clipped to [0, 1])."""
    out = []
    for im in low.detach().float().cpu():
        y = im.amax(0)
        q = (y * (bins - 1)).round().long().clamp(0, bins - 1)
        hist = torch.bincount(q.ravel(), minlength=bins).double()
        cdf = hist.cumsum(0)
        cmin = cdf[cdf > 0][0]
        lut = ((cdf - cmin) / max(float(cdf[-1] - cmin), 1.0)).clamp(0, 1).float()
        y_eq = lut[q]
        out.append((im * (y_eq / y.clamp_min(1.0 / bins))).clamp(0, 1))
    return torch.stack(out).to(low.device, low.dtype)
