"""The datamodule base every task's datamodule subclasses: loaders from ``train_set``/``val_set``/``test_sets``."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["RestorationDataModule", "d4"]


def d4(t: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th of the 8 flips/rotations of the square (D4) on the last two axes: ``k % 4`` quarter
    turns, then a horizontal flip for ``k >= 4``."""
    t = torch.rot90(t, k % 4, (-2, -1))
    return t.flip(-1) if k >= 4 else t


class RestorationDataModule(L.LightningDataModule):
    """Subclasses build ``self.train_set``, ``self.val_set`` and ``self.test_sets`` in ``setup`` and
    save ``batch_size`` / ``num_workers`` hyper-parameters; validation and test run one whole image
    per batch (images differ in size). ``test_names`` labels the test sets in the logged metrics."""

    test_names: list[str] = []

    def _loader(self, ds: Dataset, shuffle: bool, bs: int) -> DataLoader:
        nw = int(self.hparams.get("num_workers", 0))
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, num_workers=nw, drop_last=shuffle,
                          persistent_workers=nw > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True, self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False, 1)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(d, False, 1) for d in getattr(self, "test_sets", [])]

    def predict_dataloader(self) -> list[DataLoader]:
        return self.test_dataloader()
