"""Lightning modules (loss, metrics, optimiser) around the zoo's networks."""

from zoo.training.lorun import LoRunModule
from zoo.training.lorun_cassi import LoRunCASSIModule
from zoo.training.callbacks import EMA, ExportWeights, RunCheckpoint, RunCSVLogger, ThroughputLog
from zoo.training.module import RestorationModule, read_state_dict
from zoo.training.ssopga import SSOPGAModule

__all__ = ["RestorationModule", "LoRunModule", "LoRunCASSIModule", "EMA", "ExportWeights", "RunCheckpoint", "RunCSVLogger", "ThroughputLog", "read_state_dict", "SSOPGAModule"]
