"""Lightning module of SSO-PGA and its PGA twin: the base module unchanged.

Batches carry the multi-modal inputs (``{"ms", "pan", "ms_mask"}`` or ``{"noisy", "flash",
"sigma"}``) under ``"inputs"``; the smallest intermediate iterate (``*/min_iterate``) is logged
by :class:`RestorationModule` from the network's ``diagnostics()``. ``spectral=True``
(pansharpening recipes) adds SAM/ERGAS to validation. Kept as a name so recipes and checkpoints
that cite it keep working.
"""

from __future__ import annotations

from zoo.training.module import RestorationModule

__all__ = ["SSOPGAModule"]


class SSOPGAModule(RestorationModule):
    """:class:`RestorationModule` for SSO-PGA networks (see the module docstring)."""
