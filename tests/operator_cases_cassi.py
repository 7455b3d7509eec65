"""Operator cases for the shared property tests (tests/test_physics.py): SD-CASSI."""

import torch

from zoo.physics import SDCASSI

_g = torch.Generator().manual_seed(0)

# name -> (factory, x shape)
CASES = {
    "cassi-28b-step2": (lambda: SDCASSI(torch.rand(16, 20, generator=_g), bands=28, step=2), (2, 28, 16, 20)),
    "cassi-5b-step3-binary": (lambda: SDCASSI(mask_size=(9, 13), bands=5, step=3, seed=2), (1, 5, 9, 13)),
    "cassi-1band": (lambda: SDCASSI(torch.rand(8, 8, generator=_g), bands=1, step=2), (1, 1, 8, 8)),
    "cassi-step0": (lambda: SDCASSI(torch.rand(7, 6, generator=_g), bands=4, step=0), (1, 4, 7, 6)),
}
