"""Operator cases for the shared property tests (tests/test_physics.py): pansharpening and flash denoising."""

from zoo.physics.flash import FlashDenoising
from zoo.physics.pansharpen import Pansharpening

# name -> (factory, x shape)
CASES = {
    "pansharpen-wv3": (lambda: Pansharpening("WV3"), (2, 8, 32, 32)),
    "pansharpen-qb-odd-size": (lambda: Pansharpening("QB", kernel_size=17), (1, 4, 30, 37)),
    "pansharpen-ratio2-weights": (lambda: Pansharpening(None, ratio=2, gains=[0.3, 0.25, 0.2], pan_weights=[0.2, 0.5, 0.3],
                                                        kernel_size=9, offset=0), (1, 3, 20, 22)),
    "flash-rgb": (lambda: FlashDenoising(3), (2, 3, 16, 20)),
}
