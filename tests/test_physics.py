"""Property tests run over every forward operator of the zoo (deepinv's registry pattern)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from zoo.physics import BlockCS, orthonormal_gaussian

def _collect() -> dict:
    # every tests/operator_cases_<task>.py contributes CASES = {name: (factory, x_shape)}
    cases = {}
    for f in sorted(Path(__file__).parent.glob("operator_cases_*.py")):
        mod = importlib.import_module(f.stem)
        cases.update({f"{f.stem[len('operator_cases_'):]}:{k}": v for k, v in mod.CASES.items()})
    return cases


OPERATORS = _collect()


def _map(fn, y):
    return {k: fn(v) for k, v in y.items()} if isinstance(y, dict) else fn(y)


def _dot(a, b) -> torch.Tensor:
    if isinstance(a, dict):
        return sum((a[k] * b[k]).sum() for k in a)
    return (a * b).sum()


@pytest.fixture(params=sorted(OPERATORS))
def op_case(request):
    make, shape = OPERATORS[request.param]
    return make().double(), shape


def test_adjointness(op_case):
    """⟨A x, y⟩ = ⟨x, Aᵀ y⟩ in float64 for random x, y."""
    op, shape = op_case
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = _map(lambda t: torch.randn(t.shape, generator=g, dtype=torch.float64), op.A(x))
    lhs = _dot(op.A(x), y)
    rhs = (x * op.A_adjoint(y, img_size=shape[-2:])).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-5, atol=1e-8), (lhs, rhs)


def test_shapes_and_gradient(op_case):
    op, shape = op_case
    x = torch.rand(*shape, dtype=torch.float64)
    y = op.A(x)
    if hasattr(op, "y_shape"):
        assert tuple(y.shape) == tuple(op.y_shape(shape))
    assert op.A_adjoint(y, img_size=shape[-2:]).shape == x.shape
    assert op.A_dagger(y, img_size=shape[-2:]).shape == x.shape
    assert op.gradient(x, y).abs().max() < 1e-10  # exact data ⇒ zero gradient


def test_fp32_inside_autocast(op_case):
    op, shape = op_case
    op = op.float()
    x = torch.rand(*shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = op.A(x.bfloat16())
        xt = op.A_adjoint(y, img_size=shape[-2:])
    for t in (y.values() if isinstance(y, dict) else [y]):
        assert t.dtype == torch.float32
    assert xt.dtype == torch.float32


def test_device_dtype_follow_module():
    op = BlockCS(0.25).double()
    assert op.phi.dtype == torch.float64
    assert "phi" in dict(op.named_buffers())


def test_orthonormal_rows():
    phi = orthonormal_gaussian(100, 1089, seed=3)
    assert torch.allclose(phi @ phi.T, torch.eye(100), atol=1e-5)
    assert torch.equal(phi, orthonormal_gaussian(100, 1089, seed=3))


def test_block_cs_padding_crop_is_exact_adjoint_of_pad():
    op = BlockCS(1.0, phi=torch.eye(1089))  # Φ = I: A is pure padding + blocking
    x = torch.rand(1, 1, 40, 50)
    assert torch.equal(op.A_adjoint(op.A(x), img_size=(40, 50)), x)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(1, 3, 66, 66), "grey"),
        (torch.rand(1, 1, 20, 66), "smaller than one 33"),
        (torch.full((1, 1, 66, 66), float("nan")), "NaN"),
        (torch.rand(66, 66), "grey"),
    ],
)
def test_block_cs_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        BlockCS(0.25).A(bad)


def test_block_cs_wrong_phi_and_measurement():
    with pytest.raises(ValueError, match=r"Φ has shape .* needs \(272, 1089\)"):
        BlockCS(0.25, phi=torch.rand(100, 1089))
    with pytest.raises(ValueError, match="another ratio"):
        BlockCS(0.25).A_adjoint(torch.rand(1, 109, 2, 2))
    with pytest.raises(ValueError, match="img_size"):
        BlockCS(0.25).A_adjoint(torch.rand(1, 272, 2, 2), img_size=(20, 66))


def test_prox_l2_solves_the_data_step(op_case):
    """x* = prox satisfies the optimality condition x − z + γAᵀ(Ax − y) = 0."""
    op, shape = op_case
    z = torch.rand(*shape, dtype=torch.float64)
    y = _map(lambda t: torch.rand_like(t), op.A(torch.rand(*shape, dtype=torch.float64)))
    x = op.prox_l2(z, y, 0.7, iters=200, tol=1e-12)
    res = x - z + 0.7 * op.A_adjoint(_map(lambda t: t, _sub(op.A(x), y)), img_size=shape[-2:])
    assert res.abs().max() < 1e-6


def _sub(a, b):
    return {k: a[k] - b[k] for k in a} if isinstance(a, dict) else a - b
