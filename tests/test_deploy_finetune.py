"""Deployment of fine-tunes: adapter-only ``zoo finetune``, adapter files (checks), zoo.load(adapters=), swapping,
and the inference merge cache of the LoRA layers (bit-identical, invalidated, never in training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file

import zoo
from zoo.cli.main import main
from zoo.data import resolve_model_files
from zoo.nn.lora import (inject_lora, load_adapters, lora_state_dict, merge_cache, merged_stages, read_adapters,
                         save_adapters, set_stage)
from zoo.nn.unet import ResUNet
from zoo.tasks.finetune import finetune_args

NAME = "lorun-cs-r25"
CFG = {"stages": 2, "widths": [8, 16]}


@pytest.fixture
def tiny_ckpt(tiny_ckpt, monkeypatch):
    """conftest's tiny lorun-cs-r25 checkpoint, run from its folder (fine-tunes write runs/ there)."""
    monkeypatch.chdir(tiny_ckpt)
    return tiny_ckpt


@pytest.fixture
def finetuned(tiny_ckpt, fake_cs_root):
    out = tiny_ckpt / "ft"
    assert main(["finetune", NAME, "--data", str(fake_cs_root / "images" / "Train400"), "--out", str(out),
                 "--fast-dev-run", "--batch-size", "2", "--patch", "66", "--accelerator", "cpu", "--lr", "0.05"]) == 0
    return out / "export"


def test_adapter_only_finetune_exports_and_loads(finetuned, tiny_ckpt):
    ad = finetuned / "adapters.safetensors"
    sd, meta = read_adapters(ad)
    rec = zoo.checkpoint(NAME)
    assert meta["format"] == "zoo-lora-adapters" and meta["model"] == NAME and meta["base"] == NAME
    assert meta["base_sha256"] == rec.files["model.safetensors"].sha256
    assert {"step", "strength"} <= set(sd) and not any(k.startswith("physics.") for k in sd)
    assert ad.stat().st_size < (finetuned / "model.safetensors").stat().st_size
    with pytest.warns(UserWarning, match="without sha256"):
        whole = zoo.load(NAME, path=finetuned, verify=False)
    net, base = zoo.load(NAME, adapters=ad), zoo.load(NAME)
    a, w, b = net.state_dict(), whole.state_dict(), base.state_dict()
    assert all(torch.equal(a[k], w[k]) for k in a)  # base + adapters = the whole fine-tuned network
    assert any(not torch.equal(a[k], b[k]) for k in sd)  # the adapters moved ...
    assert all(torch.equal(a[k], b[k]) for k in a if k not in sd)  # ... and nothing else (Φ, base prior) did
    _refusals(finetuned, tiny_ckpt)


def test_full_and_adapters_only_conflict(tiny_ckpt, fake_cs_root):
    args = finetune_args(NAME, fake_cs_root, tiny_ckpt / "x")
    assert "--trainer.callbacks.adapters=true" in args  # the default for a LoRun model
    assert "--trainer.callbacks.adapters=true" not in finetune_args(NAME, fake_cs_root, tiny_ckpt / "x", full=True)
    with pytest.raises(ValueError, match="choose one"):
        finetune_args(NAME, fake_cs_root, tiny_ckpt / "x", full=True, adapters_only=True)
    with pytest.raises(ValueError, match="published name or a .safetensors"):
        finetune_args(NAME, fake_cs_root, tiny_ckpt / "x", weights=str(tiny_ckpt / "last.ckpt"))


def _refusals(finetuned: Path, tiny_ckpt: Path) -> None:
    """zoo.load(adapters=) refuses another base, another model, a full weights file, junk and a folder."""
    ad = finetuned / "adapters.safetensors"
    sd, meta = read_adapters(ad)
    other = tiny_ckpt / "other_base.safetensors"  # adapters trained on other base weights
    save_file(sd, str(other), metadata={**meta, "base_sha256": "0" * 64})
    with pytest.raises(ValueError, match="other base weights"):
        zoo.load(NAME, adapters=other)
    save_file(sd, str(other), metadata={**meta, "model": "lorun-cs-r10"})
    with pytest.raises(ValueError, match="another model"):
        zoo.load(NAME, adapters=other)
    with pytest.raises(ValueError, match="not a zoo adapter file"):
        zoo.load(NAME, adapters=finetuned / "model.safetensors")
    (tiny_ckpt / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        zoo.load(NAME, adapters=tiny_ckpt / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="folder"):
        zoo.load(NAME, adapters=finetuned)


def _net(stages: int = 3, gamma: float = 10.0) -> nn.Module:
    torch.manual_seed(0)
    net = inject_lora(ResUNet(1, (8, 16)), num_stages=stages, gamma=gamma)
    with torch.no_grad():
        for p in lora_state_dict(net).values():
            p.normal_(0, 0.1)
    return net.eval()


def test_adapter_file_checks(tmp_path):
    net = _net()
    f = save_adapters(net, tmp_path / "a.safetensors", metadata={"model": "toy"})
    with pytest.raises(ValueError, match="3 stage adapter sets, this model has 2"):
        load_adapters(_net(stages=2), f)
    with pytest.raises(ValueError, match="another rank"):
        load_adapters(_net(gamma=30), f)
    with pytest.raises(ValueError, match="model='toy', not 'other'"):
        load_adapters(_net(), f, expect={"model": "other"})
    with pytest.raises(ValueError, match="records no base_sha256"):
        load_adapters(_net(), f, expect={"base_sha256": "0" * 64})
    sd, meta = read_adapters(f)  # tampered: one value changed, the metadata kept
    k = sorted(sd)[0]
    sd[k] = sd[k].clone()
    sd[k].view(-1)[0] += 1
    save_file(sd, str(tmp_path / "t.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="recorded sha256"):
        load_adapters(_net(), tmp_path / "t.safetensors")
    bad = _net()
    with torch.no_grad():
        next(iter(lora_state_dict(bad).values())).view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        load_adapters(_net(), save_adapters(bad, tmp_path / "nan.safetensors"))
    with safe_open(str(f), framework="pt") as h:
        assert json.loads(h.metadata()["extra"]) == [] and h.metadata()["stages"] == "3"


def test_swap_adapters_without_reloading_the_base(tmp_path):
    net, x = _net(), torch.rand(1, 1, 16, 16)
    f1 = save_adapters(net, tmp_path / "1.safetensors")
    other = _net()
    with torch.no_grad():
        for k, p in lora_state_dict(other).items():
            if ".lora_B." in k:
                p.mul_(-1)  # B only: (−B)(−A) would be the same update
    f2 = save_adapters(other, tmp_path / "2.safetensors")
    set_stage(net, 1)
    with torch.no_grad():
        y1 = net(x)
        base_w = [m.base.weight.data_ptr() for m in net.modules() if hasattr(m, "lora_A")]
        load_adapters(net, f2)
        y2 = net(x)
        load_adapters(net, f1)
        y1b = net(x)
    assert not torch.allclose(y1, y2) and torch.equal(y1, y1b)  # the merge cache followed both swaps
    assert base_w == [m.base.weight.data_ptr() for m in net.modules() if hasattr(m, "lora_A")]


@pytest.mark.parametrize("channels_last", [False, True])
def test_merge_cache_bit_identical_and_invalidated(channels_last):
    net, x = _net(), torch.rand(1, 1, 16, 16)
    if channels_last:  # as zoo.load leaves the weights on CPU
        net.to(memory_format=torch.channels_last)
    set_stage(net, 2)
    with torch.no_grad():
        with merge_cache(False):
            ref = net(x)
        first, again = net(x), net(x)
        assert torch.equal(first, ref) and torch.equal(again, ref)
        layer = next(m for m in net.modules() if hasattr(m, "lora_B"))
        assert 2 in layer._merged
        layer.lora_B[2].add_(0.5)  # an in-place edit of an adapter
        edited = net(x)
        with merge_cache(False):
            edited_ref = net(x)
    assert torch.equal(edited, edited_ref) and not torch.equal(edited, ref)


def test_channels_last_layout_on_cpu_keeps_the_outputs():
    nchw = zoo.load("lorun-cs-r25", channels_last=False)
    nhwc = zoo.load("lorun-cs-r25")  # the CPU default
    conv = lambda net: next(m for m in net.modules() if hasattr(m, "lora_B") and m.base.weight.ndim == 4 and m.base.weight.shape[1] > 1)  # noqa: E731
    assert conv(nchw).base.weight.is_contiguous() and not conv(nhwc).base.weight.is_contiguous()
    assert conv(nhwc).base.weight.is_contiguous(memory_format=torch.channels_last)
    inp = nchw.example_inputs(40)
    with torch.no_grad():
        a, b = nchw(**inp), nhwc(**inp)
    assert (a - b).abs().max() < 1e-5
    with torch.no_grad():  # the merged stage copies (W0 + B·A) keep the NHWC layout of W0
        merged = merged_stages(nhwc, nhwc.denoiser)
    w = next(m.weight for m in merged[3].modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1)
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert set(nchw.state_dict()) == set(nhwc.state_dict())


def test_merge_cache_never_in_training():
    net, x = _net(), torch.rand(2, 1, 16, 16)
    set_stage(net, 1)
    with torch.no_grad():
        net(x)  # fills the cache in eval
    net.train()
    layers = [m for m in net.modules() if hasattr(m, "lora_B")]
    assert all(not m._merged for m in layers)  # train() clears it

    def grads() -> list[torch.Tensor]:
        net.zero_grad()
        net(x).square().mean().backward()
        return [p.grad.clone() for n, p in net.named_parameters() if ".lora_" in n and p.grad is not None]

    g_on = grads()
    with merge_cache(False):
        g_off = grads()
    assert g_on and all(torch.equal(a, b) for a, b in zip(g_on, g_off))
    assert all(not m._merged for m in layers)


@pytest.mark.parametrize("name", ["lorun-cs-r25", "lorun-cassi-9stg", "lorun-sr-x2"])
def test_merged_stage_copies_match_the_adapters_and_follow_their_changes(name):
    torch.manual_seed(0)
    net = zoo.create(name, stages=3, widths=(8, 16)).eval()
    with torch.no_grad():
        for p in lora_state_dict(net).values():
            p.normal_(0, 0.1)
    inp = net.example_inputs(40) if name != "lorun-cassi-9stg" else net.measure(torch.rand(1, net.channels, 24, 24))
    with torch.no_grad():
        with merge_cache(False):
            ref = net(**inp)  # stages selected layer by layer, nothing cached
            assert merged_stages(net, net.denoiser) is None
        out = net(**inp)
        copies = merged_stages(net, net.denoiser)
        assert copies is not None and len(copies) == 3 and copies is merged_stages(net, net.denoiser)  # built once
        assert not any(hasattr(m, "lora_B") for m in copies.modules())  # plain layers: no adapter maths at inference
        assert (out - ref).abs().max() < 1e-5
        b = next(p for k, p in lora_state_dict(net).items() if k.endswith("lora_B.1"))
        b.add_(0.5)  # an in-place edit of stage 2's adapter: the next forward must see it
        with merge_cache(False):
            ref2 = net(**inp)
        out2 = net(**inp)
        assert merged_stages(net, net.denoiser) is not copies and (out2 - ref2).abs().max() < 1e-5
        assert (out2 - out).abs().max() > 1e-4
    net.train()
    assert merged_stages(net, net.denoiser) is None  # training never uses the copies
    with torch.enable_grad():
        net.eval()
        assert merged_stages(net, net.denoiser) is None  # nor does a forward with grad
