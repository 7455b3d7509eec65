"""Lightning module of LoRun-CASSI: the two-phase recipe + real-mask adapters.

* phase 1: ``model: lorun-cassi-base`` (one GAP step + estimator + mask-guided U-Net);
* phase 2: ``model: lorun-cassi-9stg`` with ``phase1_weights`` (base frozen, 9 LoRA sets train);
* Block-9: ``model: block9-cassi`` with the same ``phase1_weights`` and ``freeze_base: false``;
* phase 1b: ``model: lorun-cassi-base`` with ``stages: 3`` (tied weights) and ``transfer_weights`` =
  phase 1, so the base tolerates being unrolled;
* real system: ``model: lorun-cassi-9stg-real`` with ``transfer_weights`` = the trained simulation
  LoRun-9 (every weight but the mask is copied; the base stays frozen, the adapters are fine-tuned
  under the 660² mask with shot noise) and ``adapters_out`` = where the adapters alone are saved.

Spectral fidelity: ``loss: rmse+sam`` (or ``+sgrad``, ``+rel``; :func:`~zoo.training.module.parse_loss`) adds
spectral terms to √MSE, and a datamodule with ``real_cubes`` gives a second validation set of real spectra,
logged as ``val/real/*`` (the first stays ``val/*``); ``recipes/lorun/cassi/spectral.yaml`` uses both.

Exported configs say ``mask_init: checkpoint`` (:meth:`~zoo.models.lorun_cassi.LoRunCASSI.export_config`):
the mask is a buffer inside the weights, so a checkpoint rebuilds without the data folder.
"""

from __future__ import annotations

from typing import Any

from zoo.nn.lora import save_adapters
from zoo.training.lorun import LoRunModule
from zoo.training.module import read_state_dict

__all__ = ["LoRunCASSIModule"]


class LoRunCASSIModule(LoRunModule):
    """:class:`~zoo.training.LoRunModule` for CASSI (spectral metrics on by default).

    Args:
        transfer_weights: a trained same-architecture model (e.g. ``runs/lorun-cassi-9stg/export/model.safetensors``)
            whose weights, except the mask, initialise this one (the real-system adapters; phase 1b).
        adapters_out: also write the LoRA adapters alone (safetensors) here after each validation.
        **kwargs: see :class:`~zoo.training.LoRunModule`.
    """

    def __init__(self, *args: Any, transfer_weights: str | None = None, adapters_out: str | None = None,
                 spectral: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, spectral=spectral, **kwargs)
        if transfer_weights:
            self.net.init_from_model(read_state_dict(transfer_weights), physics=False)

    def on_validation_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        self.val_names = list(getattr(dm, "val_names", []) or ["val"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == 0:  # the main set keeps its val/* names (comparable with earlier curves)
            return super().validation_step(batch, batch_idx, dataloader_idx)
        names = getattr(self, "val_names", [])
        name = names[dataloader_idx] if dataloader_idx < len(names) else f"val{dataloader_idx}"
        self._evaluate(batch, f"val/{name}", dataloader_idx)

    def _save_adapters(self) -> None:
        if not self.hparams.adapters_out or self.net.mode != "lora" or self.trainer.sanity_checking:
            return
        if self.trainer.global_rank != 0:
            return
        save_adapters(self.net.denoiser, self.hparams.adapters_out, overwrite=True)

    def on_validation_end(self) -> None:
        self._save_adapters()

    def on_fit_end(self) -> None:
        self._save_adapters()
