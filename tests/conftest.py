"""Shared fixtures: fake data roots, real-data skipping, an isolated manifest/checkpoint folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import make_cs_root  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def fake_cs_root(tmp_path_factory) -> Path:
    return make_cs_root(tmp_path_factory.mktemp("zoo_data"))


@pytest.fixture(scope="session")
def fake_all_root(tmp_path_factory) -> Path:
    """One data root with every task's fake data (tests/fakedata_*.py provide ``make(root)``)."""
    import importlib

    root = make_cs_root(tmp_path_factory.mktemp("fake_all"), ratios=(10, 25))
    for f in sorted(Path(__file__).parent.glob("fakedata_*.py")):
        importlib.import_module(f.stem).make(root)
    return root


@pytest.fixture
def real_data_root() -> Path:
    """The real benchmark data (``ZOO_DATA`` / ``../shared/data``); skip with the reason when absent."""
    from zoo.data.paths import data_root

    root = data_root()
    if root is None or not (root / "images").is_dir():
        pytest.skip("real benchmark data not available: set ZOO_DATA to the shared data folder (CI has it)")
    return root
