"""Task ``pansharpen``: MS + PAN fusion, Wald's reduced-resolution protocol (SSO-PGA and its twin).

* Test sets: ``WV3_test`` (``pansharpen/reduced/WV3_test.mat``, 8 bands) and ``Pleiades_test``
  (4 bands) — the CDIF files: ``gt`` 256×256, ``lrms`` 64×64, ``pan`` 256×256 in [0, 1]. A model
  is scored on the files of its band count only. Never used for training or checkpoint selection.
* Inputs: the file's own LRMS and PAN (no re-simulation); no missing bands.
* Metrics (Vivone toolbox definitions, :mod:`zoo.metrics.pansharpen`): SAM (deg), ERGAS (ratio 4),
  Q2n (Q4/Q8, 32×32 blocks, stride 32), SCC (Sobel), PSNR (all bands, range 1), **no border cut**
  (border = 0: with it the 23-tap interpolation scores 4.666 / 5.736 / 26.58 on Pléiades, the
  published EXP row ≈ 4.67 / 5.74 / 26.6).
* Floor: 23-tap polynomial interpolation of the MS (EXP).
* Full resolution (``WV3_full``: ``pansharpen/full/WV3_example.mat``, ``GE1_full``: ``imgGE1.mat``;
  no ground truth): D_λ (Khan), D_s (QNR, PAN low-passed with its MTF) and HQNR = (1 − D_λ)(1 − D_s),
  32×32 blocks, with the MTF and PAN gain of the model's own sensor.
* Target-adaptive inference (``--adapt``): :func:`~zoo.training.target_adaptive.wald_adapt`.
* ``zoo restore``: a ``.mat``/``.h5`` pair → ``.mat`` (key ``fused``, H×W×C) or an RGB picture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io as sio
import torch

from zoo.data.pansharpen import read_pansharpen, resolve_pansharpen_file
from zoo.metrics.pansharpen import ergas, hqnr, psnr_ms, q2n, sam_toolbox, scc
from zoo.models.base import Restorer
from zoo.physics.pansharpen import sensor_gains
from zoo.samples import sample_ms
from zoo.tasks.base import Batch, Task, Writer, image_format, register_task
from zoo.training.target_adaptive import DEFAULTS, wald_adapt

__all__ = ["PansharpenTask", "rgb_of"]

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


class PansharpenTask(Task):
    def load_testset(self, name: str, root: str | None) -> list[tuple[str, Batch]]:
        out = []
        for s in read_pansharpen(resolve_pansharpen_file(self.datasets[name], root)):
            batch: dict = {"inputs": {"ms": s["ms"][None], "pan": s["pan"][None]}}
            if "gt" in s:
                batch["target"] = s["gt"][None]
            out.append((s["name"], batch))
        return out

    def sample(self, net: Restorer) -> Batch:
        return {"target": sample_ms(256, net.channels)}  # the model's own band count (8 WorldView, 4 Pléiades)

    def adapt(self, net: Restorer, inputs: dict[str, Any], steps: int) -> Restorer:
        return wald_adapt(net, inputs["ms"], inputs["pan"], inputs.get("ms_mask"), steps=steps)

    def compatible(self, net: Restorer, batch: Batch) -> bool:
        return batch["inputs"]["ms"].shape[1] == net.physics.bands

    def no_reference(self, net: Restorer, output: torch.Tensor, inputs: dict[str, Any]) -> dict[str, float]:
        pan_gain = sensor_gains(net.physics.sensor)[1]
        return {k: float(v[0]) for k, v in hqnr(output, inputs["ms"], inputs["pan"], net.physics, pan_gain).items()}

    def floor(self, net: Restorer, inputs: dict[str, Any]) -> torch.Tensor:
        return net.physics.A_dagger({"ms": inputs["ms"], "pan": inputs["pan"]})

    def setting(self, net: Restorer) -> str:
        return f"x{net.physics.ratio}"

    def to_image(self, t: torch.Tensor) -> np.ndarray:
        return rgb_of(t)

    def finetune_data_args(self, folder: str) -> list[str]:
        return [f"--data.train=[{json.dumps(folder)}]", "--data.test=[]"]

    def read_input(self, net: Restorer, src: str, **opts: Any) -> tuple[dict[str, Any], str]:
        """A ``.mat``/``.h5`` pair (full-resolution ``I_MS``/``I_PAN`` or ``lrms``/``pan``)."""
        s = read_pansharpen(src)[0]
        return {"ms": s["ms"][None], "pan": s["pan"][None]}, \
            f"fused {src} (MS {tuple(s['ms'].shape)}, PAN {tuple(s['pan'].shape)})"

    def outputs(self, net: Restorer, result: torch.Tensor, dst: str) -> dict[Path, Writer]:
        """``.mat`` (key ``fused``, H×W×C float32) or an RGB picture (``.png``/``.jpg``/``.tif``)."""
        if Path(dst).suffix.lower() == ".mat":
            return {Path(dst): lambda tmp: sio.savemat(tmp, {"fused": result[0].permute(1, 2, 0).numpy()})}

        def picture(tmp: Path) -> None:
            from PIL import Image

            Image.fromarray(rgb_of(result)).save(tmp, format=image_format(dst))

        return {Path(dst): picture}


_CDIF = "CDIF Table II (same file)"
_ADAPT = DEFAULTS["pansharpen"]

register_task(PansharpenTask(
    name="pansharpen",
    headline=("WV3_test", "Pleiades_test"),
    headline_metric="sam",
    datasets={"WV3_test": "pansharpen/reduced/WV3_test.mat", "Pleiades_test": "pansharpen/reduced/Pleiades_test.mat",
              "WV3_full": "pansharpen/full/WV3_example.mat", "GE1_full": "pansharpen/full/imgGE1.mat"},
    description={
        "protocol": "Wald reduced resolution, ratio 4; the files' own LRMS/PAN (MTF-Gaussian blur + x4 decimation of GT)",
        "metrics": "SAM (deg), ERGAS, Q2n (Q4/Q8, 32x32 blocks, stride 32), SCC (Sobel magnitudes), PSNR (all bands, range 1)",
        "border_cut": 0,
        "calibration": "23-tap interpolation on Pleiades_test: SAM 4.666, ERGAS 5.736, PSNR 26.58 (published EXP row ~4.67/5.74/26.6)",
        "floor": "23-tap polynomial interpolation (interp23tap)",
        "missing_bands": "none at test time",
        "full_resolution": "WV3_full / GE1_full: D_lambda (Khan), D_s (QNR), HQNR, 32x32 blocks, MTF and PAN gain of the model's sensor",
    },
    metrics={"sam": sam_toolbox, "ergas": ergas, "q2n": q2n, "scc": scc, "psnr": psnr_ms},
    floor_name="23-tap interpolation (EXP)",
    datamodule="zoo.data.pansharpen.PansharpenDataModule",
    adapt_method="fine-tune a copy on the input pair's own Wald-reduced version (inputs only, no reference), "
                 "L1, Adam, one D4 flip/rotation per step (Scarpa et al. 2018, target-adaptive)",
    adapt_defaults=dict(_ADAPT),
    published={
        ("Pleiades_test", "x4"): [
            {"method": f"PNN — {_CDIF}", "sam": 3.245, "ergas": 2.505, "q2n": 0.969},
            {"method": f"CDIF — {_CDIF}", "sam": 2.884, "ergas": 2.040, "q2n": 0.978},
        ],
        ("WV3_test", "x4"): [
            {"method": "FusionNet (WV3 1258-patch set; not the same test data)", "sam": 3.74, "ergas": 2.57},
            {"method": "TDNet (WV3 1258-patch set; not the same test data)", "sam": 3.50, "ergas": 2.44},
        ],
    },
))
