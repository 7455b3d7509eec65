"""Unfolded restoration networks (plain ``nn.Module`` s); importing registers them in :mod:`zoo.registry`."""

from zoo.models.lorun import LoRun, lorun_cs

__all__ = ["LoRun", "lorun_cs"]
