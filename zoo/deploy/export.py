"""ONNX / TorchScript export of a zoo network, LoRA merged, with a parity check against PyTorch.

A :class:`~zoo.models.base.Restorer` is called with keyword inputs (``net(**net.measure(x))``).
The exported graph takes the **tensor** inputs of :meth:`~zoo.models.base.Restorer.example_inputs`
in that order (their names become the graph's input names) and returns the restored image
(``"output"``); non-tensor inputs (the CS ``img_size``, the SR ``scale``) are fixed at export time.
The physics' buffers (CASSI mask, CS Φ, pansharpening MTF) are baked into the graph as constants.

Before export every LoRA layer is replaced by its K merged weights ``W_k = W₀ + s·B_k A_k``
(:func:`merged_for_export`): the graph holds no adapters and runs as fast as Block-K.

Dynamic H/W: ONNX export first tries symbolic height/width (``torch.export`` dims); a network whose
Python code specialises on the size (padding to a multiple, a mask of fixed size) is exported at
the given size instead, and the report says ``dynamic: false`` with the reason.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from zoo.models.base import Restorer
from zoo.nn.lora import bake_stages
from zoo.physics.cassi import SDCASSI
from zoo.utils.files import atomic_write
from zoo.utils.version import package_version

__all__ = ["export", "export_inputs", "merged_for_export", "run_exported", "ExportError", "ExportReport", "FORMATS",
           "OPSET"]

FORMATS = ("onnx", "torchscript")
OPSET = 18  # DFT (the SR data step's FFTs) needs ≥ 17; 18 is the exporter's default in torch 2.x


class ExportError(RuntimeError):
    """A network (or one of its operators) cannot be exported in the asked format."""


@dataclass
class ExportReport:
    """What was written and how well it matches PyTorch."""

    path: str
    format: str
    name: str
    inputs: dict[str, list[int]]
    fixed: dict[str, Any]
    dynamic: bool
    dynamic_note: str
    opset: int | None
    max_abs_err: float
    psnr_vs_torch: float
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary printed by ``zoo export`` and written into model metadata."""
        dyn = "dynamic H×W" if self.dynamic else f"fixed size ({self.dynamic_note})"
        opset = f", opset {self.opset}" if self.opset else ""
        return (f"exported with zoo {self.versions.get('zoo', '?')} / torch {self.versions.get('torch', '?')} "
                f"to {self.format}{opset}, {dyn}; parity vs PyTorch: max |Δ| {self.max_abs_err:.2e}, "
                f"PSNR {self.psnr_vs_torch:.1f} dB")


@torch.no_grad()
def merged_for_export(net: Restorer) -> Restorer:
    """A copy of ``net`` in eval mode with every LoRA layer's K adapter sets merged into K plain weights
    (:func:`zoo.nn.lora.bake_stages`), no adapter parameters, weights in the default (NCHW) layout the exported
    graph and its runtimes assume: bit-identical to the on-the-fly path of an NCHW network (a channels-last
    one, as ``zoo.load`` gives on CPU, differs by float rounding, ≲ 1e-5)."""
    out = bake_stages(copy.deepcopy(net).eval().to(memory_format=torch.contiguous_format))
    out.requires_grad_(False)
    return out


def export_inputs(net: Restorer, size: int) -> tuple[list[str], list[torch.Tensor], dict[str, Any]]:
    """The graph inputs of ``net`` at ``size``: (names, tensors, fixed non-tensor inputs)."""
    inputs = net.example_inputs(size)
    names = [k for k, v in inputs.items() if torch.is_tensor(v)]
    fixed = {k: v for k, v in inputs.items() if not torch.is_tensor(v)}
    return names, [inputs[k] for k in names], fixed


class _Graph(nn.Module):
    """Positional tensors in, one tensor out (what ONNX and TorchScript graphs take)."""

    def __init__(self, net: nn.Module, names: list[str], fixed: dict[str, Any]) -> None:
        super().__init__()
        self.net, self.names, self.fixed = net, list(names), dict(fixed)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.net(**dict(zip(self.names, tensors)), **self.fixed)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _unsupported(e: BaseException) -> str:
    """The root cause of an exporter error in one line, preferring a line that names an operator."""
    root = e
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(root).splitlines()]
    lines = [ln for ln in lines if ln]
    named = [ln for ln in lines if re.search(r"unsupported|not supported|no decomposition|aten::|aten\.|operator",
                                              ln, re.I)]
    first = (named or lines or [""])[0]
    return f"{type(root).__name__}: {first[:300]}"


def _export_onnx(graph: _Graph, args: tuple[torch.Tensor, ...], names: list[str], tmp: Path,
                 dynamic: bool) -> None:
    import torch.onnx

    dyn = None
    if dynamic:
        d = torch.export.Dim.AUTO
        # forward(*tensors): one varargs entry holding a spec per tensor (images: H and W symbolic)
        dyn = (tuple({2: d, 3: d} if t.ndim == 4 and min(t.shape[-2:]) > 1 else None for t in args),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(graph, args, dynamo=True, input_names=names, output_names=["output"],
                                 opset_version=OPSET, dynamic_shapes=dyn, optimize=True, verbose=False,
                                 external_data=False)
    prog.save(str(tmp))


def run_exported(path: str | Path, inputs: dict[str, torch.Tensor] | list[torch.Tensor],
                 format: str | None = None) -> torch.Tensor:
    """Run an exported file (ONNX through onnxruntime's CPU provider, TorchScript through ``torch.jit``);
    ``format`` defaults from the suffix (``.onnx`` → ONNX)."""
    path = Path(path)
    tensors = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
    if (format or ("onnx" if path.suffix == ".onnx" else "torchscript")) == "onnx":
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ExportError("running an ONNX file needs onnxruntime: pip install 'unfolding-zoo[deploy]'") from e
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {i.name: t.detach().cpu().float().numpy() for i, t in zip(sess.get_inputs(), tensors)}
        return torch.from_numpy(sess.run(None, feed)[0])
    mod = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return mod(*[t.float() for t in tensors])


def export(net: Restorer, path: str | Path, *, format: str | None = None, size: int | None = None,
           name: str = "", dynamic: bool = True, overwrite: bool = False, check_size: int | None = None) -> ExportReport:
    """Export ``net`` to ``path`` (``.onnx`` or ``.pt``) and check it against PyTorch.

    Args:
        net: a zoo network (``zoo.load(name)``); it is not modified (a merged copy is exported).
        path: output file; refused if it exists unless ``overwrite`` (written atomically).
        format: ``"onnx"`` or ``"torchscript"`` (default from the suffix: ``.onnx`` → ONNX, else TorchScript).
        size: spatial size of the example input (default: the network's natural size — the CASSI mask's, else 64).
        dynamic: try symbolic H×W (ONNX); falls back to the fixed ``size`` when the network specialises on it.
        check_size: a second size to check a dynamic graph at (default ``size + tile_multiple·2``).

    Returns:
        :class:`ExportReport` (max abs error and PSNR of the exported graph vs PyTorch on the example input).

    Raises:
        ExportError: the exporter failed; the message names the operator where the exporter does.
    """
    path = Path(path)
    fmt = format or ("onnx" if path.suffix == ".onnx" else "torchscript")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    if fmt == "onnx" and net.onnx_blocker:
        raise ExportError(f"{name or type(net).__name__} cannot be exported to ONNX: {net.onnx_blocker}; "
                          "use --format torchscript")
    t0 = time.perf_counter()
    net = merged_for_export(net).float().cpu()
    size = int(size or _natural_size(net))
    names, args, fixed = export_inputs(net, size)
    graph = _Graph(net, names, fixed).eval()
    with torch.no_grad():
        ref = graph(*args)
    dyn_ok, note = False, "TorchScript traces one size"
    other = int(check_size or size + 2 * max(1, int(net.tile_multiple)))
    with atomic_write(path, overwrite=overwrite) as tmp:
        if fmt == "onnx":
            if dynamic and fixed:
                note = f"{', '.join(fixed)} fixed at export"
            elif dynamic and isinstance(net.physics, SDCASSI):
                note = "the coded aperture's size"
            elif dynamic:
                try:  # Dim.AUTO may specialise silently: the graph must also run at another size
                    _export_onnx(graph, tuple(args), names, tmp, True)
                except Exception as e:  # noqa: BLE001 - the exporter raises many types; retried at a fixed size
                    note = f"the network specialises on its input size: {_unsupported(e)[:160]}"
                else:
                    _, args_o, _ = export_inputs(net, other)
                    try:
                        with torch.no_grad():
                            d = float((run_exported(tmp, args_o, fmt) - graph(*args_o)).abs().max())
                        dyn_ok, note = d <= 1e-3, "" if d <= 1e-3 else f"differs by {d:.2g} at {other}×{other}"
                    except Exception:  # noqa: BLE001 - onnxruntime refuses a shape the exporter kept constant
                        note = f"the exporter kept a size-dependent value constant (the graph fails at {other}×{other})"
            else:
                note = "--fixed-size"
            if not dyn_ok:
                try:
                    _export_onnx(graph, tuple(args), names, tmp, False)
                except Exception as e:  # noqa: BLE001
                    raise ExportError(f"ONNX export of {name or type(net).__name__} failed: {_unsupported(e)}; "
                                      "try --format torchscript") from e
        else:
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(graph, tuple(args), check_trace=False)
                extra = {"zoo.json": json.dumps({"name": name, "inputs": names, "fixed": _jsonable(fixed)})}
                torch.jit.save(traced, str(tmp), _extra_files=extra)
            except Exception as e:  # noqa: BLE001
                raise ExportError(f"TorchScript export of {name or type(net).__name__} failed: {_unsupported(e)}") from e
        got = run_exported(tmp, args, fmt)
        err = float((got - ref).abs().max())
        # a second input with other content (at another size for a dynamic graph): a graph that baked in a
        # value of the example input instead of computing it fails here
        _, args2, _ = export_inputs(net, other if dyn_ok else size)
        with torch.no_grad():
            ref2 = graph(*args2)
        err = max(err, float((run_exported(tmp, args2, fmt) - ref2).abs().max()))
        report = ExportReport(
            path=str(path), format=fmt, name=name, inputs={k: list(t.shape) for k, t in zip(names, args)},
            fixed=_jsonable(fixed), dynamic=dyn_ok, dynamic_note=note, opset=OPSET if fmt == "onnx" else None,
            max_abs_err=err, psnr_vs_torch=_psnr(got, ref), seconds=time.perf_counter() - t0,
            versions={"zoo": package_version(), "torch": torch.__version__})
        if fmt == "onnx":
            _stamp_onnx(tmp, report)
    return report


def _natural_size(net: Restorer) -> int:
    """The CASSI mask's size (the measurement is tied to it), else 64 rounded up to the tile multiple."""
    if isinstance(net.physics, SDCASSI):
        return int(net.physics.mask.shape[-1])
    m = max(1, int(net.tile_multiple))
    return m * max(1, math.ceil(64 / m))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _stamp_onnx(tmp: Path, report: ExportReport) -> None:
    import onnx

    model = onnx.load(str(tmp))
    meta = {"zoo.name": report.name, "zoo.export": report.line(),
            "zoo.report": json.dumps({k: v for k, v in asdict(report).items() if k != "path"})}
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(model, str(tmp))
