"""Low-light task: degradation, readers of the official layouts, the network, tiling, bad inputs, floors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.data.lowlight import LowLightDataModule, find_pairs, load_pair, read_rgb
from zoo.models.llemamba import global_stats
from zoo.physics.lowlight import N_STATS, LowLightDegradation, linear_to_srgb, srgb_to_linear
from zoo.solvers.lime import gamma_correction, histogram_equalisation, lime
from zoo.tasks import get_task

TINY = zoo.get_entry("llemamba-lowlight").test_config


def _net(seed: int = 0):
    torch.manual_seed(seed)
    net = zoo.create("llemamba-lowlight", **TINY).eval()
    for p in net.parameters():  # non-trivial weights: the zero-initialised layers would hide tiling errors
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
    return net


def test_degradation_is_dark_noisy_quantised_and_seeded():
    x = torch.rand(2, 3, 32, 32) * 0.8 + 0.1
    deg = LowLightDegradation()
    a = deg(x, generator=torch.Generator().manual_seed(3))
    b = deg(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    assert float(a.mean()) < float(x.mean()) * 0.8 and a.min() >= 0 and a.max() <= 1
    assert torch.allclose(a * 255, (a * 255).round(), atol=1e-4)  # 8-bit levels
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)


def test_light_sources_clip_in_the_low_image_and_saturate_the_target():
    x = torch.rand(3, 3, 48, 48) * 0.6 + 0.2
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    low, target = LowLightDegradation().pair(x, generator=g())
    assert torch.equal(target, x) and torch.equal(low, LowLightDegradation()(x, generator=g()))  # off: the plain law
    deg = LowLightDegradation(lamps=1.0)
    low, target = deg.pair(x, generator=g())
    low2, target2 = deg.pair(x, generator=g())
    assert torch.equal(low, low2) and torch.equal(target, target2)  # seeded
    assert (target >= x - 1e-6).all() and target.max() <= 1 and (target > x + 0.1).any()  # lamps only add light
    plain = LowLightDegradation()(x, generator=g())
    assert float((low.amax(1) >= 1).float().mean()) > 0.002 > float((plain.amax(1) >= 1).float().mean())
    assert torch.equal(deg(x, generator=g()), plain)  # __call__ never adds lamps (the test sets use it)
    assert "light sources" in deg.describe() and "light sources" not in LowLightDegradation().describe()


def test_readers_of_every_layout(fake_all_root):
    ll = fake_all_root / "lowlight"
    assert len(find_pairs(ll / "LOL" / "our485")) == 3  # LOL-v1 split folder
    assert len(find_pairs(ll / "LOL")) == 4  # both splits from the root
    real = find_pairs(ll / "LOL-v2/Real_captured/Train")  # low0000i ↔ normal0000i
    assert len(real) == 2 and real[0][1].name.startswith("low") and real[0][2].name.startswith("normal")
    assert len(find_pairs(ll / "LOL-v2/Synthetic/Test")) == 2
    assert len(find_pairs(ll / "Retinexformer/LOLv1/Train")) == 2
    assert len(find_pairs(ll / "custom")) == 2
    lo, hi = load_pair(real[0])
    assert lo.shape == hi.shape and lo.shape[0] == 3 and lo.mean() < hi.mean()


def test_bad_files_have_clear_errors(tmp_path):
    Image.fromarray((np.random.rand(8, 8) * 255).astype(np.uint8)).save(tmp_path / "grey.png")
    with pytest.raises(ValueError, match="single-channel"):
        read_rgb(tmp_path / "grey.png")
    # a 16-bit RGB PNG, written by hand (Pillow cannot write one): converted to 8 bits, with a warning
    import struct
    import zlib

    h, w = 4, 5
    raw = b"".join(b"\x00" + np.full((w, 3), 40000, dtype=">u2").tobytes() for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    (tmp_path / "deep.png").write_bytes(png)
    with pytest.warns(UserWarning, match="16-bit PNG"):
        x = read_rgb(tmp_path / "deep.png")
    assert x.shape == (3, h, w) and abs(float(x.mean()) - 40000 / 65535) < 0.01
    # a training pair of different sizes
    for sub, size in (("low", (8, 8)), ("high", (8, 9))):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(tmp_path / "pairs" / sub / "a.png")
    with pytest.raises(ValueError, match="different sizes"):
        load_pair(find_pairs(tmp_path / "pairs")[0])


def test_bad_tensors_have_clear_errors():
    net = _net()
    ok = torch.rand(1, 3, 8, 8) * 0.3
    for bad, msg in ((torch.rand(1, 1, 8, 8), "RGB"), (torch.rand(1, 4, 8, 8), "RGB"), (torch.rand(1, 3, 0, 8), "empty"),
                     (ok * 5, r"\[0, 1\]"), (ok - 0.5, r"\[0, 1\]"), (ok.masked_fill(ok > 0.2, float("nan")), "NaN"),
                     ((ok * 255).to(torch.uint8), "dtype")):
        with pytest.raises(ValueError, match=msg):
            net(low=bad)


def test_network_shapes_stages_and_contract():
    net = _net()
    low = torch.rand(2, 3, 20, 24) * 0.3
    outs = net(low=low, return_all=True)
    assert len(outs) == TINY["stages"] and all(o.shape == low.shape for o in outs)
    assert torch.isfinite(outs[-1]).all()
    roles = net.parameter_roles()
    assert roles["mu_raw"] == "stage" and set(roles.values()) <= {"stage", "prior_base"}
    assert net(**net.measure(torch.rand(1, 3, 16, 16))).shape == (1, 3, 16, 16)


def test_fresh_network_is_an_auto_exposure():
    """At initialisation the relit output is I/max_c(I) · 0.45 / exp⟨log L⟩ (Retinex + geometric-mean exposure)."""
    net = zoo.create("llemamba-lowlight", **TINY)
    low = torch.rand(1, 3, 16, 16) * 0.2 + 0.02
    L = low.amax(1, keepdim=True)
    expect = low / L * L * 0.45 / torch.exp(torch.log(L).mean())
    # the closed-form R and L updates of the first stage move R, L slightly; stay close
    assert torch.allclose(net(low=low), expect, atol=0.05)


def test_tiled_equals_whole_where_both_fit():
    net = _net()
    task = get_task("lowlight")
    low = torch.rand(1, 3, 96, 112) * 0.3
    whole = task.run(net, {"low": low}, tile=512, overlap=0)  # fits in one tile: exactly the whole-image pass
    with torch.no_grad():
        assert torch.allclose(whole, net(low=low, stats=global_stats(low)), atol=1e-6)
    tiled = task.run(net, {"low": low}, tile=64, overlap=32)
    err = (tiled - whole).abs()
    assert 10 * torch.log10(1 / err.pow(2).mean()) > 35  # PSNR of tiled vs whole
    # no seam: the error along the tile borders is not larger than elsewhere (ramps blend the overlaps)
    assert float(err.max()) < 0.1


def test_classical_floors_brighten():
    x = torch.rand(1, 3, 24, 24) * 0.6 + 0.2
    low = LowLightDegradation()(x, generator=torch.Generator().manual_seed(0))
    for out in (gamma_correction(low), histogram_equalisation(low), lime(low)):
        assert out.shape == low.shape and float(out.mean()) > float(low.mean()) and out.min() >= 0 and out.max() <= 1


def test_bench_runs_every_classical_floor():
    task = get_task("lowlight")
    low = LowLightDegradation()(torch.rand(1, 3, 24, 24) * 0.6 + 0.2, generator=torch.Generator().manual_seed(0))
    rows = task.floors(_net(), {"low": low})
    assert list(rows)[0] == task.floor_name and len(rows) == 3
    assert torch.allclose(rows[list(rows)[1]], gamma_correction(low, 0.45))


def test_whole_image_stats_reach_the_patches(fake_all_root):
    dm = LowLightDataModule(train_dirs=["images/BSD200"], paired_dirs=["lowlight/LOL/our485"], data_root=str(fake_all_root),
                            patch=32, samples_per_epoch=4, batch_size=2, val_images=1, val_crop=None, whole_stats=True,
                            lamps=0.5)
    dm.setup("fit")
    assert dm.train_set.datasets[0].degradation.lamps == 0.5  # training only: validation is the plain law
    for ds in dm.train_set.datasets:  # synthetic and paired
        item = ds[0]
        assert item["inputs"]["low"].shape == (3, 32, 32) and item["inputs"]["stats"].shape == (N_STATS,)
        assert not torch.allclose(item["inputs"]["stats"], global_stats(item["inputs"]["low"][None])[0])
    b = next(iter(dm.train_dataloader()))
    assert b["inputs"]["stats"].shape == (2, N_STATS)
    net = _net()
    assert net(**b["inputs"]).shape == (2, 3, 32, 32)
    assert dm.val_set[0]["inputs"]["low"].shape[-2:] == dm.val_set.items[0][1].shape[-2:]  # whole image


def test_global_stats_quantiles_and_the_v1_relighting_loads():
    low = torch.rand(2, 3, 20, 30) * 0.3
    s = global_stats(low)
    assert s.shape == (2, N_STATS) and torch.isfinite(s).all()
    logl = torch.log(low.amax(1).clamp_min(1 / 255)).flatten(1)
    assert torch.allclose(s[:, 7], logl.median(1).values - logl.mean(1), atol=0.05)  # the 0.5 quantile
    assert (s[:, 5:].diff(dim=1) >= 0).all()  # quantiles in order
    torch.manual_seed(0)
    v1 = zoo.create("llemamba-lowlight", exposure_quantiles=False, **TINY).eval()
    with torch.no_grad():
        v1.relight.mlp[-1].weight.normal_()
    new = zoo.create("llemamba-lowlight", exposure_quantiles=True, **TINY).eval()
    new.load_state_dict(v1.state_dict())  # the 5-input MLP weight is padded with zero columns
    assert new.relight.mlp[0].weight.shape[1] == N_STATS
    with torch.no_grad():
        assert torch.allclose(new(low=low), v1(low=low), atol=1e-6)
        with pytest.raises(ValueError, match="global_stats of the whole"):
            new(low=low, stats=s[:, :5])  # five statistics: the network takes all of global_stats


def test_datamodule_synthetic_and_paired(fake_all_root):
    dm = LowLightDataModule(train_dirs=["images/BSD200"], paired_dirs=["lowlight/LOL/our485"], data_root=str(fake_all_root),
                            patch=32, samples_per_epoch=4, batch_size=2, val_images=1, val_crop=32)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["target"].shape == (2, 3, 32, 32) and b["inputs"]["low"].shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="never train"):
        LowLightDataModule(train_dirs=["images/CBSD68"], data_root=str(fake_all_root)).setup("fit")
    dm = LowLightDataModule(data_root=str(fake_all_root), train_dirs=["images/BSD200"], patch=32)
    dm.setup("test")
    assert dm.test_names == ["synthetic"] and len(dm.test_sets[0]) >= 1


def test_task_testset_sample_and_restore(fake_all_root, tmp_path):
    task = get_task("lowlight")
    items = task.load_testset("CBSD68-synthetic", str(fake_all_root))
    again = task.load_testset("CBSD68-synthetic", str(fake_all_root))
    assert torch.equal(items[0][1]["inputs"]["low"], again[0][1]["inputs"]["low"])  # fixed seeds
    net = _net()
    s = task.sample(net)
    assert net(**s["inputs"]).shape == s["target"].shape
    from zoo.tasks import restore_file

    src = fake_all_root / "lowlight/real_low/LIME/1.bmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, written = restore_file(task, net, str(src), str(tmp_path / "out.png"), tile=48, overlap=16)
    assert Image.open(written[0]).size == Image.open(src).size
    assert "--data.paired_dirs" in " ".join(task.finetune_data_args(str(tmp_path)))
