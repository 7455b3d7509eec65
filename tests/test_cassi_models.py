"""LoRun-CASSI / Block-9 / phase-1 / real-system models: contract, two-phase init, LoRA, costs, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import zoo
from zoo.data import resolve_model_files
from zoo.nn.lora import LoRALayer, count_parameters, lora_state_dict, save_adapters

TINY = dict(widths=(8, 16), bands=6, mask_size=20, step_width=8)
CASSI = ["lorun-cassi-9stg", "lorun-cassi-base", "block9-cassi", "lorun-cassi-9stg-real"]


def _tiny(name, **kw):
    cfg = dict(TINY, **kw)
    if zoo.get_entry(name).default_config.get("mode") != "single":
        cfg.setdefault("stages", 3)
    return zoo.create(name, **cfg)


def test_registered():
    assert set(CASSI) <= set(zoo.list_models(task="cassi"))


@pytest.mark.parametrize("name", CASSI)
def test_builds_measures_restores(name):
    net = _tiny(name).eval()
    assert net.channels == 6
    x = torch.rand(2, 6, 16, 18)
    inp = net.measure(x)
    assert inp["y"].shape == (2, 1, 16, 18 + 2 * 5) and inp["mask"].shape == (2, 1, 16, 18)
    with torch.no_grad():
        out = net(**inp)
        outs = net(**inp, return_all=True)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert len(outs) == net.stages and torch.equal(outs[-1], out)
    ex = net.example_inputs(20)
    assert ex["y"].shape == (1, 1, 20, 30)


def test_default_sizes_and_parameter_claim():
    lo, bl, base = (zoo.create(n) for n in ("lorun-cassi-9stg", "block9-cassi", "lorun-cassi-base"))
    x = torch.rand(1, 28, 32, 32)
    assert lo.measure(x)["y"].shape == (1, 1, 32, 86)
    n_lo, n_bl = (sum(p.numel() for p in m.parameters()) for m in (lo, bl))
    assert n_bl >= 3 * n_lo, (n_lo, n_bl)  # the issue's ≥ 3× fewer parameters
    assert count_parameters(lo.denoiser)["base"] == sum(p.numel() for p in base.denoiser.parameters())
    # LoRA on every convolution of the stage (estimator, guide, U-Net, strided and transposed)
    convs = [m for m in base.denoiser.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    loras = [m for m in lo.denoiser.modules() if isinstance(m, LoRALayer)]
    assert len(loras) == len(convs) > 20


def test_untrained_model_is_gap_projection():
    net = _tiny("lorun-cassi-9stg").eval()
    x = torch.rand(1, 6, 20, 20)
    inp = net.measure(x)
    ph = net.physics
    x0 = ph.A_dagger(inp["y"], mask=inp["mask"])
    ref = x0 + ph.gap_step(x0, inp["y"], mask=inp["mask"])
    with torch.no_grad():
        out = net(**inp)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(ph.A(out, mask=inp["mask"]), inp["y"], atol=1e-4)


def test_mask_windows_train_random_eval_centre():
    net = _tiny("lorun-cassi-9stg")
    x = torch.rand(3, 6, 8, 8)
    net.train()
    m = net.measure(x)["mask"]
    assert m.shape == (3, 1, 8, 8)
    net.eval()
    m1, m2 = net.measure(x)["mask"], net.measure(x)["mask"]
    assert torch.equal(m1, m2) and torch.equal(m1[0, 0], net.physics.mask[6:14, 6:14])
    with pytest.raises(ValueError, match="larger than the 20×20"):
        net.measure(torch.rand(1, 6, 24, 24))


def test_real_model_shot_noise_and_sim_transfer():
    sim = _tiny("lorun-cassi-9stg")
    with torch.no_grad():
        for n, p in sim.named_parameters():
            p.add_(0.01 * torch.randn_like(p))
    real = _tiny("lorun-cassi-9stg-real", mask_size=30)
    mask_before = real.physics.mask.clone()
    real.init_from_model(sim)
    assert torch.equal(real.physics.mask, mask_before)  # the real mask is kept
    for k, v in sim.denoiser.state_dict().items():
        assert torch.equal(real.denoiser.state_dict()[k], v)
    assert real.noise and not sim.noise
    x = torch.rand(1, 6, 20, 20)
    real.eval()
    torch.manual_seed(0)
    y1 = real.measure(x)["y"]
    y_clean = real.physics.A(x, mask=real.measure(x)["mask"])
    assert not torch.equal(y1, y_clean) and torch.allclose(y1, y_clean, rtol=0.2, atol=0.2)


def test_two_phase_init_freezing_and_adapters(tmp_path):
    single = _tiny("lorun-cassi-base")
    with torch.no_grad():
        for p in single.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net = _tiny("lorun-cassi-9stg")
    net.init_from_single(single)
    net.phase2_trainable()
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "step" in trainable and all(".lora_" in n or n in ("step", "strength") for n in trainable)
    assert torch.equal(net.physics.mask, single.physics.mask)
    z, g = torch.rand(1, 6, 16, 16), torch.rand(1, 7, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net.prior(2)(z, g), single.denoiser(z, g), atol=1e-6)
    block = _tiny("block9-cassi")
    block.init_from_single(single)
    with torch.no_grad():
        assert torch.allclose(block.prior(1)(z, g), single.denoiser(z, g), atol=1e-6)
    f = save_adapters(net.denoiser, tmp_path / "adapters.safetensors")
    from safetensors.torch import load_file

    saved = load_file(str(f))
    assert saved and all(".lora_A." in k or ".lora_B." in k for k in saved)
    assert sum(v.numel() for v in saved.values()) < sum(v.numel() for v in net.state_dict().values())
    assert set(saved) == set(lora_state_dict(net.denoiser))


def test_gradients_reach_adapters_only():
    net = _tiny("lorun-cassi-9stg", stages=2).train()
    net.phase2_trainable()
    x = torch.rand(1, 6, 8, 8)
    out = net(**net.measure(x))
    (out.float() - x).abs().mean().backward()
    assert all(p.grad is None for n, p in net.named_parameters() if ".lora_" not in n and n != "step")
    grads = [p.grad for n, p in net.named_parameters() if ".lora_B." in n]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda net: net(y=torch.rand(1, 1, 16, 30)), "measurement/mask size mismatch"),
        (lambda net: net(y=torch.rand(1, 20, 30)), "measurement must be"),
        (lambda net: net(y=torch.full((1, 1, 20, 30), float("nan"))), "NaN"),
        (lambda net: net(y=torch.rand(1, 1, 16, 26), mask=torch.rand(1, 1, 16, 18)), "size mismatch"),
        (lambda net: net.measure(torch.rand(1, 5, 16, 16)), "5 bands but this operator disperses 6"),
        (lambda net: net.measure(torch.rand(6, 16, 16)), "cube batch"),
    ],
)
def test_bad_inputs(make, match):
    net = _tiny("lorun-cassi-9stg").eval()
    with pytest.raises(ValueError, match=match), torch.no_grad():
        make(net)


def test_mask_from_data_and_checkpoint_config(real_data_root_cassi):
    net = zoo.create("lorun-cassi-9stg", **resolve_model_files("lorun-cassi-9stg", {"mask_init": "mat", "stages": 2, "widths": (8, 16)}))
    assert net.physics.mask.shape == (256, 256) and float(net.physics.mask.min()) > 0
    real = zoo.create("lorun-cassi-9stg-real", **resolve_model_files("lorun-cassi-9stg-real", {"mask_init": "mat", "stages": 2, "widths": (8, 16)}))
    assert real.physics.mask.shape == (660, 660)


def test_missing_mask_file_error(tmp_path, monkeypatch):
    from zoo.data.paths import DatasetNotFoundError

    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="TSA-Net"):
        resolve_model_files("lorun-cassi-9stg", {"mask_init": "mat"})
    with pytest.raises(ValueError, match="mask_init"):
        zoo.create("lorun-cassi-9stg", mask_init="nope")


from cassi_fixtures import real_data_root_cassi  # noqa: E402,F401  (fixture)


def test_tied_phase1_unrolling_feeds_phase2():
    tied = _tiny("lorun-cassi-base", stages=3)
    assert tied.stages == 3 and tied.step.numel() == 1
    x = torch.rand(1, 6, 12, 12)
    with torch.no_grad():
        outs = tied.eval()(**tied.measure(x), return_all=True)
    assert len(outs) == 3
    single = _tiny("lorun-cassi-base")
    single.load_state_dict(tied.state_dict())  # same weights: phase 1 → phase 1b → phase 2
    net = _tiny("lorun-cassi-9stg")
    net.init_from_single(tied)
    assert float(net.step[2]) == float(tied.step[0])


@pytest.mark.parametrize("name", CASSI)
def test_published_checkpoints_load(name):
    from zoo.hub.manifest import load_manifest

    rec = load_manifest().checkpoints.get(name)
    if rec is None:
        pytest.skip(f"{name} has no checkpoint in the manifest")
    net = zoo.load(name)
    assert net.physics.mask.shape == ((660, 660) if name.endswith("-real") else (256, 256))
    if name.endswith("-real"):
        assert "adapters.safetensors" in rec.files and rec.files["adapters.safetensors"].size < 1_000_000


def _lc():
    import sys

    import zoo.models.lorun_cassi  # noqa: F401  (zoo.models.lorun_cassi is also the constructor's name)

    return sys.modules["zoo.models.lorun_cassi"]


@pytest.mark.parametrize("name", ["lorun-cassi-9stg", "block9-cassi"])
def test_mask_gates_cached_per_mask_bit_identical(name, monkeypatch):
    lc = _lc()
    torch.manual_seed(0)
    net = _tiny(name).eval()
    for p in net.parameters():  # non-zero adapters and tails, so every stage's gates differ
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.rand(3, 6, 20, 20)
    inp = net.measure(x)
    assert inp["mask"].stride(0) == 0  # measure's mask is one mask expanded over the batch
    with torch.no_grad():
        monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 0)
        ref = net(**inp)
        assert "_gates_cache" not in net.__dict__
        per_sample = torch.cat([net(y=inp["y"][i : i + 1], mask=inp["mask"][i : i + 1]) for i in range(3)])
        torch.testing.assert_close(ref, per_sample, rtol=0, atol=1e-6)  # batch-1 mask broadcast = per sample
        monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 2**30)
        first = net(**inp)
        gates = [e[2] for e in net._gates_cache["stages"].values()]
        assert len(gates) == net.stages
        second = net(y=inp["y"], mask=inp["mask"][:1].clone())  # an equal mask, another tensor: a hit
        assert all(a is b for a, b in zip(gates, [e[2] for e in net._gates_cache["stages"].values()]))
        assert torch.equal(ref, first) and torch.equal(ref, second)
        other = net.measure(x, mask=(torch.rand(1, 1, 20, 20) > 0.5).float())
        monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 0)
        want = net(**other)
        monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 2**30)
        assert torch.equal(net(**other), want)  # another mask: recomputed, not the cached gates
        # an in-place weight edit (an optimiser step, load_state_dict) invalidates the gates of that stage
        stage0 = net.denoisers[0] if name.startswith("block") else net.denoiser
        next(stage0.unet.guide_in.parameters()).add_(0.1)
        monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 0)
        want = net(**other)
        monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 2**30)
        assert torch.equal(net(**other), want)
    net.train()
    assert "_gates_cache" not in net.__dict__
    out = net(**other)  # training: gradients flow through freshly computed gates
    out.mean().backward()
    assert any(p.grad is not None for p in stage0.unet.guide_in.parameters())


def test_mask_gates_cache_respects_its_budget(monkeypatch):
    lc = _lc()
    net = _tiny("block9-cassi").eval()
    inp = net.measure(torch.rand(1, 6, 20, 20))
    monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 1024)  # less than one stage's gates
    with torch.no_grad():
        net(**inp)
    assert net._gates_cache["stages"] == {}
    import copy

    monkeypatch.setitem(lc.GUIDANCE_CACHE, "bytes", 2**30)
    with torch.no_grad():
        net(**inp)
    assert net._gates_cache["stages"] and "_gates_cache" not in copy.deepcopy(net).__dict__
    net.to(torch.float64)
    assert "_gates_cache" not in net.__dict__


def test_mask_gates_cache_under_inference_mode():
    net = _tiny("lorun-cassi-9stg").eval()
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    inp = net.measure(torch.rand(2, 6, 20, 20))
    with torch.inference_mode():  # merged copies built here are inference tensors (no version counter)
        a, b = net(**inp), net(**inp)
    with torch.no_grad():
        want = net(**inp)
    net.clear_guidance_cache()
    with torch.no_grad():
        fresh = net(**inp)
    assert torch.equal(a, fresh) and torch.equal(b, fresh) and torch.equal(want, fresh)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_inference_fast_paths_match_the_autograd_path(layout):
    """The in-place block and the split (concatenation-free) step estimator of inference give the training
    graph's values, in either memory layout of the weights; the network returns a contiguous cube."""
    torch.manual_seed(0)
    net = _tiny("block9-cassi").eval().to(memory_format=layout)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    inp = net.measure(torch.rand(2, 6, 20, 20))
    with torch.no_grad():
        fast = net(**inp)
    with torch.enable_grad():
        slow = net(**inp)
    assert fast.is_contiguous()
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=2e-6)
    st = net.denoisers[0]
    x, r = torch.rand(2, 6, 20, 20), torch.rand(2, 6, 20, 20)
    want = st.estimator.fc(torch.nn.functional.conv2d(
        torch.nn.functional.leaky_relu(st.estimator.inp(torch.cat([x, r], 1)), 0.1), st.estimator.dw.weight,
        st.estimator.dw.bias, stride=2, padding=1, groups=st.estimator.dw.groups).mean((-2, -1), keepdim=True))
    torch.testing.assert_close(st.estimate_step(x, r), 2 * torch.sigmoid(want), rtol=0, atol=1e-6)
