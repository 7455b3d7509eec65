"""Real-data checks of the CS slice (skip without ZOO_DATA): loaders and the committed numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import zoo
from zoo.tasks import get_task as get_protocol

ROOT = Path(__file__).resolve().parents[1]


def test_cs_datamodule_on_real_folders(real_data_root):
    from zoo.data.images import CSDataModule

    dm = CSDataModule(data_root=str(real_data_root), samples_per_epoch=4, batch_size=2)
    dm.setup("fit")
    dm.setup("test")
    b = next(iter(dm.train_dataloader()))
    assert b["target"].shape == (2, 1, 99, 99) and 0 <= b["target"].min() and b["target"].max() <= 1
    assert [len(d) for d in dm.test_sets] == [11, 68]  # Set11, BSD68
    names = {f.stem for f in dm.val_files + dm.train_files}
    assert not names & {"Monarch", "barbara", "test001"}  # test images never in training


@pytest.mark.parametrize("name", ["lorun-cs-r25", "block9-cs-r25"])
def test_checkpoint_reproduces_committed_bench_rows(real_data_root, name):
    """The published weights give the per-image PSNR written in results/cs/bench/per_image.csv."""
    table = ROOT / "results" / "cs" / "bench" / "per_image.csv"
    if not table.is_file() or name not in zoo.list_models(pretrained=True):
        pytest.skip("no committed CS results / checkpoint in this checkout")
    rows = {(r["model"], r["dataset"], r["image"]): r for r in csv.DictReader(table.open())}
    proto = get_protocol("cs")
    net = zoo.load(name)
    for img, batch in proto.load_testset("Set11", str(real_data_root))[:3]:
        with torch.no_grad():
            out = net(**proto.inputs(net, batch))
        got = float(proto.metrics["psnr"](out, batch["target"])[0])
        assert got == pytest.approx(float(rows[(name, "Set11", img)]["psnr"]), abs=0.02)
