"""Whether torch is building a graph (tracing, compiling or exporting) rather than running eagerly."""

from __future__ import annotations

import torch

__all__ = ["tracing"]


def tracing() -> bool:
    """True while torch traces, compiles or exports: value checks (``if (x < 0).any(): raise``) and host
    reads are skipped then — a data-dependent ``raise`` cannot be part of an ONNX/TorchScript graph."""
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting())
