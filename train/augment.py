"""Batch augmentation in torch on cached crops (B,3,S,S) uint8 + landmarks (B,N,2) in [0,1].

One affine per sample (rotate, scale, translate, flip) applied with grid_sample, the same matrix moving
the landmarks; then occlusion, blur, grayscale and colour jitter. Vectorised so the loader stays off the
critical path, and device-agnostic (runs on the GPU when training there).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .recipes import Augment


def _rand(b: int, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(b, generator=g).to(device)


def augment_batch(img: torch.Tensor, lms: torch.Tensor, cfg: Augment, flip_perm: torch.Tensor,
                  g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """img uint8 (B,3,S,S), lms (B,N,2) normalised -> float images in [0,1] and moved landmarks."""
    b, _, s, _ = img.shape
    dev = img.device
    x = img.float() / 255.0
    ang = (_rand(b, g, dev) * 2 - 1) * math.radians(cfg.rotate_deg)
    sc = cfg.scale[0] + _rand(b, g, dev) * (cfg.scale[1] - cfg.scale[0])
    t = (torch.rand(b, 2, generator=g).to(dev) * 2 - 1) * (2 * cfg.translate_px / 256)  # [-1,1] units, any input size
    flip = _rand(b, g, dev) < cfg.flip
    # Forward map on centred coordinates u in [-1,1]: u' = sc * R u (+ mirror) + t
    cos, sin = torch.cos(ang) * sc, torch.sin(ang) * sc
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)      # (B,2,2)
    fx = torch.where(flip, -1.0, 1.0)
    a = a * torch.stack([fx, torch.ones_like(fx)], -1)[:, None, :]                       # mirror x first
    u = lms * 2 - 1
    u = torch.einsum("bij,bnj->bni", a, u) + t[:, None, :]
    inv = torch.linalg.inv(a)
    theta = torch.cat([inv, -(inv @ t[:, :, None])], dim=2)                              # output -> input
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_lms = (u + 1) / 2
    out_lms = torch.where(flip[:, None, None], out_lms[:, flip_perm.to(dev)], out_lms)   # left eye stays left eye

    if cfg.occlusion > 0:
        occ = _rand(b, g, dev) < cfg.occlusion
        wh = (0.1 + 0.3 * torch.rand(b, 2, generator=g)).to(dev)                          # 10-40% of each side
        xy = torch.rand(b, 2, generator=g).to(dev) * (1 - wh)
        coords = (torch.arange(s, device=dev).float() + 0.5) / s
        inx = (coords[None] >= xy[:, :1]) & (coords[None] < xy[:, :1] + wh[:, :1])        # (B,S)
        iny = (coords[None] >= xy[:, 1:]) & (coords[None] < xy[:, 1:] + wh[:, 1:])
        mask = (iny[:, :, None] & inx[:, None, :] & occ[:, None, None])[:, None]          # (B,1,S,S)
        colour = torch.rand(b, 3, 1, 1, generator=g).to(dev)
        x = torch.where(mask, colour, x)
    if cfg.blur > 0:
        sel = _rand(b, g, dev) < cfg.blur
        if sel.any():
            k = torch.tensor([1, 4, 6, 4, 1], dtype=x.dtype, device=dev)
            k = (k[:, None] * k[None, :]) / 256.0
            blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k.expand(3, 1, 5, 5), groups=3)
            x = torch.where(sel[:, None, None, None], blurred, x)
    if cfg.grayscale > 0:
        sel = _rand(b, g, dev) < cfg.grayscale
        gray = (x * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = torch.where(sel[:, None, None, None], gray.expand_as(x), x)
    if cfg.color_jitter > 0:
        j = cfg.color_jitter
        bright = 1 + (_rand(b, g, dev) * 2 - 1) * j
        contrast = 1 + (_rand(b, g, dev) * 2 - 1) * j
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast.view(b, 1, 1, 1) + mean) * bright.view(b, 1, 1, 1)
        x = x.clamp(0, 1)
    return x, out_lms
