"""CASSI protocol: floor, metrics, pictures, published rows, `zoo restore` of .mat measurements."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
import torch

import zoo
from zoo.tasks import get_task as get_protocol, restore_file

from cassi_fixtures import real_data_root_cassi  # noqa: F401  (fixture)

TINY = dict(widths=(8, 16), stages=2, mask_size=24, step_width=8)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("ckpt")
    net = zoo.create("lorun-cassi-9stg", **TINY)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"))
    cfg = {"model": "lorun-cassi-9stg", "config": {**TINY, "mask_init": "checkpoint", "widths": [8, 16]}}
    (d / "config.json").write_text(json.dumps(cfg))
    return d, net


def test_protocol_basics():
    from zoo.metrics import sam as sam_safe

    proto = get_protocol("cassi")
    assert proto.sample(zoo.create("lorun-cassi-9stg", **TINY))["target"].shape == (1, 28, 256, 256)
    rows = proto.published_rows("CAVE-2", "sim")
    assert rows and all("different test set" in r["method"] for r in rows)
    t = torch.rand(1, 28, 8, 8)
    t[..., 0, 0] = 0  # an all-zero reference spectrum is skipped, not NaN
    assert torch.isfinite(sam_safe(t * 0.9, t)).all() and float(sam_safe(t, t)) < 0.1
    img = proto.to_image(torch.rand(1, 28, 10, 12))
    assert img.shape == (10, 12, 3) and img.dtype == np.uint8


def test_floor_is_gap_tv_and_beats_init():
    from zoo.metrics import psnr

    proto = get_protocol("cassi")
    net = zoo.create("lorun-cassi-9stg", **TINY).eval()
    x = torch.nn.functional.interpolate(torch.rand(1, 28, 6, 6), size=(24, 24), mode="nearest")
    inp = proto.inputs(net, {"target": x})
    base = proto.floor(net, inp)
    assert base.shape == x.shape
    assert float(psnr(base, x)) > float(psnr(net.physics.A_dagger(inp["y"]), x))
    assert proto.setting(net) == "sim" and proto.floor_name == "GAP-TV"


def test_restore_mat_measurement_cli(tiny_ckpt, tmp_path, monkeypatch):
    from zoo.cli.main import main

    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "no_manifest.json"))  # unpublished weights: no record

    d, net = tiny_ckpt
    x = torch.rand(1, 28, 24, 24)
    y = net.physics.A(x)
    sio.savemat(tmp_path / "meas.mat", {"meas": y[0, 0].numpy()})
    sio.savemat(tmp_path / "mask.mat", {"mask": net.physics.mask.numpy()})
    with pytest.warns(UserWarning, match="without sha256"):
        main(["restore", "lorun-cassi-9stg", str(tmp_path / "meas.mat"), "-o", str(tmp_path / "out.mat"),
              "--weights", str(d), "--mask", str(tmp_path / "mask.mat")])
    cube = sio.loadmat(str(tmp_path / "out.mat"))["cube"]
    assert cube.shape == (24, 24, 28)
    assert (tmp_path / "out.png").is_file()
    with torch.no_grad():
        ref = net.eval()(y=y).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(cube, ref, atol=1e-5)


@pytest.mark.parametrize(
    "arr, match",
    [
        (np.random.rand(24, 24, 28), "3-D array is a cube"),
        (np.random.rand(24, 60), "measurement/mask size mismatch"),
        (np.full((24, 78), np.nan), "NaN"),
    ],
)
def test_restore_bad_measurements(tiny_ckpt, tmp_path, arr, match):
    d, net = tiny_ckpt
    sio.savemat(tmp_path / "bad.mat", {"meas": arr})
    with pytest.raises(ValueError, match=match):
        restore_file(get_protocol("cassi"), net.eval(), str(tmp_path / "bad.mat"), str(tmp_path / "o.mat"))


def test_restore_real_capture_scaling(tiny_ckpt, tmp_path):
    from zoo.models.lorun_cassi import operator_to_real, real_to_operator

    d, net = tiny_ckpt
    y = net.physics.A(torch.rand(1, 28, 24, 24))
    meas = operator_to_real(y, 28)
    assert torch.allclose(real_to_operator(meas, 28), y)
    sio.savemat(tmp_path / "scene.mat", {"meas_real": meas[0, 0].numpy()})
    msg, _ = restore_file(get_protocol("cassi"), net.eval(), str(tmp_path / "scene.mat"), str(tmp_path / "r.png"))
    assert "real capture" in msg and (tmp_path / "r.mat").is_file()


def test_load_cave2(real_data_root_cassi):
    items = get_protocol("cassi").load_testset("CAVE-2", str(real_data_root_cassi))
    assert [n for n, _ in items] == ["cloth_ms_256", "real_and_fake_apples_ms_256"]
    assert all(b["target"].shape == (1, 28, 256, 256) for _, b in items)


def test_real_capture_script_on_fake_data(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    from safetensors.torch import save_file

    from fakedata_cassi import make

    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "no_manifest.json"))  # unpublished weights: no record
    root = make(tmp_path / "data")
    cfg = dict(TINY, mask_size=96, noise=True)
    net = zoo.create("lorun-cassi-9stg-real", **cfg)
    d = tmp_path / "ckpt"
    d.mkdir()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model": "lorun-cassi-9stg-real",
                                               "config": {**cfg, "widths": [8, 16], "mask_init": "checkpoint"}}))
    spec = importlib.util.spec_from_file_location("real_cassi", Path(__file__).parents[1] / "experiments" / "studies" / "real_cassi.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.warns(UserWarning, match="without sha256"):
        mod.main(["--weights", str(d), "--data-root", str(root), "--scenes", "1", "--gaptv", "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "scene1_lorun_srgb.png").is_file() and (tmp_path / "out" / "scene1_gaptv_srgb.png").is_file()
    assert (tmp_path / "out" / "scene1_bands_lorun_vs_dgsmp.png").is_file()


def test_spectra_plot_gives_each_curve_its_own_colour():
    """The reference is black and no method reuses black or another method's colour (9 methods in the CASSI bench)."""
    from zoo.tasks.cassi import WAVELENGTHS, _plot

    curves = {f"c{k}": np.full(len(WAVELENGTHS), 0.1 * (k + 1)) for k in range(10)}
    img = np.asarray(_plot(curves, "t", size=(420, 300)))
    legend = [tuple(img[300 + 6 + 12 * k, 40 + 10]) for k in range(len(curves))]
    assert legend[0] == (0, 0, 0)
    assert len(set(legend)) == len(legend), legend
