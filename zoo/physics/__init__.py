"""Forward operators (no learning): ``A``, ``A_adjoint`` and an initial estimate ``A_dagger``."""

from zoo.physics.base import LinearPhysics, check_finite, fp32
from zoo.physics.cs import BlockCS, load_ista_matrices, orthonormal_gaussian

__all__ = ["LinearPhysics", "BlockCS", "fp32", "check_finite", "load_ista_matrices", "orthonormal_gaussian"]
