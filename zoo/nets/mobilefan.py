"""MobileFAN: MobileNetV2 encoder + three deconvolutions -> heatmaps, decoded with sub-pixel refinement.

Exposes the encoder and decoder features that feature-aligned and feature-similarity distillation need.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .backbones import MobileNetV2Trunk
from .decode import decode_heatmaps


class MobileFAN(nn.Module):
    def __init__(self, num_points: int = 68, deconv_channels: tuple[int, ...] = (128, 128, 128), input_size: int = 256):
        super().__init__()
        self.num_points, self.input_size = num_points, input_size
        # Stops at the 320-channel block: the 1280-channel 1x1 conv adds size and nothing a decoder needs.
        self.backbone = MobileNetV2Trunk(last_conv=False)
        layers: list[nn.Module] = []
        inp = self.backbone.out_channels
        for c in deconv_channels:
            layers += [nn.ConvTranspose2d(inp, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            inp = c
        self.decoder = nn.Sequential(*layers)
        self.head = nn.Conv2d(inp, num_points, 1)
        nn.init.normal_(self.head.weight, std=0.001)       # maps start near zero, not at random: fewer steps wasted
        nn.init.zeros_(self.head.bias)
        self.encoder_channels, self.decoder_channels = self.backbone.out_channels, inp

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        enc = self.backbone(x)
        dec = self.decoder(enc)
        return {"encoder": enc, "decoder": dec, "heatmaps": self.head(dec)}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.forward_features(x)["heatmaps"],)

    EVIDENCE = ("peak",)   # what decode's evidence holds per point, in order (Confidence's features)

    def decode(self, outputs: Sequence[torch.Tensor | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return decode_heatmaps(outputs[0])
