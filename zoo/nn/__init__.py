"""Network building blocks: plain ``nn.Module`` s (LoRA layers, denoisers), no physics, no training."""

from zoo.nn.lora import (
    LoRALayer,
    count_parameters,
    freeze_base,
    grow_adapters,
    inject_lora,
    is_adapter_key,
    load_adapters,
    lora_rank,
    lora_state_dict,
    merge_lora,
    save_adapters,
    set_stage,
)
from zoo.nn.mamba import IFBMamba, selective_scan
from zoo.nn.unet import ResUNet

__all__ = [
    "IFBMamba",
    "LoRALayer",
    "ResUNet",
    "count_parameters",
    "freeze_base",
    "grow_adapters",
    "inject_lora",
    "is_adapter_key",
    "load_adapters",
    "lora_rank",
    "lora_state_dict",
    "merge_lora",
    "save_adapters",
    "selective_scan",
    "set_stage",
]
