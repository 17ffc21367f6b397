"""Network definitions; `build_model` makes one from a registry entry's arch and arguments."""
from __future__ import annotations

from typing import Any

from torch import nn

from .mobilefan import MobileFAN
from .pipnet import PIPNet

ARCHS: dict[str, type[nn.Module]] = {"pipnet": PIPNet, "mobilefan": MobileFAN}


def build_model(arch: str, num_points: int, **arch_args: Any) -> nn.Module:
    if arch not in ARCHS:
        raise KeyError(f"unknown architecture {arch!r}; known: {sorted(ARCHS)}")
    if "deconv_channels" in arch_args:
        arch_args["deconv_channels"] = tuple(arch_args["deconv_channels"])
    return ARCHS[arch](num_points=num_points, **arch_args)
