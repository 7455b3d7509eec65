"""Linear forward operators with exact adjoints.

Every operator is an ``nn.Module`` whose masks/kernels/matrices are buffers (or parameters when
learnable), so ``.to(device, dtype)`` moves them and nothing is hard-coded to a device. The maths
runs in float32 even inside ``torch.autocast`` (see :func:`fp32`): FFTs, sums over many bands and
Gram systems lose too much in bf16/fp16.

Contract (checked by ``tests/test_physics.py`` for every operator of the zoo):

* ``A(x)`` and ``A_adjoint(y)`` with ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ (to 1e-5 relative, float64);
* ``x_shape(...)`` / ``y_shape(...)`` give matching shapes;
* ``A_dagger(y)`` a cheap initial estimate (pseudo-inverse or a learned linear map);
* ``prox_l2(z, y, γ)`` the data step (conjugate gradients unless an operator has a closed form).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.nn as nn

from zoo.utils.tracing import tracing

__all__ = ["LinearPhysics", "fp32", "check_finite", "inputs_checked", "scanning", "tracing"]

F = TypeVar("F", bound=Callable[..., Any])


def fp32(fn: F) -> F:
    """Run ``fn`` with autocast disabled and floating tensor arguments promoted to ≥ float32.

    float64 inputs stay float64 (the adjoint tests use it); the result is returned in float32/64,
    the caller decides whether to cast back.
    """

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        def up(t):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
                return t.float()
            return t

        dev = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device_type=dev, enabled=False):
            return fn(self, *[up(a) for a in args], **{k: up(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


# True while a network's forward runs on inputs it has already checked: the NaN scan is a full pass over the
# tensor plus a host sync, and an unfolding network calls its operator 2K times (25-45 % of BlockCS.A).
_CHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar("zoo_inputs_checked", default=False)


@contextlib.contextmanager
def inputs_checked() -> Iterator[None]:
    """Inside this block :func:`check_finite` skips its NaN/Inf scan (the caller checked the inputs once)."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def scanning() -> bool:
    """Whether :func:`check_finite` scans values now: not inside :func:`inputs_checked` nor while :func:`tracing`."""
    return not (_CHECKED.get() or tracing())


def check_finite(t: torch.Tensor, what: str) -> None:
    """Refuse integer (e.g. uint8) and NaN/Inf input with an error that says which tensor and what to do.

    Masks may be boolean; every other input is floating point on the [0, 1] scale. The NaN/Inf scan
    is skipped inside :func:`inputs_checked` (a network checks its inputs once per forward).
    """
    if t.dtype != torch.bool and not t.is_floating_point():
        raise ValueError(f"{what} has dtype {t.dtype}: pass floating-point values on the [0, 1] scale "
                         "(e.g. x.float() / 255 for 8-bit data)")
    if scanning() and not torch.isfinite(t).all():
        n = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{what} contains {n} NaN/Inf values: clean or mask them before restoration.")


class LinearPhysics(nn.Module):
    """Base class of the zoo's linear operators ``y = A x``.

    Subclasses implement :meth:`A` and :meth:`A_adjoint`; :meth:`A_dagger` defaults to the
    adjoint. ``forward`` is ``A``.
    """

    @property
    def tile_multiple(self) -> int:
        """Tiles cut on a grid of this many pixels are measured exactly like the whole image."""
        return 1

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 (maths notation)
        raise NotImplementedError

    def A_adjoint(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # noqa: N802
        raise NotImplementedError

    def A_dagger(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # noqa: N802
        return self.A_adjoint(y, **kwargs)

    def prox_l2(self, z: torch.Tensor, y: torch.Tensor, gamma: float | torch.Tensor, iters: int = 50,
                tol: float = 1e-6) -> torch.Tensor:
        """Data step ``argmin_x ½‖A x − y‖² + 1/(2γ)‖x − z‖²``, i.e. ``(I + γAᵀA) x = z + γAᵀy``.

        Solved by conjugate gradients (the system is SPD); operators with a closed form
        override this.
        """
        size = tuple(z.shape[-2:])

        def op(v: torch.Tensor) -> torch.Tensor:
            return v + gamma * self.A_adjoint(self.A(v), img_size=size)

        b = z + gamma * self.A_adjoint(y, img_size=size)
        x = z.clone()
        r = b - op(x)
        p = r.clone()
        rs = (r * r).sum()
        b2 = (b * b).sum().clamp_min(1e-30)
        for _ in range(iters):
            if rs / b2 < tol**2:
                break
            ap = op(p)
            alpha = rs / (p * ap).sum().clamp_min(1e-30)
            x = x + alpha * p
            r = r - alpha * ap
            rs_new = (r * r).sum()
            p = r + (rs_new / rs) * p
            rs = rs_new
        return x

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇ ½‖A x − y‖² = Aᵀ(A x − y), at the spatial size of ``x``."""
        return self.A_adjoint(self.A(x) - y, img_size=tuple(x.shape[-2:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A(x)
