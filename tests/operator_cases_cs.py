"""Operator cases for the shared property tests (tests/test_physics.py): block CS."""

import torch

from zoo.physics import BlockCS

# name -> (factory, x shape)
CASES = {
    "cs-r25": (lambda: BlockCS(0.25, seed=1), (2, 1, 66, 99)),
    "cs-r10-odd-size": (lambda: BlockCS(0.10, seed=2), (1, 1, 40, 71)),
    "cs-r50-qinit": (lambda: BlockCS(0.5, qinit=torch.randn(1089, 544) * 0.03), (1, 1, 33, 33)),
    "cs-r4-block16": (lambda: BlockCS(0.04, block=16), (1, 1, 35, 48)),
}
