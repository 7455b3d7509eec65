"""Shared fixtures: fake data roots, real-data skipping, an isolated manifest/checkpoint folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.cli.main import main
from zoo.data import resolve_model_files

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import make_cs_root  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY_CS_CFG = {"stages": 2, "widths": [8, 16]}


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


@pytest.fixture
def tiny_ckpt(tmp_path, monkeypatch, fake_cs_root):
    """A tiny lorun-cs-r25 exported through `zoo export` into a temporary manifest."""
    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "checkpoints_manifest.json"))
    monkeypatch.setenv("ZOO_DATA", str(fake_cs_root))
    monkeypatch.delenv("ZOO_CHECKPOINTS", raising=False)
    torch.manual_seed(0)
    net = zoo.create("lorun-cs-r25", **resolve_model_files("lorun-cs-r25", {"phi_init": "ista", "data_root": str(fake_cs_root), **TINY_CS_CFG}))
    run = tmp_path / "run" / "export"
    run.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(run / "model.safetensors"))
    (run / "config.json").write_text(json.dumps({"model": "lorun-cs-r25", "config": {**TINY_CS_CFG, "phi_init": "checkpoint", "qinit": True}}))
    (run / "learning_curve.json").write_text(json.dumps([{"step": 10, "epoch": 0, "wall_s": 1.5, "val/psnr": 20.0}]))
    assert main(["export", str(run), "--name", "lorun-cs-r25", "--recipe", "recipes/x.yaml", "--data", "fake"]) == 0
    return tmp_path
