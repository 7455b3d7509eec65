"""Operator cases for the shared property tests (tests/test_physics.py): blur + decimation (super-resolution)."""

from zoo.physics.sr import BlurDownsample, gaussian_kernel, motion_kernel

# name -> (factory, x shape)
CASES = {
    "sr-x4-bicubic": (lambda: BlurDownsample(4), (2, 3, 32, 40)),
    "sr-x2-aniso": (lambda: BlurDownsample(2, gaussian_kernel(1.8, 0.6, 0.7, size=9, shift=0.5)), (1, 3, 18, 14)),
    "sr-x3-motion": (lambda: BlurDownsample(3, motion_kernel(3, size=11, shift=1.0)), (1, 1, 27, 24)),
}
