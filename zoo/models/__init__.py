"""Unfolded restoration networks (plain ``nn.Module`` s); importing registers them in :mod:`zoo.registry`."""

from zoo.models.lorun import LoRun, lorun_cs
from zoo.models.lorun_cassi import LoRunCASSI, lorun_cassi
from zoo.models.ssopga import SSOPGAFlash, SSOPGAPansharpen, ssopga_flash, ssopga_pansharpen

__all__ = ["LoRun", "lorun_cs", "LoRunCASSI", "lorun_cassi",
           "SSOPGAPansharpen", "SSOPGAFlash", "ssopga_pansharpen", "ssopga_flash"]
