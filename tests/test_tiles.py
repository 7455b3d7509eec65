"""Tiles at full speed: auto_tile picks a valid, cached tile; tiled equals whole where the physics tiles exactly;
restore_file tiles with tile="auto"; the progress bar stays off unless asked; zoo restore's --tile parser."""

from __future__ import annotations

import argparse
import io

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import zoo
from zoo.cli.restore import tile_arg
from zoo.inference import _AUTO, _balanced_sides, _count, auto_tile, restore_inputs_tiled, simulate_and_restore, tile_progress
from zoo.models.base import Restorer
from zoo.tasks import get_task, restore_file


class LocalNet(Restorer):
    """A pixel-local restorer (3×3 convolutions: receptive field 2 px) on a ``multiple``-pixel grid."""

    def __init__(self, multiple: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
        self.m = multiple
        self.calls = 0

    @property
    def tile_multiple(self) -> int:
        return self.m

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        return self.body(noisy)


def _run(net):
    return lambda crop, t: restore_inputs_tiled(net, crop, tile=t, overlap=4, like="noisy", context=2)


def test_auto_picks_a_valid_cached_tile():
    _AUTO.clear()
    net = LocalNet(multiple=3).eval()
    inputs = {"noisy": torch.rand(1, 1, 200, 170), "sigma": torch.tensor([0.1])}
    cands = (20, 40, 64, 100, 400)
    t = auto_tile(net, inputs, _run(net), overlap=4, candidates=cands, whole_max=0)
    assert t % 3 == 0 and t > 4 and t <= 1.15 * 100  # a timed side or a balanced one near it
    n = net.calls
    assert auto_tile(net, inputs, _run(net), overlap=4, candidates=cands, whole_max=0) == t and net.calls == n  # cached
    small = {"noisy": torch.rand(1, 1, 50, 31)}
    assert auto_tile(net, small, _run(net), overlap=4, candidates=cands) >= 50  # small: whole, no timing
    assert net.calls == n
    assert auto_tile(net, inputs, _run(net), overlap=4, candidates=(16, 32), whole_max=0, scale=2) in (15, 6)


def test_balanced_sides_waste_less_overlap():
    assert _count(1024, 512, 32, 1) == 3  # 512-px tiles with 32 px of overlap need 3 per axis on 1024 px...
    sides = _balanced_sides(512, 1024, 1024, 32, 1)
    assert 528 in sides and _count(1024, 528, 32, 1) == 2  # ... 528-px tiles only 2 (4 tiles instead of 9)
    for s in _balanced_sides(363, 2048, 1500, 33, 33):  # aligned, and never more tiles than the timed side
        assert s % 33 == 0 and _count(2048, s, 33, 33) <= _count(2048, 363, 33, 33) and s <= 1.15 * 363


def test_tiled_equals_whole_where_the_physics_tiles_exactly():
    _AUTO.clear()
    net = LocalNet().eval()
    inputs = {"noisy": torch.rand(1, 1, 150, 130), "sigma": torch.tensor([0.1])}
    t = auto_tile(net, inputs, _run(net), overlap=4, candidates=(32, 48, 64), whole_max=0)
    assert t < 130  # really tiled
    tiled = restore_inputs_tiled(net, inputs, tile=t, overlap=4, like="noisy", context=2)
    with torch.no_grad():
        whole = net(**inputs)
    assert (tiled - whole).abs().max() <= 1e-4


def test_progress_bar_only_when_asked(capsys):
    net = LocalNet().eval()
    inputs = {"noisy": torch.rand(1, 1, 100, 100)}
    restore_inputs_tiled(net, inputs, tile=32, overlap=4)  # default: off
    with tile_progress(None):  # on a terminal only: pytest's stderr is not one
        restore_inputs_tiled(net, inputs, tile=32, overlap=4)
    with tile_progress(False):
        restore_inputs_tiled(net, inputs, tile=32, overlap=4)
    assert capsys.readouterr().err == ""
    buf = io.StringIO()
    with tile_progress(True, file=buf):
        restore_inputs_tiled(net, inputs, tile=32, overlap=4)
    assert "tiles" in buf.getvalue()


def test_restore_file_auto_tile_cs(tmp_path):
    torch.manual_seed(0)
    net = zoo.create("lorun-cs-r25", stages=2, widths=[8, 16]).eval()
    img = (np.random.default_rng(0).random((70, 90)) * 255).astype(np.uint8)
    src = tmp_path / "in.png"
    Image.fromarray(img).save(src)
    msg, written = restore_file(get_task("cs"), net, str(src), str(tmp_path / "out.png"))  # tile="auto": small → whole
    assert "whole (--tile auto" in msg and written == [tmp_path / "out.png"]
    x = torch.from_numpy(img).float()[None, None] / 255
    whole = get_task("cs").to_image(simulate_and_restore(net, x)[0].clamp(0, 1))
    assert np.abs(np.asarray(Image.open(written[0])).astype(int) - whole.astype(int)).max() <= 1


def test_tile_arg():
    assert tile_arg("auto") == "auto" and tile_arg("264") == 264
    with pytest.raises(argparse.ArgumentTypeError, match="auto"):
        tile_arg("big")
