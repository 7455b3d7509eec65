"""Forward operators (no learning, no file I/O): ``A``, ``A_adjoint`` and an initial estimate ``A_dagger``.

Classical algorithms that use them are in :mod:`zoo.solvers`; readers of mask / matrix files in :mod:`zoo.data`.
"""

from zoo.physics.base import LinearPhysics, check_finite, fp32
from zoo.physics.cassi import SDCASSI
from zoo.physics.cs import BlockCS, orthonormal_gaussian
from zoo.physics.flash import FlashDenoising
from zoo.physics.lowlight import LowLight, LowLightDegradation
from zoo.physics.pansharpen import Pansharpening, interp23tap, wald_reduce
from zoo.physics.sr import BlurDownsample, imresize

__all__ = ["LinearPhysics", "BlockCS", "fp32", "check_finite", "orthonormal_gaussian", "SDCASSI",
           "Pansharpening", "FlashDenoising", "LowLight", "LowLightDegradation", "interp23tap", "wald_reduce",
           "BlurDownsample", "imresize"]
