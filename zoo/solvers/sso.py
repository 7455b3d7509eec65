"""The sliding-sigmoid operator (SSO) and classical (non-learned) SSO-PGA / PGA solvers.

SSO-PGA (arXiv 2510.23362) solves ``min f(x) + g(x) s.t. x ≥ 0`` with a *multiplicative* gradient
step instead of PGA's additive one::

    SSO_α(z) = 2σ(−z − α) + 2σ(α) − 1                  (σ the logistic sigmoid, α ≥ 0)
    y_t = x_{t−1} ⊙ SSO_α(η ∇f(x_{t−1}))               (multiplicative step)
    x_t = prox_{g}(y_t)                                 (proximal step, optional)

Properties (tested in ``tests/test_sso_solver.py``): ``SSO_α(0) = 1`` (a stationary point is a
fixed point); strictly decreasing in ``z``; values in ``(2σ(α) − 1, 2σ(α) + 1)``, so for α ≥ 0 a
positive iterate stays positive whatever the step ``η`` (the factor is bounded: at most ×(1+2σ(α))
per step, which is why the method tolerates large steps); slope at 0 is ``−2σ(α)(1 − σ(α))``, so
for small gradients the step is ``x − c·η·x ⊙ ∇f`` (an NMF-like diagonally scaled gradient step).
Iterates must start strictly positive (a zero coordinate stays zero).

Classical PGA for the same problem: ``x_t = prox_g(max(x_{t−1} − η ∇f(x_{t−1}), 0))``.

Problems with known solutions are provided as :class:`SmoothProblem` objects (objective, gradient,
Lipschitz constant): non-negative least squares with an optional ℓ1 weight (on ``x ≥ 0`` the ℓ1
norm is linear, ``λ·Σx``, so it joins the smooth part) and non-negative deblurring with a smoothed
(Charbonnier) total variation. Pure maths, no learning.

Example:
    >>> import torch
    >>> from zoo.solvers.sso import sso, sso_pga, nnls_problem
    >>> float(sso(torch.tensor(0.0), 0.5))
    1.0
    >>> g = torch.Generator().manual_seed(0)
    >>> A = torch.rand(20, 10, generator=g, dtype=torch.float64); b = A @ torch.rand(10, dtype=torch.float64)
    >>> prob = nnls_problem(A, b)
    >>> res = sso_pga(prob.grad, torch.ones(10, dtype=torch.float64), step=5.0 / prob.L, iters=3000)
    >>> bool(prob.f(res.x) < 1e-5) and bool((res.x >= 0).all())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "sso",
    "sso_slope",
    "sso_pga",
    "pga",
    "SolverResult",
    "SmoothProblem",
    "nnls_problem",
    "tv_deblur_problem",
    "gaussian_blur_matrix",
    "estimate_pan_weights",
]

Tensor = torch.Tensor


def sso(z: Tensor, alpha: float | Tensor = 0.0) -> Tensor:
    """Sliding-sigmoid operator ``SSO_α(z) = 2σ(−z − α) + 2σ(α) − 1`` (element-wise).

    ``alpha`` may be a tensor broadcastable to ``z`` (per-stage/per-band values) and must be ≥ 0
    for the non-negativity guarantee (checked when it is a Python number).
    """
    if not isinstance(alpha, Tensor):
        if alpha < 0:
            raise ValueError(f"SSO needs alpha >= 0 to keep iterates non-negative, got {alpha}")
        alpha = torch.tensor(float(alpha), dtype=z.dtype, device=z.device)
    return 2 * torch.sigmoid(-z - alpha) + 2 * torch.sigmoid(alpha) - 1


def sso_slope(alpha: float) -> float:
    """``d SSO_α / dz`` at 0: ``−2σ(α)(1 − σ(α))`` (−0.5 at α = 0)."""
    s = 1 / (1 + math.exp(-alpha))
    return -2 * s * (1 - s)


@dataclass
class SolverResult:
    """Final iterate, objective per iteration (``history[0]`` at ``x0``), minimum of every iterate."""

    x: Tensor
    history: list[float] = field(default_factory=list)
    min_value: float = math.inf
    iters: int = 0


@dataclass
class SmoothProblem:
    """A smooth objective on ``x ≥ 0``: ``f``, ``grad`` and a Lipschitz constant ``L`` of ``grad``."""

    f: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    L: float
    shape: tuple[int, ...]
    description: str = ""


def _check_start(x0: Tensor, strict: bool) -> None:
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains NaN/Inf")
    if strict and (x0 <= 0).any():
        raise ValueError("SSO-PGA needs a strictly positive start (a zero coordinate stays zero): use e.g. x0 = ones")
    if not strict and (x0 < 0).any():
        raise ValueError("x0 must be non-negative")


def _run(step_fn, x0: Tensor, iters: int, objective, tol: float) -> SolverResult:
    x = x0.clone()
    res = SolverResult(x=x)
    if objective is not None:
        res.history.append(float(objective(x)))
    res.min_value = float(x.min())
    for t in range(iters):
        x_new = step_fn(x)
        res.min_value = min(res.min_value, float(x_new.min()))
        done = tol > 0 and float((x_new - x).norm()) <= tol * max(float(x.norm()), 1e-30)
        x = x_new
        if objective is not None:
            res.history.append(float(objective(x)))
        res.iters = t + 1
        if done or not torch.isfinite(x).all():
            break
    res.x = x
    return res


@torch.no_grad()
def sso_pga(
    grad: Callable[[Tensor], Tensor],
    x0: Tensor,
    step: float,
    alpha: float = 0.0,
    prox: Callable[[Tensor], Tensor] | None = None,
    iters: int = 500,
    objective: Callable[[Tensor], Tensor] | None = None,
    tol: float = 0.0,
) -> SolverResult:
    """Classical SSO-PGA: ``x ← prox(x ⊙ SSO_α(step·∇f(x)))`` from a strictly positive ``x0``.

    Args:
        grad: ``∇f``.
        x0: strictly positive start.
        step: gradient scale η > 0 (any value keeps the iterates in ``[0, ∞)``).
        alpha: sliding parameter α ≥ 0.
        prox: optional proximal map of ``g`` (must preserve non-negativity).
        iters: maximum iterations; ``tol`` stops on a relative change below it.
        objective: recorded in ``history`` when given.
    """
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    _check_start(x0, strict=True)

    def step_fn(x: Tensor) -> Tensor:
        y = x * sso(step * grad(x), alpha)
        return prox(y) if prox is not None else y

    return _run(step_fn, x0, iters, objective, tol)


@torch.no_grad()
def pga(
    grad: Callable[[Tensor], Tensor],
    x0: Tensor,
    step: float,
    prox: Callable[[Tensor], Tensor] | None = None,
    iters: int = 500,
    objective: Callable[[Tensor], Tensor] | None = None,
    tol: float = 0.0,
) -> SolverResult:
    """Classical projected/proximal gradient: ``x ← prox(max(x − step·∇f(x), 0))``."""
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    _check_start(x0, strict=False)

    def step_fn(x: Tensor) -> Tensor:
        y = (x - step * grad(x)).clamp_min(0)
        return prox(y) if prox is not None else y

    return _run(step_fn, x0, iters, objective, tol)


# -- problems ------------------------------------------------------------------------------------


def nnls_problem(A: Tensor, b: Tensor, l1: float = 0.0) -> SmoothProblem:
    """``f(x) = ½‖A x − b‖² + l1·Σx`` on ``x ≥ 0`` (the ℓ1 term is linear there); ``L = ‖A‖₂²``."""
    if A.ndim != 2 or b.shape != (A.shape[0],):
        raise ValueError(f"A must be (m, n) and b (m,), got {tuple(A.shape)} and {tuple(b.shape)}")
    L = float(torch.linalg.matrix_norm(A, ord=2)) ** 2

    def f(x: Tensor) -> Tensor:
        return 0.5 * ((A @ x - b) ** 2).sum() + l1 * x.sum()

    def grad(x: Tensor) -> Tensor:
        return A.T @ (A @ x - b) + l1

    return SmoothProblem(f, grad, L, (A.shape[1],), f"NNLS {A.shape[0]}x{A.shape[1]}, l1={l1}")


def gaussian_blur_matrix(n: int, sigma: float) -> Tensor:
    """Normalised 1-D Gaussian kernel of odd length ``n``."""
    t = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def tv_deblur_problem(y: Tensor, sigma: float = 1.5, ksize: int = 9, lam: float = 0.01, eps: float = 1e-2) -> SmoothProblem:
    """Non-negative deblurring with smoothed TV: ``½‖k∗x − y‖² + λ Σ √(|∇x|² + ε²)`` on ``x ≥ 0``.

    ``y`` is an (H, W) image; the blur is a separable Gaussian with zero padding (symmetric, so
    the operator is self-adjoint). ``L ≤ 1 + 8λ/ε``.
    """
    if y.ndim != 2:
        raise ValueError(f"y must be an (H, W) image, got {tuple(y.shape)}")
    k1 = gaussian_blur_matrix(ksize, sigma).to(y)
    p = ksize // 2

    def blur(x: Tensor) -> Tensor:
        x4 = x[None, None]
        x4 = F.conv2d(x4, k1.view(1, 1, 1, -1), padding=(0, p))
        return F.conv2d(x4, k1.view(1, 1, -1, 1), padding=(p, 0))[0, 0]

    def dxy(x: Tensor) -> tuple[Tensor, Tensor]:
        gx = torch.zeros_like(x)
        gy = torch.zeros_like(x)
        gx[:, :-1] = x[:, 1:] - x[:, :-1]
        gy[:-1] = x[1:] - x[:-1]
        return gx, gy

    def dt(px: Tensor, py: Tensor) -> Tensor:  # Dᵀ (adjoint of the forward differences)
        d = torch.zeros_like(px)
        d[:, :-1] += px[:, :-1]
        d[:, 1:] -= px[:, :-1]
        d[:-1] += py[:-1]
        d[1:] -= py[:-1]
        return -d

    def f(x: Tensor) -> Tensor:
        gx, gy = dxy(x)
        return 0.5 * ((blur(x) - y) ** 2).sum() + lam * torch.sqrt(gx**2 + gy**2 + eps**2).sum()

    def grad(x: Tensor) -> Tensor:
        gx, gy = dxy(x)
        nrm = torch.sqrt(gx**2 + gy**2 + eps**2)
        return blur(blur(x) - y) + lam * dt(gx / nrm, gy / nrm)

    return SmoothProblem(f, grad, 1.0 + 8 * lam / eps, tuple(y.shape), f"TV deblur {tuple(y.shape)} σ={sigma} λ={lam}")


@torch.no_grad()
def _largest_eigenvalue(G: torch.Tensor, iters: int = 64) -> torch.Tensor:
    """λ_max of symmetric PSD ``G`` (N, C, C) by power iteration from the all-ones vector (matmuls only, so
    an exported ONNX graph can hold it: ONNX has no SVD). MS band Gram matrices have λ₁ ≫ λ₂ (correlated
    bands), so 64 steps reach float64 precision; the Rayleigh quotient never exceeds λ_max."""
    v = torch.ones(G.shape[:-1], dtype=G.dtype, device=G.device)[..., None]  # (N, C, 1)
    for _ in range(iters):
        v = G @ v
        v = v / v.norm(dim=-2, keepdim=True).clamp_min(1e-300)
    return (v.transpose(-1, -2) @ G @ v)[..., 0, 0]


def estimate_pan_weights(ms: torch.Tensor, pan_lr: torch.Tensor, mask: torch.Tensor | None = None,
                         iters: int = 200) -> torch.Tensor:
    """Non-negative least squares ``min_w ‖Σ_b w_b ms_b − pan_lr‖², w ≥ 0`` per image → (N, C).

    Solved with the classical SSO-PGA iteration on the C×C normal equations (fp64); bands masked
    out (``mask`` (N, C), 0 = missing) get weight 0.
    """
    n, c = ms.shape[:2]
    m = ms.double().flatten(2)  # (N, C, P)
    if mask is not None:
        m = m * mask.double()[..., None] if mask.ndim == 2 else m * mask.double().flatten(2)
    p = pan_lr.double().flatten(1)  # (N, P)
    G = m @ m.transpose(1, 2)  # (N, C, C)
    h = (m @ p[..., None])[..., 0]  # (N, C)
    L = _largest_eigenvalue(G).clamp_min(1e-12)  # (N,) = ‖G‖₂ (G is symmetric PSD)
    w = torch.full((n, c), 1.0 / c, dtype=torch.float64, device=ms.device)
    for _ in range(iters):
        g = (G @ w[..., None])[..., 0] - h
        w = w * sso(4.0 * g / L[:, None] / w.max(1, keepdim=True).values.clamp_min(1e-12), 0.0)
    if mask is not None and mask.ndim == 2:
        w = w * mask.double()
    return w.to(ms.dtype)
