"""1×1 convolutions as one matrix product: ``y[n, :, i, j] = W x[n, :, i, j] + b``.

On a CPU, PyTorch runs a single-image 1×1 convolution at one thread through its reference kernel
(``slow_conv2d``), which first copies the input into NCHW columns: for the mask-guided CASSI stage
that copy was the largest single cost of a forward pass (a channels-last 56-channel 256² input, 17
ms a call). The same map is one GEMM over the pixels, with no copy in either layout:

* channels-last ``x``: ``x.permute(0, 2, 3, 1)`` is a contiguous ``(N, H, W, C)`` view, so
  ``linear(view, W, b).permute(0, 3, 1, 2)`` is the output, channels-last again;
* NCHW ``x``: ``W @ x.view(N, C, H·W)``.

Elsewhere (CUDA, other strides, tracing for export, where a ``Conv`` node is what runtimes expect)
it is ``F.conv2d``. :class:`PointwiseConv2d` is an ``nn.Conv2d`` (same parameters, same state-dict
keys, a LoRA target like any convolution) whose forward takes this path.

Example:
    >>> import torch
    >>> from zoo.nn.pointwise import PointwiseConv2d
    >>> conv = PointwiseConv2d(8, 4)
    >>> x = torch.rand(2, 8, 5, 6)
    >>> torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight, conv.bias), atol=1e-6)
    True
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.utils.tracing import tracing

__all__ = ["pointwise_conv", "PointwiseConv2d"]


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` for a 1×1, stride-1, ungrouped ``weight`` ``(C_out, C_in, 1, 1)`` (module docstring)."""
    if x.device.type == "cpu" and x.dim() == 4 and not tracing():
        w = weight.reshape(weight.shape[0], weight.shape[1])
        if x.is_contiguous():
            n, c, h, wd = x.shape
            if n == 1 and bias is not None:
                return torch.addmm(bias[:, None], w, x.view(c, h * wd)).view(1, -1, h, wd)
            y = torch.matmul(w, x.view(n, c, h * wd))
            return (y if bias is None else y.add_(bias[:, None])).view(n, -1, h, wd)
        if x.is_contiguous(memory_format=torch.channels_last):
            return F.linear(x.permute(0, 2, 3, 1), w, bias).permute(0, 3, 1, 2)
    return F.conv2d(x, weight, bias)


class PointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(c_in, c_out, 1)`` computed by :func:`pointwise_conv`."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(x, self.weight, self.bias)
