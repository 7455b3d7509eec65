"""Export every checkpoint of the manifest and record parity, dynamic size and export time (issue 20).

ONNX where the network allows it (symbolic H×W tried first), TorchScript where ONNX cannot (the model's
``onnx_blocker`` says why). Parity: max |Δ| and PSNR of the exported graph vs PyTorch on two inputs.

    python experiments/studies/export_all.py   # → results/deploy/export/summary.md (+ results.json)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import zoo
from zoo.deploy import ExportError, export
from zoo.hub.manifest import load_manifest

OUT = Path("results/deploy/export")


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            net = zoo.load(name)
            t = time.perf_counter()
            fmt = "torchscript" if net.onnx_blocker else "onnx"
            try:
                rep = export(net, Path(tmp) / f"{name}.{'pt' if fmt == 'torchscript' else 'onnx'}", format=fmt, name=name)
            except ExportError as e:
                rows[name] = {"format": fmt, "error": str(e)}
                print(name, "FAILED", e, flush=True)
                continue
            size = (Path(tmp) / Path(rep.path).name).stat().st_size
            rows[name] = {"format": fmt, "dynamic": rep.dynamic, "why_fixed": rep.dynamic_note or "",
                          "inputs": rep.inputs, "opset": rep.opset, "max_abs_err": rep.max_abs_err,
                          "psnr_vs_torch": rep.psnr_vs_torch, "export_s": time.perf_counter() - t,
                          "file_mib": size / 2**20, "onnx_blocker": net.onnx_blocker or ""}
            print(name, rep.line(), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    if (OUT / "results.json").is_file() and len(names) < len(load_manifest().checkpoints):  # a partial re-run
        rows = {**json.loads((OUT / "results.json").read_text()), **rows}
        rows = {n: rows[n] for n in sorted(rows)}
    (OUT / "results.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    lines = ["# Export of every checkpoint: parity with PyTorch", "",
             f"Command: `python experiments/studies/export_all.py` (torch {torch.__version__}, 1 CPU thread; onnxruntime "
             "CPU provider). Parity: the larger max |Δ| of two inputs (the example and a fresh one; at a second size "
             "when the graph is dynamic).", "",
             "| checkpoint | format | H×W | max abs err | PSNR vs PyTorch (dB) | file (MiB) | export (s) | note |",
             "|---|---|---|---|---|---|---|---|"]
    for n, r in rows.items():
        if "error" in r:
            lines.append(f"| {n} | {r['format']} | – | – | – | – | – | failed: {r['error']} |")
            continue
        note = r["onnx_blocker"] and f"ONNX refused: {r['onnx_blocker']}"
        lines.append(f"| {n} | {r['format']}{' opset ' + str(r['opset']) if r['opset'] else ''} | "
                     f"{'dynamic' if r['dynamic'] else 'fixed (' + r['why_fixed'] + ')'} | {r['max_abs_err']:.1e} | "
                     f"{r['psnr_vs_torch']:.1f} | {r['file_mib']:.2f} | {r['export_s']:.0f} | {note} |")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(load_manifest().checkpoints))
