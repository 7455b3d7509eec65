"""Pansharpening metrics (with the Pléiades calibration), and the SSO-PGA data modules on fake data."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.metrics.pansharpen import _onion_mult, ergas, hqnr, psnr_ms, q2n, reduced_metrics, scc, uiqi
from zoo.metrics.pansharpen import sam_toolbox as sam


def test_perfect_scores_and_orders():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 8, 64, 64, generator=g) * 0.8 + 0.1
    assert torch.allclose(sam(x, x), torch.zeros(2), atol=1e-3)
    assert torch.allclose(ergas(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(q2n(x, x), torch.ones(2), atol=1e-6)
    assert torch.allclose(scc(x, x), torch.ones(2), atol=1e-6)
    y = x + 0.05 * torch.randn(x.shape, generator=g)
    z = x + 0.1 * torch.randn(x.shape, generator=g)
    assert (sam(y, x) < sam(z, x)).all() and (ergas(y, x) < ergas(z, x)).all()
    assert (q2n(y, x) > q2n(z, x)).all() and (psnr_ms(y, x) > psnr_ms(z, x)).all()


def test_sam_of_scaled_spectra_is_zero_and_ergas_known_value():
    x = torch.rand(1, 4, 16, 16) + 0.1
    assert float(sam(2 * x, x)[0]) < 1e-3
    # ERGAS of a uniform relative error e: 100/r · e
    assert float(ergas(1.1 * x, x)[0]) == pytest.approx(
        100 / 4 * math.sqrt(float(((0.1 * x) ** 2).flatten(2).mean(2).div(x.flatten(2).mean(2) ** 2).mean())), rel=1e-5)


def test_onion_product_is_quaternion_product_for_four_bands():
    a, b = torch.randn(4, 1), torch.randn(4, 1)
    # Hamilton product in the toolbox's convention: norms multiply
    p = _onion_mult(a, b)
    assert float(p.norm()) == pytest.approx(float(a.norm() * b.norm()), rel=1e-5)
    o1, o2 = torch.randn(8, 1), torch.randn(8, 1)
    assert float(_onion_mult(o1, o2).norm()) == pytest.approx(float(o1.norm() * o2.norm()), rel=1e-5)  # octonions


def test_q2n_pads_bands_and_sizes():
    x = torch.rand(1, 3, 40, 50) + 0.1
    assert float(q2n(x, x)[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(uiqi(x[0, 0], x[0, 0])) == pytest.approx(1.0)


def test_hqnr_of_an_interpolated_image():
    from zoo.physics.pansharpen import Pansharpening, interp23tap

    op = Pansharpening("QB")
    ms = torch.rand(1, 4, 20, 20) * 0.5 + 0.2
    pan = torch.rand(1, 1, 80, 80)
    r = hqnr(interp23tap(ms, 4), ms, pan, op, pan_gain=0.15)
    assert set(r) == {"d_lambda", "d_s", "hqnr"}
    assert 0 <= float(r["d_lambda"][0]) < 0.5 and 0 <= float(r["hqnr"][0]) <= 1


def test_pleiades_interpolation_calibration(real_data_root):
    """SAM/ERGAS/PSNR of 23-tap interpolation on the Pléiades file = the published EXP row."""
    from zoo.data.pansharpen import read_pansharpen
    from zoo.physics.pansharpen import interp23tap

    f = real_data_root / "pansharpen" / "reduced" / "Pleiades_test.mat"
    if not f.is_file():
        pytest.skip(f"{f} not available")
    s = read_pansharpen(f)[0]
    m = reduced_metrics(interp23tap(s["ms"][None], 4), s["gt"][None], ratio=4, border=0)
    assert m["sam"] == pytest.approx(4.67, abs=0.02)
    assert m["ergas"] == pytest.approx(5.74, abs=0.02)
    assert m["psnr"] == pytest.approx(26.6, abs=0.1)


def test_simulated_operator_reproduces_the_test_files(real_data_root):
    """Our MTF + decimation operator regenerates the published LRMS from GT (Wald protocol)."""
    from zoo.data.pansharpen import read_pansharpen
    from zoo.physics.pansharpen import Pansharpening

    for name, sensor in (("Pleiades_test", "Pleiades"), ("WV3_test", "WV3")):
        f = real_data_root / "pansharpen" / "reduced" / f"{name}.mat"
        if not f.is_file():
            pytest.skip(f"{f} not available")
        s = read_pansharpen(f)[0]
        sim = Pansharpening(sensor).A_ms(s["gt"][None])
        assert float((sim - s["ms"][None]).norm() / s["ms"].norm()) < 0.01


# -- data modules on fake data -----------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    from fakedata_ssopga import make

    return make(tmp_path_factory.mktemp("ssopga_data"))


def test_pansharpen_datamodule(fake_root):
    from zoo.data.pansharpen import PansharpenDataModule

    dm = PansharpenDataModule(data_root=str(fake_root), reduce_sensor="WV3", bands=8, patch=32, batch_size=2,
                              samples_per_epoch=4, missing=1.0)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["target"].shape == (2, 8, 32, 32) and b["inputs"]["ms"].shape == (2, 8, 8, 8)
    assert b["inputs"]["pan"].shape == (2, 1, 32, 32) and (b["inputs"]["ms_mask"].sum(1) < 8).all()
    assert len(dm.train_set.pairs) == 8  # the 8 flips/rotations of the one full image large enough
    dm.setup("test")
    t = dm.test_sets[0][0]
    assert t["target"].shape == (8, 64, 64) and t["inputs"]["ms"].shape == (8, 16, 16)


def test_pansharpen_band_map(fake_root):
    """8-band WorldView files become B, G, R, NIR training images of a 4-band model (bands as mapped)."""
    from zoo.data.pansharpen import PansharpenDataModule

    train = ["pansharpen/full/imgWV2.mat", "pansharpen/full/imgGE1.mat"]
    plain = PansharpenDataModule(train=train, test=[], data_root=str(fake_root), reduce_sensor="Pleiades", bands=4, patch=32)
    mapped = PansharpenDataModule(train=train, test=[], data_root=str(fake_root), reduce_sensor="Pleiades", bands=4,
                                  patch=32, band_map={8: [1, 2, 4, 6]})
    (tp, _), (tm, _) = plain._train_pairs(), mapped._train_pairs()
    assert len(tm) == len(tp) + 8 and all(s["gt"].shape[0] == 4 for s in tm)
    eight = PansharpenDataModule(train=train[:1], test=[], data_root=str(fake_root), reduce_sensor="WV3", bands=8, patch=32)
    t8 = eight._train_pairs()[0]
    for k in range(8):  # Wald's ground truth is the original MS: the mapped bands exactly
        assert torch.equal(tm[k]["gt"], t8[k]["gt"][[1, 2, 4, 6]])
    with pytest.raises(ValueError, match="indices must lie"):
        PansharpenDataModule(band_map={8: [0, 8]})


def test_pansharpen_readers(fake_root):
    from zoo.data.pansharpen import read_pansharpen

    full = read_pansharpen(fake_root / "pansharpen/full/imgGE1.mat")[0]
    assert full["kind"] == "full" and full["ms"].shape == (4, 80, 80) and float(full["ms"].max()) <= 1
    assert full["sensor"] == "GeoEye1"
    h5 = fake_root / "pansharpen/h5/train_tiny.h5"
    if h5.is_file():
        s = read_pansharpen(h5)
        assert len(s) == 3 and s[0]["gt"].shape == (8, 64, 64) and s[0]["ms"].shape == (8, 16, 16)
        assert float(s[0]["gt"].max()) <= 1.0


def test_pansharpen_refuses_test_files_for_training(fake_root):
    from zoo.data.pansharpen import PansharpenDataModule
    from zoo.data.paths import DatasetNotFoundError

    dm = PansharpenDataModule(train=["pansharpen/reduced/WV3_test.mat"], data_root=str(fake_root))
    with pytest.raises(ValueError, match="never train"):
        dm.setup("fit")
    with pytest.raises(DatasetNotFoundError, match="Expected"):
        PansharpenDataModule(train=["nowhere.mat"], data_root=str(fake_root)).setup("fit")


def test_flash_datamodule(fake_root):
    from zoo.data.flash import FlashDataModule, find_pairs

    assert len(find_pairs("flash/faid_test12", fake_root)) == 2
    assert all(p[3] for p in find_pairs("flash/faid32_half", fake_root))  # flash-only files
    dm = FlashDataModule(data_root=str(fake_root), patch=48, batch_size=2, samples_per_epoch=4, val_images=1)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["inputs"]["noisy"].shape == (2, 3, 48, 48) and b["inputs"]["sigma"].shape == (2,)
    assert ((b["inputs"]["sigma"] >= 5 / 255) & (b["inputs"]["sigma"] <= 80 / 255)).all()
    dm.setup("test")
    assert dm.test_names == ["sigma25", "sigma50", "sigma75"]
    a, c = dm.test_sets[0][0], dm.test_sets[0][0]
    assert torch.equal(a["inputs"]["noisy"], c["inputs"]["noisy"])  # fixed test noise
    with pytest.raises(ValueError, match="never train"):
        FlashDataModule(train_dirs=["flash/faid_test12"], data_root=str(fake_root)).setup("fit")


def test_flash_illumination_jitter(fake_root):
    """Relit training pairs: sRGB in [0, 1], guide mean near the target's (auto-exposed flash shot),
    the light really varies between samples, and a negative jitter is refused."""
    from zoo.data.flash import FlashDataModule, FlashPatches, srgb_to_linear

    dm = FlashDataModule(data_root=str(fake_root), patch=32, batch_size=8, samples_per_epoch=8, val_images=1,
                         illumination_jitter=1.0)
    dm.setup("fit")
    assert all(len(it) == 3 for it in dm.train_set.images)  # flash-only images kept for relighting
    b = next(iter(dm.train_dataloader()))
    x, g = b["target"], b["inputs"]["flash"]
    assert x.min() >= 0 and x.max() <= 1 and g.min() >= 0 and g.max() <= 1
    ratio = srgb_to_linear(g).mean((1, 2, 3)) / srgb_to_linear(x).mean((1, 2, 3))
    assert ((ratio > 2 ** -0.5 * 0.85) & (ratio < 2 ** 0.5 * 1.15)).all()
    v = dm.val_set[0]  # validation guides auto-exposed like the training ones (mean of the ambient)
    assert srgb_to_linear(v["inputs"]["flash"]).mean() == pytest.approx(float(srgb_to_linear(v["target"]).mean()), rel=0.05)
    base = FlashDataModule(data_root=str(fake_root), patch=32, batch_size=8, samples_per_epoch=8, val_images=1)
    base.setup("fit")
    amb = base.train_set.images[0][0]
    means = {round(float(dm.train_set._relight(torch.stack(dm.train_set.images[0])[..., :32, :32],
                                                __import__("random").Random(s))[0].mean()), 3) for s in range(4)}
    assert len(means) > 1 and amb.shape[0] == 3
    with pytest.raises(ValueError, match="stops"):
        FlashPatches([(amb, amb)], patch=8, illumination_jitter=-1)
