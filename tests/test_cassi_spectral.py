"""Spectral-fidelity training for CASSI (issue 19): the spectral loss terms and the real-cube mixture + validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

from zoo.metrics import sam as sam_metric
from zoo.training.module import (SPECTRAL_TERMS, parse_loss, relative_spectral_loss, spectral_angle_loss,
                                 spectral_gradient_loss)

TERMS = list(SPECTRAL_TERMS.items())


def _cube(seed: int = 0, n: int = 2, c: int = 28, s: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, s, s, generator=g) * 0.9 + 0.05


@pytest.mark.parametrize("name,fn", TERMS)
def test_zero_for_identical_cubes(name, fn):
    x = _cube().requires_grad_(True)
    out = fn(x, x.detach())
    assert float(out.detach()) < 1e-4, (name, float(out.detach()))
    out.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name,fn", TERMS)
def test_finite_gradient_at_zero_pixels(name, fn):
    t = _cube(1)
    t[:, :, :2] = 0  # black reference pixels
    p = _cube(2)
    p[:, :, 2:4] = 0  # black estimates where the reference is not
    p[:, :, :1] = 0   # black estimate on black reference
    p = p.requires_grad_(True)
    out = fn(p, t)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(p.grad).all(), name
    z = torch.zeros(1, 28, 4, 4, requires_grad=True)  # an all-zero cube against an all-zero reference
    fn(z, torch.zeros(1, 28, 4, 4)).backward()
    assert torch.isfinite(z.grad).all(), name


@pytest.mark.parametrize("name,fn", TERMS)
def test_grows_with_the_error(name, fn):
    t = _cube(3)
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(4))
    small, big = fn(t + 0.01 * noise, t), fn(t + 0.1 * noise, t)
    assert 0 < float(small) < float(big), name


def test_sam_term_matches_the_metric():
    t, p = _cube(5), _cube(6)
    t[:, :, 0, 0] = 0  # both skip all-zero reference pixels
    deg = torch.rad2deg(spectral_angle_loss(p, t))
    ref = sam_metric(p, t).mean()  # the metric averages per image; equal pixel counts: the same mean
    assert abs(float(deg) - float(ref)) < 1e-2, (float(deg), float(ref))


def test_sam_term_sees_shape_in_dark_pixels():
    """A wrongly shaped spectrum costs the same angle at 1 % brightness as at full: √MSE barely sees it there."""
    t = _cube(7)
    wrong = t.flip(1)  # the same values, the spectrum reversed
    for scale in (1.0, 0.01):
        assert abs(float(spectral_angle_loss(wrong * scale, t * scale)) - float(spectral_angle_loss(wrong, t))) < 1e-4
    rmse = lambda a, b: float(((a - b) ** 2).mean().sqrt())  # noqa: E731
    assert rmse(wrong * 0.01, t * 0.01) < 0.02 * rmse(wrong, t)


def test_spectral_gradient_ignores_level():
    t = _cube(8)
    assert float(spectral_gradient_loss(t + 0.1, t)) < 1e-5  # an offset keeps the spectral slope
    assert float(relative_spectral_loss(t + 0.1, t)) > 0.05


def test_parse_loss():
    assert parse_loss("rmse") == ("rmse", {})
    assert parse_loss("rmse+sam") == ("rmse", {"sam": 0.1})
    assert parse_loss("l1+sam+sgrad", {"sam": 0.3}) == ("l1", {"sam": 0.3, "sgrad": 1.0})
    with pytest.raises(ValueError, match="must start with"):
        parse_loss("sam")
    with pytest.raises(ValueError, match="spectral terms are"):
        parse_loss("rmse+angle")
    with pytest.raises(ValueError, match="does not use"):
        parse_loss("rmse", {"sam": 0.1})
    with pytest.raises(ValueError, match=">= 0"):
        parse_loss("rmse+sam", {"sam": -1.0})


def test_module_loss_adds_the_terms():
    from zoo.training.lorun_cassi import LoRunCASSIModule

    cfg = {"stages": 2, "widths": [8, 16], "bands": 28, "mask_size": 16, "mask_init": "random"}
    plain = LoRunCASSIModule(model="lorun-cassi-9stg", model_config=cfg, loss="rmse")
    spec = LoRunCASSIModule(model="lorun-cassi-9stg", model_config=cfg, loss="rmse+sam",
                            spectral_weights={"sam": 0.5})
    p, t = _cube(9), _cube(10)
    assert torch.allclose(spec._loss(p, t), plain._loss(p, t) + 0.5 * spectral_angle_loss(p, t))
    with pytest.raises(ValueError, match="must start with"):
        LoRunCASSIModule(model="lorun-cassi-9stg", model_config=cfg, loss="ssim")


# -- the real cube in the mixture --------------------------------------------------------------------------------
@pytest.fixture
def column_root(tmp_path):
    """A data root whose real cube encodes its column: value = (column + 1) / W, flat over the bands."""
    h, w = 40, 96
    col = (np.arange(w) + 1) / w
    cube = np.broadcast_to(col[None, :, None], (h, w, 31))
    d = tmp_path / "cassi" / "cave256_train"
    d.mkdir(parents=True)
    sio.savemat(d / "balloons_ms_256.mat", {"Omsi": (cube * 60000).astype(np.uint16)})
    (tmp_path / "cassi" / "cave256").mkdir()
    rgb = tmp_path / "images" / "T91"
    rgb.mkdir(parents=True)
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((24, 24, 3)) * 255).astype(np.uint8)).save(rgb / f"{i}.png")
    return tmp_path, w


def test_real_cube_held_out_strip(column_root):
    from zoo.data.cassi import CASSIDataModule

    root, w = column_root
    dm = CASSIDataModule(data_root=str(root), rgb_dirs=["images/T91"], remote_dir=None, patch=16, samples_per_epoch=40,
                         val_images=1, real_cubes=["cassi/cave256_train/balloons_ms_256.mat"], real_prob=1.0,
                         real_val_width=24)
    dm.setup("fit")
    assert dm.val_names == ["val", "real"]
    edge = 24 / w  # columns 0..23 are held out: values <= 24/w, training values >= 25/w
    train = torch.stack([dm.train_set[i]["target"] for i in range(40)])
    assert float(train.min()) > edge + 0.5 / w
    real_val = torch.stack([dm.real_val_set[i]["target"] for i in range(len(dm.real_val_set))])
    assert len(dm.real_val_set) == 16 and float(real_val.max()) < edge + 0.5 / w
    again = torch.stack([dm.real_val_set[i]["target"] for i in range(16)])
    assert torch.equal(real_val, again)  # fixed crops
    loaders = dm.val_dataloader()
    assert isinstance(loaders, list) and len(loaders) == 2
    alone = CASSIDataModule(data_root=str(root), rgb_dirs=[], remote_dir=None, patch=16, real_prob=1.0,
                            real_cubes=["cassi/cave256_train/balloons_ms_256.mat"], real_val_width=24)
    alone.setup("fit")  # real cubes only: the held-out strip is the one validation set
    assert alone.val_names == ["val"] and float(alone.val_set[0]["target"].max()) < edge + 0.5 / w


def test_real_cube_bad_options(column_root):
    from zoo.data.cassi import CASSIDataModule
    from zoo.data.paths import DatasetNotFoundError

    root, _ = column_root
    f = ["cassi/cave256_train/balloons_ms_256.mat"]
    with pytest.raises(ValueError, match="real_prob is 0"):
        CASSIDataModule(data_root=str(root), real_cubes=f)
    with pytest.raises(ValueError, match="at least patch"):
        CASSIDataModule(data_root=str(root), real_cubes=f, real_prob=0.3, patch=64, real_val_width=32)
    with pytest.raises(ValueError, match="CAVE-2 is the test set"):
        CASSIDataModule(data_root=str(root), real_cubes=["cassi/cave256/cloth_ms_256.mat"], real_prob=0.3)
    dm = CASSIDataModule(data_root=str(root), rgb_dirs=[], remote_dir=None, patch=16, real_prob=0.3,
                         real_cubes=["cassi/cave256_train/missing.mat"], real_val_width=16)
    with pytest.raises(DatasetNotFoundError, match="missing.mat"):
        dm.setup("fit")
    dm = CASSIDataModule(data_root=str(root), rgb_dirs=[], remote_dir=None, patch=16, real_prob=0.3,
                         real_cubes=f, real_val_width=90)
    with pytest.raises(ValueError, match="lower real_val_width"):
        dm.setup("fit")


def test_validation_logs_the_real_set(column_root):
    """One validation pass of a tiny LoRun-CASSI logs val/* and val/real/* (PSNR and SAM among them)."""
    import lightning as L

    from zoo.data.cassi import CASSIDataModule
    from zoo.training.lorun_cassi import LoRunCASSIModule

    root, _ = column_root
    dm = CASSIDataModule(data_root=str(root), rgb_dirs=["images/T91"], remote_dir=None, patch=16, samples_per_epoch=4,
                         val_images=1, batch_size=2, real_cubes=["cassi/cave256_train/balloons_ms_256.mat"],
                         real_prob=1.0,
                         real_val_width=24)
    cfg = {"stages": 2, "widths": [8, 16], "bands": 28, "mask_size": 16, "mask_init": "random"}
    module = LoRunCASSIModule(model="lorun-cassi-9stg", model_config=cfg, loss="rmse+sam")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=1)
    trainer.validate(module, datamodule=dm)
    m = trainer.callback_metrics
    assert {"val/real/psnr", "val/real/sam", "val/real/ssim"} <= set(m)
    assert all(torch.isfinite(m[k]) for k in ("val/real/psnr", "val/real/sam"))
