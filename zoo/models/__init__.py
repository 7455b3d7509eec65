"""Unfolded restoration networks (plain ``nn.Module`` s); importing registers them in :mod:`zoo.registry`."""

from zoo.models.lorun import LoRun, lorun_cs
from zoo.models.lorun_cassi import LoRunCASSI, lorun_cassi
from zoo.models.llemamba import LLEMamba, llemamba  # noqa: F401
from zoo.models.lorun_sr import LoRunSR, lorun_sr
from zoo.models.ssopga import SSOPGAFlash, SSOPGAPansharpen, ssopga_flash, ssopga_pansharpen

__all__ = ["LoRun", "lorun_cs", "LoRunCASSI", "lorun_cassi", "LoRunSR", "lorun_sr",
           "SSOPGAPansharpen", "SSOPGAFlash", "ssopga_pansharpen", "ssopga_flash"]
