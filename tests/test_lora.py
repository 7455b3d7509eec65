"""LoRA layers: rank rule, zero start, stage selection, merge, adapter files, freezing, counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from zoo.nn.lora import (
    LoRALayer,
    count_parameters,
    freeze_base,
    grow_adapters,
    inject_lora,
    load_adapters,
    lora_rank,
    lora_state_dict,
    merge_lora,
    save_adapters,
    set_stage,
)
from zoo.nn.unet import ResUNet

LAYERS = {
    "conv3x3": (lambda: nn.Conv2d(16, 24, 3, padding=1), (2, 16, 9, 9)),
    "strided": (lambda: nn.Conv2d(8, 16, 4, stride=2, padding=1), (1, 8, 8, 8)),
    "grouped": (lambda: nn.Conv2d(16, 32, 3, padding=1, groups=4), (1, 16, 6, 6)),
    "depthwise": (lambda: nn.Conv2d(12, 12, 3, padding=1, groups=12), (1, 12, 6, 6)),
    "reflect": (lambda: nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), (1, 4, 6, 6)),
    "transposed": (lambda: nn.ConvTranspose2d(16, 8, 2, stride=2), (1, 16, 5, 5)),
    "linear": (lambda: nn.Linear(20, 30), (3, 20)),
}


@pytest.mark.parametrize("gamma, cin, cout, r", [(10, 16, 24, 2), (10, 64, 64, 7), (10, 1, 16, 1), (25, 32, 8, 2)])
def test_rank_rule(gamma, cin, cout, r):
    assert lora_rank(cin, cout, gamma) == r


@pytest.fixture(params=sorted(LAYERS))
def layer_case(request):
    torch.manual_seed(0)
    make, shape = LAYERS[request.param]
    return make(), torch.randn(*shape)


def test_starts_equal_to_base_and_stages_differ_after_training(layer_case):
    base, x = layer_case
    ref = base(x)
    lay = LoRALayer(base, num_stages=3)
    for k in (None, 0, 1, 2):
        lay.stage = k
        assert torch.allclose(lay(x), ref, atol=1e-6)
    with torch.no_grad():
        for b in lay.lora_B:
            b.normal_()
    lay.stage = 0
    y0 = lay(x)
    lay.stage = 1
    assert not torch.allclose(y0, lay(x))


def test_merge_matches_lora_forward(layer_case):
    base, x = layer_case
    net = inject_lora(nn.Sequential(base), num_stages=2)
    with torch.no_grad():
        for p in lora_state_dict(net).values():
            p.normal_()
    merged = merge_lora(net)
    for k in range(2):
        set_stage(net, k)
        assert torch.allclose(net(x), merged[k](x), atol=1e-5)
        assert not any(isinstance(m, LoRALayer) for m in merged[k].modules())


def test_param_count_matches_conv_pair():
    lay = LoRALayer(nn.Conv2d(16, 24, 3), num_stages=1)
    r = lay.rank
    assert sum(p.numel() for p in list(lay.lora_A) + list(lay.lora_B)) == 16 * 9 * r + r * 24


def test_unet_lora_freeze_count_and_adapter_file(tmp_path):
    net = inject_lora(ResUNet(1, (8, 16)), num_stages=4)
    c = count_parameters(net)
    assert c["total"] == c["base"] + c["adapters"] and c["adapters"] > 0
    freeze_base(net)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    with torch.no_grad():
        for p in lora_state_dict(net).values():
            p.normal_()
    f = save_adapters(net, tmp_path / "adapters.safetensors")
    from safetensors.torch import load_file

    assert set(load_file(str(f))) == set(lora_state_dict(net))  # adapters only, no base weights
    with pytest.raises(FileExistsError, match="overwrite"):
        save_adapters(net, f)
    other = inject_lora(ResUNet(1, (8, 16)), num_stages=4)
    other.load_state_dict({k: v for k, v in net.state_dict().items() if ".lora_" not in k}, strict=False)
    load_adapters(other, f)
    x = torch.rand(1, 1, 16, 16)
    set_stage(net, 2)
    set_stage(other, 2)
    assert torch.allclose(net(x), other(x))
    with pytest.raises(ValueError, match="does not fit"):
        load_adapters(inject_lora(ResUNet(1, (8, 16)), num_stages=2), f)


def test_stage_out_of_range():
    lay = LoRALayer(nn.Linear(4, 4), num_stages=2)
    lay.stage = 5
    with pytest.raises(IndexError):
        lay(torch.rand(1, 4))


@pytest.mark.parametrize("alpha", [None, 4.0])
def test_grow_adapters_keeps_every_stage_and_adds_rank(layer_case, alpha):
    base, x = layer_case
    torch.manual_seed(1)
    small = inject_lora(nn.Sequential(base), num_stages=3, gamma=10, alpha=alpha)
    with torch.no_grad():
        for p in lora_state_dict(small).values():
            p.normal_()
    big = inject_lora(nn.Sequential(type(base)(*_ctor_args(base))), num_stages=3, gamma=60, alpha=alpha)
    big[0].base.load_state_dict(base.state_dict())
    assert big[0].rank > small[0].rank
    grown = grow_adapters(small.state_dict(), big, source_scale=small[0].scale)
    big.load_state_dict(grown, strict=True)
    for k in range(3):
        set_stage(small, k), set_stage(big, k)
        assert torch.allclose(big(x), small(x), atol=1e-5)
    # the new directions are live: a gradient reaches the added columns of B
    set_stage(big, 1)
    big(x).square().sum().backward()
    assert big[0].lora_B[1].grad[:, small[0].rank:].abs().sum() > 0


def _ctor_args(m: nn.Module) -> tuple:
    if isinstance(m, nn.Linear):
        return (m.in_features, m.out_features)
    return (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) + (
        (m.output_padding, m.groups) if isinstance(m, nn.ConvTranspose2d) else (m.dilation, m.groups, True, m.padding_mode))


def test_grow_adapters_refuses_a_smaller_rank_or_another_layer():
    small = inject_lora(nn.Sequential(nn.Conv2d(20, 20, 3)), 2, gamma=10)
    big = inject_lora(nn.Sequential(nn.Conv2d(20, 20, 3)), 2, gamma=30)
    with pytest.raises(ValueError, match="larger gamma"):
        grow_adapters(big.state_dict(), small)
    other = inject_lora(nn.Sequential(nn.Conv2d(20, 20, 5)), 2, gamma=10)
    with pytest.raises(ValueError, match="another width or kernel"):
        grow_adapters(other.state_dict(), big)
    three = inject_lora(nn.Sequential(nn.Conv2d(20, 20, 3)), 3, gamma=30)
    with pytest.raises(KeyError, match="stage count"):
        grow_adapters(small.state_dict(), three)


def test_lorun_module_grow_rank_resumes_the_same_function(tmp_path):
    from safetensors.torch import save_file

    import zoo
    from zoo.training.lorun import LoRunModule

    torch.manual_seed(0)
    cfg = {"widths": (8, 16), "stages": 2, "phi_init": "gaussian"}
    src = zoo.create("lorun-cs-r25", **cfg)
    with torch.no_grad():
        for p in lora_state_dict(src).values():
            p.normal_(std=0.05)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    mod = LoRunModule(model="lorun-cs-r25", model_config={**cfg, "gamma": 40},
                      init_weights=str(tmp_path / "w.safetensors"), grow_rank=True)
    assert count_parameters(mod.net)["adapters"] > count_parameters(src)["adapters"]
    x = torch.rand(1, 1, 66, 66)
    with torch.no_grad():
        y = src.measure(x)
        assert torch.allclose(mod.net(**y), src(**y), atol=1e-5)
    with pytest.raises(RuntimeError):  # without grow_rank the shapes do not fit
        LoRunModule(model="lorun-cs-r25", model_config={**cfg, "gamma": 40}, init_weights=str(tmp_path / "w.safetensors"))
