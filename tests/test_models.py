"""Registry and LoRun: create every model, contract, two-phase initialisation, parameter claim."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.data import resolve_model_files
from zoo.nn.lora import count_parameters, merge_lora

TINY = {"widths": (8, 16), "stages": 3}


def test_registry_lists_and_errors():
    names = zoo.list_models()
    assert "lorun-cs-r25" in names and "block9-cs-r25" in names
    assert zoo.list_models("lorun-cs-r*") == sorted(n for n in names if n.startswith("lorun-cs-r"))
    assert all(zoo.get_entry(n).task == "cs" for n in zoo.list_models(task="cs"))
    assert zoo.list_models(task="no-such-task") == []
    with pytest.raises(zoo.UnknownModelError, match="lorun-cs-r25"):
        zoo.create("lorun-cs-r52")


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_builds_and_restores(name):
    """Every registered model: tiny instance (the entry's test_config) → finite output of the input's shape."""
    from zoo.bench.profile import _example

    e = zoo.get_entry(name)
    net = zoo.create(name, **e.test_config).eval()
    assert e.task and e.paper and e.licence and e.description
    inputs = _example(net, 48)
    with torch.no_grad():
        out = net(**inputs)
    assert out.ndim == 4 and out.shape[-2:] == (48, 48) and torch.isfinite(out).all()
    assert out.shape[1] == int(getattr(net, "channels", 1))


def test_untrained_lorun_equals_iterated_gradient_steps():
    # zero-initialised tails and adapters: every stage is the identity prior
    net = zoo.create("lorun-cs-r25", **TINY).eval()
    x = torch.rand(1, 1, 66, 66)
    inp = net.measure(x)
    ph = net.physics
    ref = ph.A_dagger(inp["y"], img_size=(66, 66))
    for _ in range(3):
        ref = ref - ph.gradient(ref, inp["y"])
    with torch.no_grad():
        assert torch.allclose(net(**inp), ref, atol=1e-5)


def test_two_phase_init_and_freezing():
    single = zoo.create("lorun-cs-base-r25", widths=(8, 16))
    with torch.no_grad():
        for p in single.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net = zoo.create("lorun-cs-r25", **TINY)
    net.init_from_single(single)
    net.phase2_trainable()
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "step" in trainable and "physics.phi" in trainable
    assert all(".lora_" in n or n in ("step", "strength") or n.startswith("physics.") for n in trainable)
    assert net.strength[1:].tolist() == [0.0, 0.0]  # later stages start at zero strength
    assert net.strength[0] == single.strength[0]
    # adapters start at zero: every stage of phase 2 equals the phase-1 denoiser
    x = torch.rand(1, 1, 33, 33)
    z = torch.rand(1, 1, 33, 33)
    with torch.no_grad():
        assert torch.allclose(net.prior(2)(z), single.denoiser(z), atol=1e-6)
    block = zoo.create("block9-cs-r25", **TINY)
    block.init_from_single(single)
    with torch.no_grad():
        assert torch.allclose(block.prior(1)(z), single.denoiser(z), atol=1e-6)
    # so the unrolled start = the phase-1 output followed by plain gradient steps
    inp = net.measure(x)
    with torch.no_grad():
        ref = single(**inp)
        for _ in range(2):
            ref = ref - net.step[0] * net.physics.gradient(ref, inp["y"])
        assert torch.allclose(net(**inp), ref, atol=1e-5)


def test_old_weights_without_strength_still_load():
    net = zoo.create("lorun-cs-r25", **TINY)
    sd = {k: v for k, v in net.state_dict().items() if k != "strength"}
    net.strength.data.zero_()
    net.load_state_dict(sd, strict=True)
    assert torch.equal(net.strength, torch.ones(3))


def test_init_from_other_ratio_keeps_own_physics():
    single = zoo.create("lorun-cs-base-r25", widths=(8, 16))
    net = zoo.create("lorun-cs-r10", **TINY)
    phi = net.physics.phi.detach().clone()
    with pytest.raises(RuntimeError):
        net.init_from_single(single)  # Φ shapes differ
    net.init_from_single(single, physics=False)
    assert torch.equal(net.physics.phi, phi)


def test_lorun_vs_block_parameters_and_merge():
    lorun = zoo.create("lorun-cs-r25")
    block = zoo.create("block9-cs-r25")
    p_lorun = count_parameters(lorun.denoiser)["total"]
    p_block = sum(p.numel() for p in block.denoisers.parameters())
    assert p_block / p_lorun >= 3.0
    merged = merge_lora(lorun.denoiser)
    assert len(merged) == 9


def test_deep_supervision_outputs():
    net = zoo.create("lorun-cs-r25", **TINY)
    outs = net(**net.measure(torch.rand(2, 1, 33, 66)), return_all=True)
    assert len(outs) == 3 and all(o.shape == (2, 1, 33, 66) for o in outs)


def test_mode_validation():
    with pytest.raises(ValueError, match="mode"):
        zoo.create("lorun-cs-r25", mode="nope")
    with pytest.raises(ValueError, match="stages=1"):
        zoo.create("lorun-cs-base-r25", stages=3)


def test_ista_matrices_missing_gives_layout_error(tmp_path):
    from zoo.data.paths import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="cs/phi"):
        resolve_model_files("lorun-cs-r25", {"phi_init": "ista", "data_root": str(tmp_path)})


def test_ista_matrices_from_fake_root(fake_cs_root):
    net = zoo.create("lorun-cs-r25", **resolve_model_files("lorun-cs-r25", {"phi_init": "ista", "data_root": str(fake_cs_root), **TINY}))
    assert net.physics.qinit is not None and tuple(net.physics.phi.shape) == (272, 1089)
    with pytest.raises(FileNotFoundError, match="phi_0_50_1089"):
        resolve_model_files("lorun-cs-r50", {"phi_init": "ista", "data_root": str(fake_cs_root)})


def test_builder_never_reads_data_files():
    with pytest.raises(ValueError, match="resolve_model_files"):
        zoo.create("lorun-cs-r25", phi_init="ista")
    with pytest.raises(ValueError, match="resolve_model_files"):
        zoo.create("lorun-cassi-9stg", mask_init="mat")


def test_real_ista_matrices(real_data_root):
    net = zoo.create("lorun-cs-r25", **resolve_model_files("lorun-cs-r25", {"phi_init": "ista", **TINY}))
    assert tuple(net.physics.qinit.shape) == (1089, 272)
