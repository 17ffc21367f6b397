"""MobileFAN: MobileNetV2 encoder + three deconvolutions -> heatmaps, decoded with sub-pixel refinement.

Exposes the encoder and decoder features that feature-aligned and feature-similarity distillation need.
"""
from __future__ import annotations

import torch
from torch import nn

from .backbones import MobileNetV2Trunk


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

    def decode(self, outputs: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
        return decode_heatmaps(torch.as_tensor(outputs[0]).float())


def decode_heatmaps(hm: torch.Tensor) -> torch.Tensor:
    """(B,N,H,W) heatmaps -> (B,N,2) normalised coordinates: argmax plus a quarter-pixel step towards the
    larger neighbour (sub-pixel), pixel centres at (i + 0.5) / W."""
    b, n, h, w = hm.shape
    flat = hm.reshape(b, n, h * w)
    idx = flat.argmax(dim=2)
    x, y = idx % w, torch.div(idx, w, rounding_mode="floor")

    def val(xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return flat.gather(2, (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1))[..., None])[..., 0]

    dx = torch.sign(val(x + 1, y) - val(x - 1, y)) * ((x > 0) & (x < w - 1))
    dy = torch.sign(val(x, y + 1) - val(x, y - 1)) * ((y > 0) & (y < h - 1))
    px = (x.float() + 0.25 * dx + 0.5) / w
    py = (y.float() + 0.25 * dy + 0.5) / h
    return torch.stack([px, py], dim=-1)
