"""Benchmark protocol of pansharpening (Wald reduced resolution) for ``zoo bench``.

* Test sets: ``WV3_test`` (``pansharpen/reduced/WV3_test.mat``, 8 bands) and ``Pleiades_test``
  (4 bands) — the CDIF files: ``gt`` 256×256, ``lrms`` 64×64, ``pan`` 256×256 in [0, 1]. A model
  is benchmarked on the test sets of its band count (``zoo bench NAME --dataset WV3_test``).
  Never used for training or checkpoint selection.
* Inputs: the file's own LRMS and PAN (no re-simulation); no missing bands.
* Metrics (Vivone toolbox definitions, :mod:`zoo.metrics_pansharpen`): SAM (deg), ERGAS (ratio 4),
  Q2n (Q4/Q8, 32×32 blocks, stride 32), SCC (Sobel), PSNR (all bands, range 1), **no border cut**
  (border = 0: with it the 23-tap interpolation scores 4.666 / 5.736 / 26.58 on Pléiades, the
  published EXP row ≈ 4.67 / 5.74 / 26.6).
* Floor: 23-tap polynomial interpolation of the MS (EXP).
* Full resolution (``WV3_full``: ``pansharpen/full/WV3_example.mat``, ``GE1_full``: ``imgGE1.mat``;
  no ground truth): D_λ (Khan: 1 − Q2n between the MS and the degraded fusion), D_s (QNR, PAN
  low-passed with its MTF) and HQNR = (1 − D_λ)(1 − D_s), 32×32 blocks, with the MTF and PAN
  gain of the model's own sensor.
* A model is scored on the files of its band count only (8-band WorldView vs 4-band Pléiades/GE1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from zoo.bench.protocols import Protocol, register_protocol
from zoo.bench.published import PUBLISHED
from zoo.metrics_pansharpen import ergas, psnr_ms, q2n, sam, scc

__all__ = ["PansharpenProtocol", "sample_ms", "rgb_of"]

DATASETS = {"WV3_test": "pansharpen/reduced/WV3_test.mat", "Pleiades_test": "pansharpen/reduced/Pleiades_test.mat",
            "WV3_full": "pansharpen/full/WV3_example.mat", "GE1_full": "pansharpen/full/imgGE1.mat"}

# RGB band indices (0-based) for pictures: 8-band WorldView (C1 B G Y R RE N1 N2) → R=4, G=2, B=1;
# 4-band (B G R NIR) → R=2, G=1, B=0
_RGB = {8: (4, 2, 1), 4: (2, 1, 0)}


def rgb_of(t: torch.Tensor) -> np.ndarray:
    """uint8 RGB picture of one (1, C, H, W) multispectral tensor, 1–99 % stretch per channel."""
    a = t.detach().float()[0]
    c = a.shape[0]
    idx = _RGB.get(c, tuple(range(min(3, c))))
    a = a[list(idx)] if c >= 3 else a[:1].expand(3, -1, -1)
    lo = torch.quantile(a.flatten(1), 0.01, dim=1)[:, None, None]
    hi = torch.quantile(a.flatten(1), 0.99, dim=1)[:, None, None]
    a = ((a - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)
    return (a.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def sample_ms(size: int = 256, bands: int = 8) -> torch.Tensor:
    """A procedural (1, bands, size, size) multispectral card: the grey test card × smooth spectra."""
    from zoo.samples import sample_grey

    g = sample_grey(size)[0, 0]
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    b = torch.linspace(0, 1, bands)[:, None, None]
    centre = 0.2 + 0.6 * (0.6 * xx + 0.4 * yy)
    spec = 0.4 + 0.6 * torch.exp(-((b - centre) / 0.35) ** 2)
    return (0.05 + 0.9 * g * spec).clamp(0, 1)[None].float()


class PansharpenProtocol(Protocol):
    floor_name = "23-tap interpolation (EXP)"

    def load(self, name: str, root: str | None) -> list[tuple[str, dict]]:
        from zoo.data.pansharpen import _resolve, read_pansharpen

        out = []
        for s in read_pansharpen(_resolve(self.datasets[name], root)):
            batch: dict = {"inputs": {"ms": s["ms"][None], "pan": s["pan"][None]}}
            if "gt" in s:
                batch["target"] = s["gt"][None]
            out.append((s["name"], batch))
        return out

    def adapt(self, net: nn.Module, inputs: dict[str, Any], steps: int) -> nn.Module:
        from zoo.training.target_adaptive import target_adapt

        return target_adapt(net, inputs["ms"], inputs["pan"], inputs.get("ms_mask"), steps=steps)

    def compatible(self, net: nn.Module, batch: dict) -> bool:
        return batch["inputs"]["ms"].shape[1] == net.physics.bands

    def no_reference(self, net: nn.Module, output: torch.Tensor, inputs: dict[str, Any]) -> dict[str, float]:
        from zoo.metrics_pansharpen import hqnr
        from zoo.physics.pansharpen import sensor_gains

        pan_gain = sensor_gains(net.physics.sensor)[1]
        return {k: float(v[0]) for k, v in hqnr(output, inputs["ms"], inputs["pan"], net.physics, pan_gain).items()}

    def sample(self) -> dict:
        return {"target": sample_ms(256, 8)}

    def floor(self, net: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        return net.physics.A_dagger({"ms": inputs["ms"], "pan": inputs["pan"]})

    def setting(self, net: nn.Module) -> str:
        return f"x{net.physics.ratio}"

    def to_image(self, t: torch.Tensor) -> np.ndarray:
        return rgb_of(t)

    def finetune_data_args(self, folder: str) -> list[str]:
        import json

        return [f"--data.train=[{json.dumps(folder)}]", "--data.test=[]"]

    def restore_file(self, net: nn.Module, src: str, dst: str, overwrite: bool = False, adapt: int = 0,
                     **kw: Any) -> str:
        """Fuse a ``.mat``/``.h5`` pair (full-resolution ``I_MS``/``I_PAN`` or ``lrms``/``pan``); writes
        ``.mat`` (key ``fused``, H×W×C float32 in [0, 1]) or an RGB picture (``.png``/``.jpg``/``.tif``).
        ``adapt`` > 0 first fine-tunes a copy of ``net`` on the pair for that many steps
        (:func:`~zoo.training.target_adaptive.target_adapt`)."""
        import scipy.io as sio
        from PIL import Image

        from zoo.data.pansharpen import read_pansharpen
        from zoo.hub.files import atomic_write

        s = read_pansharpen(src)[0]
        if adapt:
            net = self.adapt(net, {"ms": s["ms"][None], "pan": s["pan"][None]}, adapt)
        with torch.no_grad():
            out = net(ms=s["ms"][None], pan=s["pan"][None]).float()
        suffix = Path(dst).suffix.lower()
        with atomic_write(dst, overwrite=overwrite) as tmp:
            if suffix == ".mat":
                sio.savemat(tmp, {"fused": out[0].permute(1, 2, 0).numpy()})
            else:
                fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(suffix, "PNG")
                Image.fromarray(rgb_of(out)).save(tmp, format=fmt)
        how = f" after {adapt} target-adaptive steps" if adapt else ""
        return f"fused {src} (MS {tuple(s['ms'].shape)}, PAN {tuple(s['pan'].shape)}) into {tuple(out.shape[1:])}{how}"


register_protocol(PansharpenProtocol(
    task="pansharpen",
    datasets=dict(DATASETS),
    description={
        "protocol": "Wald reduced resolution, ratio 4; the files' own LRMS/PAN (MTF-Gaussian blur + x4 decimation of GT)",
        "metrics": "SAM (deg), ERGAS, Q2n (Q4/Q8, 32x32 blocks, stride 32), SCC (Sobel magnitudes), PSNR (all bands, range 1)",
        "border_cut": 0,
        "calibration": "23-tap interpolation on Pleiades_test: SAM 4.666, ERGAS 5.736, PSNR 26.58 (published EXP row ~4.67/5.74/26.6)",
        "floor": "23-tap polynomial interpolation (interp23tap)",
        "missing_bands": "none at test time",
        "full_resolution": "WV3_full / GE1_full: D_lambda (Khan), D_s (QNR), HQNR, 32x32 blocks, MTF and PAN gain of the model's sensor",
    },
    metrics={"sam": sam, "ergas": ergas, "q2n": q2n, "scc": scc, "psnr": psnr_ms},
    floor_name="23-tap interpolation (EXP)",
    lightning_module="zoo.training.ssopga.SSOPGAModule",
    datamodule="zoo.data.pansharpen.PansharpenDataModule",
))

_CDIF = "CDIF Table II (same file)"
PUBLISHED[("pansharpen", "Pleiades_test", "x4")] = [
    {"method": f"PNN — {_CDIF}", "sam": 3.245, "ergas": 2.505, "q2n": 0.969},
    {"method": f"CDIF — {_CDIF}", "sam": 2.884, "ergas": 2.040, "q2n": 0.978},
]
PUBLISHED[("pansharpen", "WV3_test", "x4")] = [
    {"method": "FusionNet (WV3 1258-patch set; not the same test data)", "sam": 3.74, "ergas": 2.57},
    {"method": "TDNet (WV3 1258-patch set; not the same test data)", "sam": 3.50, "ergas": 2.44},
]
