"""Small training inputs shared by the training tests and the torchrun worker (not a test module)."""
from __future__ import annotations

import torch

from train.loop import TrainData
from train.recipes import Augment, Recipe, get_recipe

NO_AUGMENT = Augment(translate_px=0, rotate_deg=0, flip=0, occlusion=0, blur=0, grayscale=0)


def tiny_data(n: int = 8, seed: int = 0) -> TrainData:
    """n random 256-px crops around a random mean face: enough for a few exact optimiser steps."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.rand(68, 2, generator=g) * 0.6 + 0.2
    lms = (mean + 0.02 * torch.randn(n, 68, 2, generator=g)).clamp(0.05, 0.95)
    img = torch.randint(0, 255, (n, 3, 256, 256), generator=g, dtype=torch.uint8)
    return TrainData(img, lms, n, "synthetic")


def quiet_recipe(name: str = "pipnet_mbv2_300w", **kw) -> Recipe:
    kw.setdefault("augment", NO_AUGMENT)
    return get_recipe(name, batch_size=kw.pop("batch_size", 4), **kw)
