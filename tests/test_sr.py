"""Super-resolution: physics (MATLAB bicubic, closed-form data step), LoRun-SR / Block-9, data, the `sr` task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.data.sr import SRDataModule, SRDegrader, read_pairs, read_rgb
from zoo.metrics import rgb_to_y
from zoo.physics.sr import (BlurDownsample, bicubic_kernel, check_kernel, gaussian_kernel, imresize, motion_kernel,
                            usrnet_kernels)
from zoo.tasks import get_task, restore_file


# -- physics ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [2, 3, 4])
def test_bicubic_kernel_equals_matlab_imresize_inside(s):
    """(x ⊛ k)↓s with the bicubic kernel is MATLAB imresize(x, 1/s) away from the borders."""
    x = torch.rand(1, 3, 12 * s, 10 * s, dtype=torch.float64)
    k = bicubic_kernel(s).double()
    assert k.shape[-1] % 2 == 1 and abs(float(k.sum()) - 1) < 1e-6
    d = BlurDownsample(s).double().A(x) - imresize(x, 1 / s)
    assert d[..., 4:-4, 4:-4].abs().max() < 1e-6


def test_imresize_known_values():
    """Constant images stay constant (symmetric borders, normalised weights); upsampling a ramp is exact inside."""
    c = torch.full((1, 1, 9, 7), 0.3, dtype=torch.float64)
    assert torch.allclose(imresize(c, 1 / 3), torch.full((1, 1, 3, 3), 0.3, dtype=torch.float64))
    assert imresize(c, 2).shape == (1, 1, 18, 14)
    ramp = torch.arange(16, dtype=torch.float64).view(1, 1, 1, 16).expand(1, 1, 4, 16)
    up = imresize(ramp, size=(4, 32))
    expect = (torch.arange(32, dtype=torch.float64) + 0.5) / 2 - 0.5
    assert torch.allclose(up[0, 0, 0, 4:-4], expect[4:-4], atol=1e-9)


@pytest.mark.parametrize("s,kind", [(2, "gauss"), (3, "motion"), (4, "bicubic"), (4, "per-image")])
def test_data_step_is_the_minimiser(s, kind):
    """The closed form solves argmin ‖(x⊛k)↓s − y‖² + α‖x − z‖²: its gradient vanishes (float64)."""
    g = torch.Generator().manual_seed(s)
    if kind == "gauss":
        k = gaussian_kernel(1.3, 0.6, 0.4, size=9, shift=0.5)
    elif kind == "motion":
        k = motion_kernel(2, size=11)
    elif kind == "bicubic":
        k = bicubic_kernel(s)
    else:
        k = torch.stack([gaussian_kernel(1.0, size=9), gaussian_kernel(2.0, size=9)])[:, None]
    op = BlurDownsample(s).double()
    k = k.double()
    z = torch.randn(2, 3, 8 * s, 6 * s, generator=g, dtype=torch.float64)
    y = torch.randn(2, 3, 8, 6, generator=g, dtype=torch.float64)
    alpha = torch.tensor([0.05, 1e-3], dtype=torch.float64)
    x = op.data_step(z, y, alpha, k, s)
    grad = op.A_adjoint(op.A(x, k, s) - y, k, s) + alpha.view(-1, 1, 1, 1) * (x - z)
    assert grad.abs().max() < 1e-10


def test_kernels_are_normalised_and_centred():
    for s in (2, 3, 4):
        ks = usrnet_kernels(s)
        assert len(ks) == 12 and len({n for n, _ in ks}) == 12
        for _, k in ks:
            assert k.shape == (25, 25) and abs(float(k.sum()) - 1) < 1e-5 and (k >= 0).all()
    # a Gaussian without shift is centred on the centre pixel
    k = gaussian_kernel(1.5, size=15)
    yy, xx = torch.meshgrid(torch.arange(15.0), torch.arange(15.0), indexing="ij")
    assert abs(float((k * xx).sum()) - 7) < 1e-4 and abs(float((k * yy).sum()) - 7) < 1e-4
    assert not torch.equal(motion_kernel(1), motion_kernel(2)) and torch.equal(motion_kernel(3), motion_kernel(3))


def test_bad_kernels_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="odd"):
        check_kernel(torch.ones(4, 4) / 16)
    with pytest.raises(ValueError, match="larger than"):
        check_kernel(torch.ones(9, 9) / 81, (8, 8))
    with pytest.raises(ValueError, match="NaN"):
        check_kernel(torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match="multiple of the scale"):
        BlurDownsample(4).A(torch.rand(1, 3, 30, 32))


def test_rgb_to_y_matches_bt601():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255), atol=1e-3)
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16 / 255))


# -- the networks ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lorun-sr-x2", "lorun-sr-x3", "lorun-sr-x4", "block9-sr-x4", "lorun-sr-base"])
def test_sr_models_shapes_and_stage_outputs(name):
    net = zoo.create(name, **zoo.get_entry(name).test_config)
    s = net.physics.scale
    inputs = net.measure(torch.rand(2, 3, 12 * s, 8 * s), kernel=gaussian_kernel(1.2, size=9), sigma=0.01)
    out = net(**inputs, return_all=True)
    assert len(out) == net.stages and out[-1].shape == (2, 3, 12 * s, 8 * s)


def test_lorun_and_block_start_equal_from_the_same_phase1():
    """Zero-initialised adapters: LoRun-K and Block-K built from one phase-1 block compute the same function."""
    cfg = dict(widths=(8, 16), stages=3)
    single = zoo.create("lorun-sr-base", widths=(8, 16))
    torch.nn.init.normal_(single.denoiser.tail.weight, std=0.01)
    lo, bl = zoo.create("lorun-sr-x4", **cfg), zoo.create("block9-sr-x4", **cfg)
    for m in (lo, bl):
        m.init_from_single(single, strength_init=0.3)
    inputs = lo.measure(torch.rand(1, 3, 32, 32))
    with torch.no_grad():
        assert torch.allclose(lo(**inputs), bl(**inputs), atol=1e-6)
        # stage 1 of the K-stage model is the phase-1 block
        assert torch.allclose(lo(**inputs, return_all=True)[0], single(**inputs), atol=1e-6)
    lo.set_trainable("finetune")
    trainable = {n for n, p in lo.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n or n.startswith("hyper.") or n == "strength" for n in trainable)
    roles = lo.parameter_roles()
    assert {roles[n] for n in trainable} <= {"prior_adapters", "stage"}


def test_sr_bad_inputs_name_the_fix():
    net = zoo.create("lorun-sr-x4", widths=(8, 16), stages=1)
    lr = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="not supported by this checkpoint"):
        net(lr, scale=8)
    with pytest.raises(ValueError, match="3-channel.*grey"):
        net(torch.rand(1, 1, 8, 8))
    bad = lr.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        net(bad)
    with pytest.raises(ValueError, match="odd"):
        net(lr, kernel=torch.ones(4, 4) / 16)
    with pytest.raises(ValueError, match="larger than"):
        net(torch.rand(1, 3, 4, 4), kernel=gaussian_kernel(2.0, size=25))
    with pytest.raises(ValueError, match="sigma"):
        net(lr, sigma=-1.0)


def test_float64_and_autocast_inputs():
    net = zoo.create("lorun-sr-x2", widths=(8, 16), stages=2)
    lr = torch.rand(1, 3, 10, 10, dtype=torch.float64)
    assert net(lr).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(lr.float())
    assert torch.isfinite(out.float()).all()


# -- data -------------------------------------------------------------------------------------------------------------
def test_degrader_batches(tmp_path):
    crops = [torch.rand(3, 96 + 24, 96 + 24) for _ in range(4)]
    deg = SRDegrader(scale_probs={3: 1.0}, seed=1)
    b = deg(crops)
    assert b["target"].shape == (4, 3, 96, 96) and b["inputs"]["scale"] == 3
    assert b["inputs"]["lr"].shape == (4, 3, 32, 32) and b["inputs"]["kernel"].shape == (4, 1, 25, 25)
    assert torch.equal(b["inputs"]["lr"], deg(crops)["inputs"]["lr"])  # seeded
    lr = b["inputs"]["lr"]
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit LR
    # a bicubic, noise-free LR is exactly the MATLAB imresize of the HR (context cut away afterwards)
    deg = SRDegrader(scale_probs={4: 1.0}, kernel_probs={"bicubic": 1.0}, sigma_max=0.0, quantize=False, seed=0)
    b = deg(crops[:1])
    full = imresize(crops[0][:, :120, :120], 1 / 4)[:, 3:-3, 3:-3]
    assert torch.allclose(b["inputs"]["lr"][0], full, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of every scale"):
        SRDegrader(margin=10, scale_probs={4: 1.0})


def test_official_pairs_and_their_errors(fake_all_root, tmp_path):
    pairs = read_pairs(fake_all_root / "sr" / "Set5", 4)
    assert [p[0] for p in pairs] == ["img_001", "img_002"] and pairs[0][1].shape[-2] == 4 * pairs[0][2].shape[-2]
    grey = read_pairs(fake_all_root / "sr" / "Set14", 2)[0]
    assert grey[1].shape[1] == 3  # grey expanded to RGB
    with pytest.raises(Exception, match=r"no ×3 pairs.*image_SRF_4"):
        read_pairs(fake_all_root / "sr" / "BSD100", 3)
    d = tmp_path / "Set" / "image_SRF_2"
    d.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "img_001_SRF_2_HR.png")
    with pytest.raises(Exception, match="no LR partner"):
        read_pairs(tmp_path / "Set", 2)
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "grey16.png")
    x, note = read_rgb(tmp_path / "grey16.png")
    assert x.shape == (3, 8, 8) and "16-bit" in note


def test_sr_datamodule_on_fake_data(fake_all_root):
    dm = SRDataModule(train_dirs=["images/BSD200"], test_sets=["sr/Set5"], data_root=str(fake_all_root), patch=48,
                      batch_size=2, samples_per_epoch=4, val_images=1, val_crop=48)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["target"].shape[-1] == 48 and isinstance(b["inputs"]["scale"], int)
    v = next(iter(dm.val_dataloader()))
    assert v["inputs"]["scale"] == 4 and v["inputs"]["kernel"].shape[:2] == (1, 1)
    dm.setup("test")
    t = next(iter(dm.test_dataloader()[0]))
    assert t["target"].shape[-1] == 4 * t["inputs"]["lr"].shape[-1]


# -- the task ----------------------------------------------------------------------------------------------------------
def test_sr_task_sets_floor_and_y_metrics(fake_all_root):
    task = get_task("sr")
    net = zoo.create("lorun-sr-x4", widths=(8, 16), stages=2)
    items = task.load_testset("Set5", str(fake_all_root))
    assert {b["inputs"]["scale"] for _, b in items} == {2, 3, 4}
    mine = [b for _, b in items if task.compatible(net, b)]
    assert len(mine) == 2
    b = mine[0]
    fl = task.floor(net, b["inputs"])
    assert fl.shape == b["target"].shape
    sc = task.score(fl, b["target"], b["inputs"])
    assert 10 < sc["psnr"] < 60 and 0 < sc["ssim"] <= 1
    assert task.score(b["target"], b["target"], b["inputs"])["psnr"] > 80
    k12 = task.load_testset("CBSD68-12k-x4-n2.55", str(fake_all_root))
    n_img = len(list((fake_all_root / "images" / "CBSD68").iterdir()))
    assert len(k12) == 12 * n_img and k12[0][0].endswith("iso0.7") and float(k12[0][1]["inputs"]["sigma"]) > 0
    assert [n for n, _ in k12[:12]] == [k12[0][0].split("_")[0] + "_" + n for n, _ in usrnet_kernels(4)]
    assert task.setting(net) == "x4"
    s = task.sample(net)
    assert s["target"].shape[-1] % 4 == 0 and s["inputs"]["lr"].shape[-1] * 4 == s["target"].shape[-1]


def test_sr_restore_file_tiled_and_checks(tmp_path):
    task = get_task("sr")
    net = zoo.create("lorun-sr-x2", widths=(8, 16), stages=2).eval()
    torch.nn.init.normal_(net.denoiser.tail.base.weight, std=0.01)
    lr = (np.random.default_rng(0).random((40, 36, 3)) * 255).astype(np.uint8)
    src = tmp_path / "lr.png"
    Image.fromarray(lr).save(src)
    what, written = restore_file(task, net, str(src), str(tmp_path / "sr.png"), tile=24, overlap=8)
    out = np.asarray(Image.open(written[0]))
    assert out.shape == (80, 72, 3) and "×2" in what
    with pytest.raises(ValueError, match="larger than the asked"):
        restore_file(task, net, str(src), str(tmp_path / "sr2.png"), out_size="20x20")
    with pytest.raises(ValueError, match="not supported"):
        restore_file(task, net, str(src), str(tmp_path / "sr3.png"), scale=8)
    assert not (tmp_path / "sr2.png").exists() and not (tmp_path / "sr3.png").exists()
    with pytest.raises(FileExistsError):
        restore_file(task, net, str(src), str(written[0]))
    k = tmp_path / "k.npy"
    np.save(k, np.ones((4, 4)))
    with pytest.raises(ValueError, match="odd"):
        restore_file(task, net, str(src), str(tmp_path / "sr4.png"), kernel=str(k))


def test_sr_tiles_agree_with_the_whole_image():
    """Tiled restoration (LR tiles, overlap blended) agrees with the whole-image restoration where both fit.

    The data step is a global FFT: each tile is restored with 16 LR pixels of its surroundings (the task's
    CONTEXT), which makes it equal to the whole image up to float round-off (results/sr/tiling)."""
    from zoo.inference import restore_inputs_tiled

    torch.manual_seed(0)
    net = zoo.create("lorun-sr-x2", widths=(8, 16), stages=2).eval()
    x = imresize(torch.rand(1, 3, 16, 16), size=(96, 96))  # a smooth image
    inputs = net.measure(x)
    with torch.no_grad():
        whole = net(**inputs)
    from zoo.tasks.sr import CONTEXT

    tiled = restore_inputs_tiled(net, inputs, tile=16, overlap=4, like="lr", scale=2, context=CONTEXT)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-4
    blind = restore_inputs_tiled(net, inputs, tile=16, overlap=4, like="lr", scale=2)  # without context
    assert (blind - whole).abs().max() > 1e-4
