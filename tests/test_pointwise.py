"""The 1×1 convolution as a matrix product (zoo.nn.pointwise): the same map as F.conv2d in every layout."""

import pytest
import torch
import torch.nn.functional as F

from zoo.nn.lora import LoRALayer
from zoo.nn.pointwise import PointwiseConv2d, pointwise_conv


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("n,bias", [(1, True), (3, True), (2, False)])
def test_pointwise_matches_conv2d_forward_and_backward(layout, n, bias):
    torch.manual_seed(0)
    x = torch.randn(n, 6, 5, 7, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randn(n, 6, 5, 14, dtype=torch.float64)[..., ::2]
    x.requires_grad_(True)
    w = torch.randn(4, 6, 1, 1, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True) if bias else None
    y = pointwise_conv(x, w, b)
    ref = F.conv2d(x, w, b)
    assert y.shape == ref.shape and (y - ref).abs().max() < 1e-12
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)  # the layout the next layer runs in
    g = torch.randn_like(ref)
    got = torch.autograd.grad(y, [x, w] + ([b] if bias else []), g)
    want = torch.autograd.grad(ref, [x, w] + ([b] if bias else []), g)
    assert all((a - c).abs().max() < 1e-10 for a, c in zip(got, want))


def test_pointwise_module_is_a_conv_with_the_same_state_and_a_lora_target():
    conv = PointwiseConv2d(8, 4)
    assert isinstance(conv, torch.nn.Conv2d) and set(conv.state_dict()) == {"weight", "bias"}
    x = torch.rand(1, 8, 9, 9)
    lora = LoRALayer(conv, num_stages=2).eval()
    lora.stage = 1
    with torch.no_grad():
        torch.nn.init.normal_(lora.lora_B[1])
        assert (lora(x) - F.conv2d(x, lora.weight_for(1), conv.bias)).abs().max() < 1e-5


def test_pointwise_traces_as_a_conv():
    conv = PointwiseConv2d(3, 2).eval()
    graph = torch.jit.trace(conv, torch.rand(1, 3, 4, 4)).inlined_graph
    assert "aten::_convolution" in str(graph) and "aten::addmm" not in str(graph)
