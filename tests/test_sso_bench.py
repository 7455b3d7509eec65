"""Benchmark protocols of the SSO-PGA tasks on fake data: loading, floors, samples, ``zoo restore``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo.bench.protocols import get_protocol
from zoo.bench.published import published_rows

TINY = {"stages": 2, "widths": (8, 16)}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    from fakedata_ssopga import make

    return make(tmp_path_factory.mktemp("ssopga_bench"))


def test_pansharpen_protocol(fake_root, tmp_path):
    p = get_protocol("pansharpen")
    items = p.load("WV3_test", str(fake_root))
    assert len(items) == 1 and items[0][1]["inputs"]["ms"].shape == (1, 8, 16, 16)
    net = zoo.create("ssopga-pansharpen-wv", **TINY).eval()
    b = items[0][1]
    fl = p.floor(net, b["inputs"])
    assert fl.shape == b["target"].shape
    assert set(p.metrics) == {"sam", "ergas", "q2n", "scc", "psnr"}
    assert p.setting(net) == "x4" and published_rows("pansharpen", "Pleiades_test", "x4")
    assert p.to_image(b["target"]).shape == (64, 64, 3)
    s = p.sample()["target"]
    with torch.no_grad():
        assert net(**p.inputs(net, {"target": s})).shape == s.shape
    msg = p.restore_file(net, str(fake_root / "pansharpen/full/WV3_example.mat"), str(tmp_path / "f.mat"))
    import scipy.io as sio

    assert sio.loadmat(tmp_path / "f.mat")["fused"].shape == (64, 64, 8) and "fused" in msg
    p.restore_file(net, str(fake_root / "pansharpen/full/WV3_example.mat"), str(tmp_path / "f.png"))
    with pytest.raises(FileExistsError):
        p.restore_file(net, str(fake_root / "pansharpen/full/WV3_example.mat"), str(tmp_path / "f.png"))


def test_flash_protocol(fake_root, tmp_path):
    p = get_protocol("flash")
    assert sorted(p.datasets) == ["FAID12-s25", "FAID12-s50", "FAID12-s75"]
    a, b = p.load("FAID12-s50", str(fake_root)), p.load("FAID12-s50", str(fake_root))
    assert torch.equal(a[0][1]["inputs"]["noisy"], b[0][1]["inputs"]["noisy"])  # seeded noise
    assert float(a[0][1]["inputs"]["sigma"][0]) == pytest.approx(50 / 255)
    net = zoo.create("ssopga-flash", **TINY).eval()
    inp = a[0][1]["inputs"]
    from zoo.metrics import psnr

    fl = p.floor(net, inp)
    assert float(psnr(fl, a[0][1]["target"])[0]) > float(psnr(inp["noisy"], a[0][1]["target"])[0])
    s = p.sample()
    with torch.no_grad():
        assert net(**s["inputs"]).shape == s["target"].shape
    src = fake_root / "flash/faid_test12/ambient/testset_nonflash_1.png"
    p.restore_file(net, str(src), str(tmp_path / "d.png"), flash=str(fake_root / "flash/faid_test12/flash/testset_flash_1.png"))
    from PIL import Image

    assert np.asarray(Image.open(tmp_path / "d.png")).shape == (64, 80, 3)
    with pytest.raises(FileNotFoundError, match="flash"):
        p.restore_file(net, str(tmp_path / "d.png"), str(tmp_path / "e.png"))
