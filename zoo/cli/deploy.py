"""``zoo export NAME --format onnx|torchscript -o FILE``: a pretrained network as a deployable graph."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoo.api import load
from zoo.deploy import FORMATS, export

__all__ = ["add_commands"]


def cmd_export(ns: argparse.Namespace) -> int:
    net = load(ns.name, path=ns.path, verify=not ns.unverified) if ns.path else load(ns.name)
    out = Path(ns.output)
    fmt = ns.format or ("onnx" if out.suffix == ".onnx" else "torchscript" if out.suffix in (".pt", ".pth") else None)
    if fmt is None:
        raise ValueError(f"cannot tell the format from {out.name!r}: pass --format onnx|torchscript (or name the "
                         "file .onnx / .pt)")
    rep = export(net, out, format=fmt, size=ns.size, name=ns.name, dynamic=not ns.fixed_size, overwrite=ns.overwrite)
    print(f"{ns.name} → {out}: {rep.line()}")
    if ns.report:
        Path(ns.report).write_text(json.dumps(rep.__dict__, indent=2, default=str) + "\n")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("export", help="export a pretrained model to ONNX or TorchScript (LoRA merged, parity checked)",
                       description="Export NAME (LoRA adapters merged into per-stage weights, the physics' masks and "
                                   "kernels baked in) and check the exported graph against PyTorch on an example "
                                   "input. (The run → checkpoint command is `zoo export-run`.)")
    s.add_argument("name", metavar="NAME")
    s.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (.onnx or .pt)")
    s.add_argument("--format", choices=FORMATS, help="default: from the file suffix")
    s.add_argument("--size", type=int, help="example input size in pixels (default: the model's natural size)")
    s.add_argument("--fixed-size", action="store_true", help="do not try dynamic height/width")
    s.add_argument("--path", help="export your own weights (a checkpoint folder or model.safetensors) instead")
    s.add_argument("--unverified", action="store_true", help="with --path: weights not in the manifest (fine-tunes)")
    s.add_argument("--report", metavar="JSON", help="also write the export report (parity, shapes, versions) here")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_export)
