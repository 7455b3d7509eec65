"""Fixtures of the CASSI tests (imported by tests/test_cassi*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def real_data_root_cassi(real_data_root) -> Path:
    """The real data root when it holds ``cassi/`` (skips with the reason otherwise)."""
    if not (real_data_root / "cassi" / "mask_256.mat").is_file():
        pytest.skip("real CASSI data (cassi/mask_256.mat) not available under ZOO_DATA")
    return real_data_root
