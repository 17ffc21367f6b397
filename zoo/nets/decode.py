"""Network outputs -> landmarks in normalised crop coordinates, with each point's raw evidence of being right
(B, N, F) that Face.scores calibrates (a heatmap's peak here; PIPNet adds how its candidates agree). numpy: at inference the onnx backend hands over numpy, and for one face a dozen
small torch ops cost more than the arithmetic."""
from __future__ import annotations

import numpy as np
import torch


def as_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """float32 numpy view (no copy where the data already is CPU float32)."""
    if torch.is_tensor(t):
        t = t.detach().cpu().float().numpy()
    return np.asarray(t, dtype=np.float32)


def decode_heatmaps(hm: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B,N,H,W) heatmaps -> ((B,N,2) normalised coordinates, (B,N,1) peak values): argmax plus a quarter-pixel
    step towards the larger neighbour (sub-pixel), pixel centres at (i + 0.5) / W."""
    hm = as_numpy(hm)
    b, n, h, w = hm.shape
    flat = hm.reshape(b, n, h * w)
    idx = flat.argmax(axis=2)
    peak = np.take_along_axis(flat, idx[..., None], 2)[..., 0]
    x, y = idx % w, idx // w

    def val(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        return np.take_along_axis(flat, (np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1))[..., None], 2)[..., 0]

    dx = np.sign(val(x + 1, y) - val(x - 1, y)) * ((x > 0) & (x < w - 1))
    dy = np.sign(val(x, y + 1) - val(x, y - 1)) * ((y > 0) & (y < h - 1))
    pts = np.stack([(x + 0.25 * dx + 0.5) / w, (y + 0.25 * dy + 0.5) / h], axis=-1)
    return pts.astype(np.float32), peak[..., None].astype(np.float32)
