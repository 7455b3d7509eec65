"""Benchmark protocols of the SSO-PGA tasks on fake data: loading, floors, samples, ``zoo restore``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo.tasks import get_task as get_protocol, restore_file

TINY = {"stages": 2, "widths": (8, 16)}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    from fakedata_ssopga import make

    return make(tmp_path_factory.mktemp("ssopga_bench"))


def test_pansharpen_protocol(fake_root, tmp_path):
    p = get_protocol("pansharpen")
    items = p.load_testset("WV3_test", str(fake_root))
    assert len(items) == 1 and items[0][1]["inputs"]["ms"].shape == (1, 8, 16, 16)
    net = zoo.create("ssopga-pansharpen-wv", **TINY).eval()
    b = items[0][1]
    fl = p.floor(net, b["inputs"])
    assert fl.shape == b["target"].shape
    assert set(p.metrics) == {"sam", "ergas", "q2n", "scc", "psnr"}
    assert p.setting(net) == "x4" and p.published_rows("Pleiades_test", "x4")
    assert p.to_image(b["target"]).shape == (64, 64, 3)
    s = p.sample(net)["target"]
    with torch.no_grad():
        assert net(**p.inputs(net, {"target": s})).shape == s.shape
    msg, _ = restore_file(p, net, str(fake_root / "pansharpen/full/WV3_example.mat"), str(tmp_path / "f.mat"))
    import scipy.io as sio

    assert sio.loadmat(tmp_path / "f.mat")["fused"].shape == (64, 64, 8) and "fused" in msg
    restore_file(p, net, str(fake_root / "pansharpen/full/WV3_example.mat"), str(tmp_path / "f.png"))
    with pytest.raises(FileExistsError):
        restore_file(p, net, str(fake_root / "pansharpen/full/WV3_example.mat"), str(tmp_path / "f.png"))


def test_flash_protocol(fake_root, tmp_path):
    p = get_protocol("flash")
    assert sorted(p.datasets) == ["FAID12-s25", "FAID12-s50", "FAID12-s75"]
    a, b = p.load_testset("FAID12-s50", str(fake_root)), p.load_testset("FAID12-s50", str(fake_root))
    assert torch.equal(a[0][1]["inputs"]["noisy"], b[0][1]["inputs"]["noisy"])  # seeded noise
    assert float(a[0][1]["inputs"]["sigma"][0]) == pytest.approx(50 / 255)
    net = zoo.create("ssopga-flash", **TINY).eval()
    inp = a[0][1]["inputs"]
    from zoo.metrics import psnr

    fl = p.floor(net, inp)
    assert float(psnr(fl, a[0][1]["target"])[0]) > float(psnr(inp["noisy"], a[0][1]["target"])[0])
    s = p.sample(net)
    with torch.no_grad():
        assert net(**s["inputs"]).shape == s["target"].shape
    src = fake_root / "flash/faid_test12/ambient/testset_nonflash_1.png"
    restore_file(p, net, str(src), str(tmp_path / "d.png"), flash=str(fake_root / "flash/faid_test12/flash/testset_flash_1.png"))
    from PIL import Image

    assert np.asarray(Image.open(tmp_path / "d.png")).shape == (64, 80, 3)
    with pytest.raises(FileNotFoundError, match="flash"):
        restore_file(p, net, str(tmp_path / "d.png"), str(tmp_path / "e.png"))


def test_runner_reference_free_band_filter_and_global_psnr(fake_root, tmp_path):
    """`zoo bench` scores full-resolution files with HQNR, skips files of another band count and
    reports the global-MSE PSNR of the flash protocol (checked against a direct computation)."""
    import json
    import math

    from zoo.bench import run_bench

    import scipy.io as sio
    from fakedata_ssopga import make

    root = make(tmp_path / "data")  # the released checkpoints (in the checkout) on fake files
    rng = np.random.default_rng(0)
    sio.savemat(root / "pansharpen/full/WV3_example.mat", {  # one full-resolution file of >= one 32x32 Q2n block
        "I_MS_LR": (rng.uniform(0.2, 0.6, (40, 40, 8)) * 2047).astype(np.uint16),
        "I_PAN": (rng.uniform(0.2, 0.6, (160, 160)) * 2047).astype(np.uint16)})
    with pytest.raises(ValueError, match="too small for 32x32 blocks"):
        from zoo.metrics.pansharpen import q2n

        q2n(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16))
    s = run_bench(["ssopga-pansharpen-wv"], tmp_path / "ps", datasets=["WV3_test", "Pleiades_test", "WV3_full"],
                  data_root=str(root), costs=False, grids=True, progress=False)
    assert (tmp_path / "ps/grids/ssopga-pansharpen-wv/WV3_full").is_dir()
    res = s["models"]["ssopga-pansharpen-wv"]["datasets"]
    assert "Pleiades_test" not in res  # 4-band file, 8-band model
    assert {"d_lambda", "d_s", "hqnr"} <= set(res["WV3_full"]) and 0 <= res["WV3_full"]["hqnr"] <= 1
    assert res["WV3_full"]["hqnr"] == pytest.approx((1 - res["WV3_full"]["d_lambda"]) * (1 - res["WV3_full"]["d_s"]))
    assert "sam" in res["WV3_test"] and res["WV3_test"]["min_iterate"] >= 0
    assert "hqnr" in s["floor"]["WV3_full/x4"]
    f = run_bench(["ssopga-flash"], tmp_path / "fl", datasets=["FAID12-s25"], data_root=str(fake_root),
                  costs=False, grids=False, progress=False)
    r = f["models"]["ssopga-flash"]["datasets"]["FAID12-s25"]
    net = zoo.load("ssopga-flash").eval()
    se = n = 0
    for _, b in get_protocol("flash").load_testset("FAID12-s25", str(fake_root)):
        with torch.no_grad():
            y = net(**b["inputs"]).clamp(0, 1)
        se, n = se + float(((y - b["target"]) ** 2).sum()), n + b["target"].numel()
    assert r["psnr_global"] == pytest.approx(10 * math.log10(n / se), abs=1e-3)
    assert "psnr_global" in json.loads((tmp_path / "fl" / "summary.json").read_text())["floor"]["FAID12-s25/sigma-aware"]
    assert "psnr_global" in (tmp_path / "fl" / "summary.md").read_text()
