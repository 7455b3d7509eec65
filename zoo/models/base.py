"""The written model contract: what every zoo network provides to tasks, training, bench and inference.

A :class:`Restorer` owns its physics (one checkpoint = operator + prior) and is called with the
keyword inputs its :meth:`~Restorer.measure` produces::

    inputs = net.measure(x)          # simulate the measurement of clean images x (N, C, H, W)
    x_hat = net(**inputs)            # reconstruct (N, C, H, W)

The rest of the code relies on these members only (no ``getattr``/``hasattr`` probes):

* ``physics`` — the forward operator (a :mod:`zoo.physics` module);
* ``channels`` — channels of the restored image;
* ``tile_multiple`` — tiles aligned to this many pixels are measured exactly like the whole image;
* ``measure(x, **kw)`` / ``example_inputs(size)`` — the keyword inputs of ``forward``;
* ``forward(**inputs, return_all=False)`` — the restoration (every stage output with ``return_all``);
* ``parameter_roles()`` — each parameter's role (``physics``, ``prior_base``, ``prior_adapters``,
  ``stage``: step sizes and other per-stage scalars), for parameter counts;
* ``set_trainable(phase)`` — which parameters train in a phase (``"finetune"``: as the family's
  recipes fine-tune; ``"all"``);
* ``export_config(config)`` — the config a checkpoint is rebuilt from (without data files);
* ``diagnostics()`` — optional scalars of the last forward pass (e.g. the smallest iterate);
* ``onnx_blocker`` — ``None``, or why the network cannot be exported to ONNX (``zoo export`` then
  names it and points to TorchScript).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from zoo.physics.base import check_finite, inputs_checked, scanning

__all__ = ["Restorer"]


def _match_dtype(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Floating inputs take the network's parameter dtype (a float64 image into a float32 network
    would otherwise fail deep inside a convolution); integer inputs are left to the physics' checks."""
    p = next(module.parameters(), None)
    if p is None:
        return args, kwargs

    def cast(v: Any) -> Any:
        if torch.is_tensor(v) and v.is_floating_point() and v.dtype != p.dtype and v.dtype == torch.float64:
            return v.to(p.dtype)
        return v

    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


class Restorer(nn.Module):
    """Base class of every registered network (see the module docstring)."""

    physics: nn.Module
    channels: int = 1
    onnx_blocker: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.register_forward_pre_hook(_match_dtype, with_kwargs=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Check the floating inputs for NaN/Inf once, then run ``forward`` without re-checking them in
        every operator call of every stage."""
        if scanning():
            named = [(f"input {i}", a) for i, a in enumerate(args)] + [(f"input {k!r}", v) for k, v in kwargs.items()]
            for what, v in named:
                if torch.is_tensor(v) and v.is_floating_point():
                    check_finite(v, what)
        with inputs_checked():
            return super().__call__(*args, **kwargs)

    @property
    def tile_multiple(self) -> int:
        return 1

    def measure(self, x: torch.Tensor, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def example_inputs(self, size: int) -> dict[str, Any]:
        """Inputs for cost profiling: the measurement of a random ``channels × size × size`` image."""
        return self.measure(torch.rand(1, self.channels, size, size))

    def parameter_roles(self) -> dict[str, str]:
        """``named_parameters`` name → role; by default the physics' parameters and the prior's."""
        return {n: "physics" if n.startswith("physics.") else "prior_base" for n, _ in self.named_parameters()}

    def set_trainable(self, phase: str = "finetune") -> None:
        """``requires_grad`` for a training phase: ``"all"``, or ``"finetune"`` (by default the same)."""
        if phase not in ("all", "finetune"):
            raise ValueError(f"phase must be 'all' or 'finetune', got {phase!r}")
        self.requires_grad_(True)

    def export_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The registry config that rebuilds this network from its weights alone (no data files)."""
        return dict(config)

    def diagnostics(self) -> dict[str, float]:
        """Scalars about the last forward pass, logged in training and reported by the bench."""
        return {}
