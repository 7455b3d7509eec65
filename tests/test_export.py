"""ONNX / TorchScript export: LoRA merged exactly, parity with PyTorch, clear refusals, the CLI.

One tiny network per family runs in every suite; every checkpoint of the manifest (real weights) is
exported and checked when ``CI`` or ``ZOO_EXPORT_ALL`` is set (it takes minutes on 2 cores).
"""

from __future__ import annotations

import os

import pytest
import torch

import zoo
from zoo.cli.main import main
from zoo.deploy import ExportError, export, export_inputs, merged_for_export, run_exported
from zoo.hub.manifest import load_manifest
from zoo.nn.lora import LoRALayer

ort = pytest.importorskip("onnxruntime", reason="ONNX parity needs onnxruntime: pip install -e '.[test]'")

TOL = 1e-4


def _families() -> list[str]:
    """One published network per task and family kind (LoRA/Block-K/SSO/PGA/LLEMamba)."""
    return ["block9-cassi", "llemamba-lowlight", "lorun-cassi-9stg", "lorun-cs-r25", "lorun-sr-x4", "pga-flash",
            "ssopga-flash"]  # pansharpening (a 200-step NNLS inside: 100 s to export): in the CI sweep below


CASSI_TINY = dict(widths=(8, 16), stages=2, mask_size=24, step_width=8)


def _tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = CASSI_TINY if zoo.get_entry(name).task == "cassi" else zoo.get_entry(name).test_config
    net = zoo.create(name, **cfg).eval()
    with torch.no_grad():  # zero-initialised adapters/tails would make the merge trivially exact
        for n, p in net.named_parameters():
            if "lora_B" in n or p.abs().sum() == 0:
                p.add_(0.01 * torch.randn_like(p))
    return net


def test_merged_copy_is_bit_identical_and_has_no_adapters():
    net = _tiny("lorun-cs-r25")
    merged = merged_for_export(net)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert any(isinstance(m, LoRALayer) for m in net.modules()), "the caller's network keeps its adapters"
    inputs = net.measure(torch.rand(1, 1, 66, 66))
    with torch.no_grad():
        assert torch.equal(net(**inputs), merged(**inputs))


@pytest.mark.parametrize("name", _families())
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_every_family_exports_with_parity(name, fmt, tmp_path):
    net = _tiny(name)
    size = None if zoo.get_entry(name).task == "cassi" else 48
    path = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    if fmt == "onnx" and net.onnx_blocker:  # refused up front, naming the operator and the way out
        with pytest.raises(ExportError, match=r"cannot be exported to ONNX: .*zoo\.(nn|physics)\..*--format torchscript"):
            export(net, path, name=name)
        assert not path.exists()
        return
    rep = export(net, path, format=fmt, size=size, name=name, dynamic=False)  # dynamic: its own test (time)
    assert path.is_file() and rep.max_abs_err <= TOL, rep.line()
    _, args, _ = export_inputs(net, size or int(net.physics.mask.shape[-1]))
    with torch.no_grad():
        ref = net(**dict(zip(rep.inputs, args)), **rep.fixed)
    assert float((run_exported(path, args) - ref).abs().max()) <= TOL
    if fmt == "onnx":
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["zoo.name"] == name and "parity vs PyTorch" in meta["zoo.export"]


def test_dynamic_size_graph_runs_at_another_size(tmp_path):
    net = _tiny("ssopga-flash")
    # 45 and 71 are odd: the U-Net pads them (a branch on the size would have fixed the graph at 48)
    rep = export(net, tmp_path / "f.onnx", size=48, check_size=45)
    assert rep.dynamic and rep.max_abs_err <= TOL, rep.line()
    _, args, _ = export_inputs(net, 71)
    with torch.no_grad():
        ref = net(**dict(zip(rep.inputs, args)))
    assert float((run_exported(tmp_path / "f.onnx", args) - ref).abs().max()) <= TOL
    cs = export(_tiny("lorun-cs-r25"), tmp_path / "c.onnx", size=66)
    assert not cs.dynamic and "img_size fixed at export" in cs.dynamic_note


def test_refusals(tmp_path):
    net = _tiny("lorun-cs-r25")
    out = tmp_path / "m.onnx"
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        export(net, out)
    assert out.read_text() == "keep me"
    with pytest.raises(ValueError, match="format must be one of"):
        export(net, tmp_path / "m.bin", format="tflite")


def test_exporter_failure_names_the_operator_and_leaves_no_file(tmp_path):
    class Unexportable(torch.nn.Module):  # complex-valued repeat: no ONNX decomposition (as the SR data step)
        physics = None
        tile_multiple = 1
        onnx_blocker = None

        def example_inputs(self, size):
            return {"x": torch.rand(1, 1, size, size)}

        def forward(self, x):
            return torch.fft.fft2(x).repeat(1, 1, 1, 1).real

    with pytest.raises(ExportError, match="export of Unexportable failed: .*aten.repeat"):
        export(Unexportable(), tmp_path / "u.onnx", dynamic=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_export_of_a_published_checkpoint(tmp_path, capsys):
    out = tmp_path / "cs.pt"
    assert main(["export", "lorun-cs-r25", "-o", str(out), "--size", "66", "--report", str(tmp_path / "r.json")]) == 0
    assert "parity vs PyTorch" in capsys.readouterr().out and out.is_file() and (tmp_path / "r.json").is_file()
    assert main(["export", "lorun-cs-r25", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "lorun-cs-r25", "-o", str(tmp_path / "cs.bin")]) == 2
    assert "--format" in capsys.readouterr().err


ALL = bool(os.environ.get("CI") or os.environ.get("ZOO_EXPORT_ALL"))


@pytest.mark.skipif(not ALL, reason="exports every checkpoint (minutes): runs in CI or with ZOO_EXPORT_ALL=1")
@pytest.mark.parametrize("name", sorted(load_manifest().checkpoints))
def test_every_checkpoint_exports_to_onnx_with_parity(name, tmp_path):
    net = zoo.load(name)
    path = tmp_path / ("m.pt" if net.onnx_blocker else "m.onnx")  # where ONNX cannot, TorchScript
    rep = export(net, path, name=name, dynamic=False)
    assert rep.max_abs_err <= TOL, rep.line()


def test_allocator_tuning_is_idempotent_and_can_be_turned_off():
    import subprocess
    import sys

    from zoo.utils.allocator import tune_allocator

    assert tune_allocator() == tune_allocator()
    code = "from zoo.utils.allocator import tune_allocator; print(tune_allocator())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "ZOO_MALLOC_TUNING": "0"})
    assert r.stdout.strip() == "False", r.stderr
