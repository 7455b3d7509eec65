"""Target-adaptive inference (`zoo.training.target_adaptive`): pansharpening (reduced pairs) and
flash denoising (recorrupted pairs) fit a copy, never the caller's network; masked bands leave it;
`zoo bench --adapt` and `zoo restore --adapt` through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
import torch

import zoo
from zoo.training.target_adaptive import recorrupted_adapt, target_adapt

TINY = {"stages": 2, "widths": (8, 16)}


def _scene(c: int = 8, size: int = 128, seed: int = 0) -> torch.Tensor:
    """A scale-invariant scene (equal energy per octave, one texture under per-band gains): what
    Wald's protocol assumes, so what is learnt at the reduced scale holds at the full one."""
    g = torch.Generator().manual_seed(seed)
    tex = sum(torch.nn.functional.interpolate(torch.rand(1, 1, n, n, generator=g), size=(size, size), mode="bilinear",
                                              align_corners=False) for n in (4, 8, 16, 32, 64, 128)) / 6
    gains = 0.5 + torch.rand(1, c, 1, 1, generator=g)
    return (0.05 + 0.6 * gains * tex).clamp(0.01, 1)


def _net(seed: int = 0):
    torch.manual_seed(seed)
    return zoo.create("ssopga-pansharpen-wv", **TINY).eval()


def test_adapted_copy_leaves_the_network_alone_and_is_reproducible():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = _scene()
    inp = net.measure(x)
    a = target_adapt(net, inp["ms"], inp["pan"], steps=3, lr=1e-3)
    b = target_adapt(net, inp["ms"], inp["pan"], steps=3, lr=1e-3)
    assert a is not net and all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    with torch.no_grad():
        ya, yb, y0 = a(**inp), b(**inp), net(**inp)
        z = target_adapt(net, inp["ms"], inp["pan"], steps=0)(**inp)
    assert torch.equal(ya, yb) and not torch.equal(ya, y0) and torch.equal(z, y0)
    assert (ya >= 0).all() and a.target_adaptation["steps"] == 3


def test_adaptation_fits_the_reduced_pair_and_helps_at_full_scale():
    """Wald's premise, measured: fitting the input's own reduced pair lowers that loss, and on a
    scene with the same statistics at both scales it lowers the full-resolution error too."""
    net = _net()
    x = _scene(seed=1)
    inp = net.measure(x)
    a = target_adapt(net, inp["ms"], inp["pan"], steps=40, lr=2e-3)
    ms_lr, pan_lr = net.reduce(inp["ms"], inp["pan"])
    with torch.no_grad():
        r0, r1 = (float((m(ms_lr, pan_lr) - inp["ms"]).abs().mean()) for m in (net, a))
        e0, e1 = (float((m(**inp) - x).abs().mean()) for m in (net, a))
    assert r1 < 0.9 * r0  # measured 0.0184 -> 0.0146
    assert e1 < 0.95 * e0  # measured 0.0275 -> 0.0238


def test_missing_bands_leave_the_adaptation():
    net = _net()
    x = _scene()
    inp = net.measure(x)
    mask = torch.ones(1, 8)
    mask[0, 3] = 0
    ms2 = inp["ms"].clone()
    ms2[:, 3] = ms2[:, 3] * 5 + 1  # what a missing band holds must not matter
    a = target_adapt(net, inp["ms"], inp["pan"], ms_mask=mask, steps=3, lr=1e-3)
    b = target_adapt(net, ms2, inp["pan"], ms_mask=mask, steps=3, lr=1e-3)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), k


def test_bad_inputs_are_named():
    net = _net()
    inp = net.measure(_scene())
    with pytest.raises(ValueError, match="at least 24x24"):
        target_adapt(net, inp["ms"][..., :16, :16], inp["pan"][..., :64, :64], steps=1)
    with pytest.raises(ValueError, match="per-band ms_mask"):
        target_adapt(net, inp["ms"], inp["pan"], ms_mask=torch.ones(1, 4), steps=1)
    with pytest.raises(ValueError, match="steps must be >= 0 and lr > 0"):
        target_adapt(net, inp["ms"], inp["pan"], steps=1, lr=0)
    with pytest.raises(ValueError, match="do not match the ratio"):
        target_adapt(net, inp["ms"], inp["pan"][..., :100, :100], steps=1)
    with pytest.raises(TypeError, match="pansharpening networks"):
        target_adapt(zoo.create("ssopga-flash", **TINY), inp["ms"], inp["pan"], steps=1)
    with pytest.raises(ValueError, match="needs at least 6x6"):
        net(inp["ms"][..., :4, :4], inp["pan"][..., :16, :16])


def _fake_pansharpen(root):
    rng = np.random.default_rng(0)
    red, full = root / "pansharpen/reduced", root / "pansharpen/full"
    red.mkdir(parents=True)
    full.mkdir(parents=True)
    x = _scene(8, 128, seed=2)[0].permute(1, 2, 0).numpy().astype(np.float64)
    sio.savemat(red / "WV3_test.mat", {"gt": x, "lrms": x[2::4, 2::4], "pan": x.mean(-1)})
    sio.savemat(full / "WV3_example.mat", {"I_MS_LR": (rng.uniform(0.2, 0.6, (32, 32, 8)) * 2047).astype(np.uint16),
                                           "I_PAN": (rng.uniform(0.2, 0.6, (128, 128)) * 2047).astype(np.uint16)})
    return root


def test_bench_and_restore_adapt_through_the_cli(tmp_path, capsys):
    from zoo.cli.main import main

    root = _fake_pansharpen(tmp_path / "data")
    out = tmp_path / "bench"
    assert main(["bench", "ssopga-pansharpen-wv", "--dataset", "WV3_test", "--data-root", str(root), "--out", str(out),
                 "--adapt", "2", "--no-costs"]) == 0
    s = json.loads((out / "summary.json").read_text())
    res = s["models"]["ssopga-pansharpen-wv"]["datasets"]
    assert set(res) == {"WV3_test", "WV3_test+TA2"} and res["WV3_test"]["sam"] != res["WV3_test+TA2"]["sam"]
    assert s["target_adaptive"]["steps"] == 2 and "WV3_test+TA2" in (out / "summary.md").read_text()
    assert (out / "grids/ssopga-pansharpen-wv/WV3_test+TA2").is_dir()
    # a task without target-adaptive inference says so before any work
    assert main(["bench", "lorun-cs-r25", "--data-root", str(root), "--out", str(tmp_path / "f"), "--adapt", "2"]) == 2
    assert "not defined for task 'cs'" in capsys.readouterr().err and not (tmp_path / "f").exists()
    src = str(root / "pansharpen/full/WV3_example.mat")
    assert main(["restore", "ssopga-pansharpen-wv", src, "-o", str(tmp_path / "f.mat"), "--adapt", "2"]) == 0
    assert "after 2 target-adaptive steps" in capsys.readouterr().out
    assert sio.loadmat(tmp_path / "f.mat")["fused"].shape == (128, 128, 8)
    assert main(["restore", "ssopga-pansharpen-wv", src, "-o", str(tmp_path / "g.mat"), "--adapt", "-1"]) == 2
    assert ">= 0" in capsys.readouterr().err and not (tmp_path / "g.mat").exists()
    noisy = tmp_path / "n.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(noisy)
    args = ["restore", "ssopga-flash", str(noisy), "--flash", str(noisy), "--sigma", "25", "--adapt", "2"]
    assert main([*args, "-o", str(tmp_path / "d.png")]) == 0
    assert "after 2 target-adaptive steps" in capsys.readouterr().out and (tmp_path / "d.png").is_file()
    assert main(["restore", "lorun-cs-r25", str(noisy), "-o", str(tmp_path / "c.png"), "--adapt", "2"]) == 2
    assert "--adapt is for cassi/flash/pansharpen models" in capsys.readouterr().err


def _flash_case(seed: int = 0, size: int = 64):
    x = _scene(3, size, seed=seed)
    flash = (x * 0.8 + 0.05).clamp(0, 1)
    g = torch.Generator().manual_seed(seed + 10)
    return x, x + 25 / 255 * torch.randn(x.shape, generator=g), flash


def test_recorrupted_adaptation_copy_and_unbiased_signal():
    """R2R: the caller's denoiser is untouched, runs are reproducible, and fitting recorrupted
    copies of one noisy image (no clean image) brings a poor denoiser closer to the clean one."""
    torch.manual_seed(0)
    net = zoo.create("ssopga-flash", **TINY).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y, f = _flash_case()
    a = recorrupted_adapt(net, y, f, 25 / 255, steps=40, lr=2e-3, crop=32, batch=4)
    b = recorrupted_adapt(net, y, f, 25 / 255, steps=40, lr=2e-3, crop=32, batch=4)
    assert a is not net and all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    with torch.no_grad():
        out0, out1, out2 = net(y, f, 25 / 255), a(y, f, 25 / 255), b(y, f, 25 / 255)
    assert torch.equal(out1, out2) and a.target_adaptation["task"] == "flash"
    e0, e1 = float(((out0 - x) ** 2).mean()), float(((out1 - x) ** 2).mean())
    assert e1 < 0.8 * e0, (e0, e1)


def test_recorrupted_adaptation_bad_inputs():
    net = zoo.create("ssopga-flash", **TINY)
    x, y, f = _flash_case()
    with pytest.raises(ValueError, match="sigma must be > 0"):
        recorrupted_adapt(net, y, f, 0.0, steps=1)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        recorrupted_adapt(net, y, f, torch.tensor([0.1, 0.1]), steps=1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        recorrupted_adapt(net, y, f, 0.1, steps=1, alpha=0)
    with pytest.raises(TypeError, match="flash-guided denoisers"):
        recorrupted_adapt(_net(), y, f, 0.1, steps=1)
    with pytest.raises(ValueError):
        recorrupted_adapt(net, y, f[..., :32], 0.1, steps=1)  # guide of another size
