"""The SSO operator and the classical SSO-PGA / PGA solvers: properties and convergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.solvers.sso import nnls_problem, pga, sso, sso_pga, sso_slope, tv_deblur_problem

ALPHAS = [0.0, 0.1, 0.5, 2.0, 10.0]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_sso_at_zero_is_one(alpha):
    assert float(sso(torch.tensor(0.0, dtype=torch.float64), alpha)) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_sso_strictly_decreasing_and_bounded(alpha):
    z = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    s = sso(z, alpha)
    assert (s[1:] <= s[:-1]).all()  # non-increasing everywhere (saturates in float64 far out)
    zc = torch.linspace(-8, 8, 801, dtype=torch.float64)
    sc = sso(zc, alpha)
    assert (sc[1:] < sc[:-1]).all()  # strictly decreasing where float64 resolves it
    sig = 1 / (1 + math.exp(-alpha))
    lo, hi = 2 * sig - 1, 2 * sig + 1
    assert (s > lo - 1e-12).all() and (s < hi + 1e-12).all()
    # the bounds are the limits
    assert float(sso(torch.tensor(1e3, dtype=torch.float64), alpha)) == pytest.approx(lo, abs=1e-9)
    assert float(sso(torch.tensor(-1e3, dtype=torch.float64), alpha)) == pytest.approx(hi, abs=1e-9)
    assert lo >= 0  # α ≥ 0 ⇒ the multiplicative factor is non-negative


@pytest.mark.parametrize("alpha", ALPHAS)
def test_sso_slope_at_zero(alpha):
    z = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    sso(z, torch.tensor(alpha, dtype=torch.float64)).backward()
    assert float(z.grad) == pytest.approx(sso_slope(alpha), rel=1e-10)


def test_negative_alpha_refused_and_breaks_positivity():
    with pytest.raises(ValueError, match="alpha >= 0"):
        sso(torch.tensor(1.0), -0.5)
    # with α < 0 the lower bound 2σ(α) − 1 is negative: a large gradient flips the sign
    assert float(sso(torch.tensor(50.0), torch.tensor(-1.0))) < 0


@pytest.mark.parametrize("alpha", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("step", [1e-3, 1.0, 1e2, 1e4])
def test_sso_pga_iterates_stay_nonnegative_for_any_step(alpha, step):
    g = torch.Generator().manual_seed(1)
    A = torch.randn(15, 10, generator=g, dtype=torch.float64)
    b = torch.randn(15, generator=g, dtype=torch.float64)
    prob = nnls_problem(A, b)
    res = sso_pga(prob.grad, torch.rand(10, generator=g, dtype=torch.float64) + 0.1, step / prob.L, alpha, iters=200,
                  objective=prob.f)
    assert res.min_value >= 0 and torch.isfinite(res.x).all()
    assert all(math.isfinite(h) for h in res.history)


def _nnls_reference(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from scipy.optimize import nnls

    return torch.from_numpy(nnls(A.numpy(), b.numpy())[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_convergence_nnls_known_solution(seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(40, 20, generator=g, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)  # generic b: several constraints active
    xs = _nnls_reference(A, b)
    assert (xs == 0).any() and (xs > 0).any()
    prob = nnls_problem(A, b)
    x0 = torch.ones(20, dtype=torch.float64)
    r_sso = sso_pga(prob.grad, x0, 3.0 / prob.L, alpha=0.0, iters=4000)
    r_pga = pga(prob.grad, x0, 1.0 / prob.L, iters=4000)
    assert torch.allclose(r_pga.x, xs, atol=1e-6)
    assert torch.allclose(r_sso.x, xs, atol=1e-4)
    assert float(prob.f(r_sso.x)) == pytest.approx(float(prob.f(xs)), rel=1e-6)


def test_convergence_nonneg_l1_against_lbfgsb():
    from scipy.optimize import minimize

    g = torch.Generator().manual_seed(5)
    A = torch.randn(30, 25, generator=g, dtype=torch.float64)
    b = A @ (torch.rand(25, generator=g, dtype=torch.float64) * (torch.rand(25, generator=g) < 0.3)) + 0.01 * torch.randn(30, generator=g, dtype=torch.float64)
    prob = nnls_problem(A, b, l1=0.5)
    An, bn = A.numpy(), b.numpy()
    ref = minimize(lambda x: (0.5 * np.sum((An @ x - bn) ** 2) + 0.5 * x.sum(), An.T @ (An @ x - bn) + 0.5),
                   np.ones(25), jac=True, bounds=[(0, None)] * 25, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    f_ref = ref.fun
    r = sso_pga(prob.grad, torch.ones(25, dtype=torch.float64), 3.0 / prob.L, alpha=0.1, iters=5000, objective=prob.f)
    assert r.history[-1] == pytest.approx(f_ref, rel=1e-5)
    assert r.min_value >= 0


def test_tv_deblur_both_reach_the_same_objective():
    g = torch.Generator().manual_seed(0)
    x_true = torch.zeros(24, 24, dtype=torch.float64)
    x_true[4:14, 6:18] = 1.0
    x_true[16:22, 2:10] = 0.5
    from zoo.solvers.sso import gaussian_blur_matrix
    import torch.nn.functional as F

    k = gaussian_blur_matrix(9, 1.5)
    yb = F.conv2d(F.conv2d(x_true[None, None], k.view(1, 1, 1, -1), padding=(0, 4)), k.view(1, 1, -1, 1), padding=(4, 0))[0, 0]
    yb = yb + 0.01 * torch.randn(yb.shape, generator=g, dtype=torch.float64)
    prob = tv_deblur_problem(yb, lam=0.01, eps=0.05)
    x0 = torch.full_like(yb, 0.5)
    r_pga = pga(prob.grad, x0, 1.0 / prob.L, iters=2000, objective=prob.f)
    r_sso = sso_pga(prob.grad, x0, 4.0 / prob.L, alpha=0.0, iters=2000, objective=prob.f)
    assert r_sso.min_value >= 0
    assert r_sso.history[-1] == pytest.approx(r_pga.history[-1], rel=1e-3)
    assert r_sso.history[-1] < r_sso.history[0]


def test_sso_pga_is_robust_to_large_steps_where_pga_diverges():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(40, 20, generator=g, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)
    prob = nnls_problem(A, b)
    f_star = float(prob.f(_nnls_reference(A, b)))
    x0 = torch.ones(20, dtype=torch.float64)
    r_pga = pga(prob.grad, x0, 3.0 / prob.L, iters=300, objective=prob.f)
    r_sso = sso_pga(prob.grad, x0, 3.0 / prob.L, iters=300, objective=prob.f)
    assert not math.isfinite(r_pga.history[-1]) or r_pga.history[-1] > 1e6 * max(f_star, 1)
    assert r_sso.history[-1] <= f_star * (1 + 1e-3)


def test_solver_argument_errors():
    grad = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="strictly positive"):
        sso_pga(grad, torch.tensor([1.0, 0.0]), 0.1)
    with pytest.raises(ValueError, match="step"):
        sso_pga(grad, torch.ones(2), 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        pga(grad, torch.tensor([-1.0]), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        sso_pga(grad, torch.tensor([float("nan")]), 0.1)
    with pytest.raises(ValueError, match="A must be"):
        nnls_problem(torch.ones(3, 2), torch.ones(2))
