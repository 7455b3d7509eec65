"""Forward operators (no learning): ``A``, ``A_adjoint`` and an initial estimate ``A_dagger``."""

from zoo.physics.base import LinearPhysics, check_finite, fp32
from zoo.physics.cassi import SDCASSI, load_cassi_mask
from zoo.physics.cs import BlockCS, load_ista_matrices, orthonormal_gaussian
from zoo.physics.gaptv import gap_tv
from zoo.physics.flash import FlashDenoising
from zoo.physics.pansharpen import Pansharpening, interp23tap, wald_reduce
from zoo.physics.sso import pga, sso, sso_pga

__all__ = ["LinearPhysics", "BlockCS", "fp32", "check_finite", "load_ista_matrices", "orthonormal_gaussian",
           "SDCASSI", "load_cassi_mask", "gap_tv",
           "Pansharpening", "FlashDenoising", "interp23tap", "wald_reduce", "sso", "sso_pga", "pga"]
