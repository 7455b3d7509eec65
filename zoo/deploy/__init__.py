"""Deployment outside Python: ONNX and TorchScript export of any registered network, with parity checks.

Example:
    >>> import zoo
    >>> from zoo.deploy import export
    >>> net = zoo.create("lorun-cs-r25", stages=2)
    >>> report = export(net, "/tmp/zoo-doctest-cs.onnx", size=66, overwrite=True)  # doctest: +SKIP
"""

from zoo.deploy.export import FORMATS, OPSET, ExportError, ExportReport, export, export_inputs, merged_for_export, run_exported

__all__ = ["FORMATS", "OPSET", "export", "export_inputs", "merged_for_export", "run_exported", "ExportError", "ExportReport"]
