"""PIPNet (Jin, Liao, Shao 2021): score map + offsets + neighbour offsets on a stride-32 feature map.

The mean face and neighbour indices come from the training labels and live in the weight file as buffers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .backbones import build_trunk
from .decode import as_numpy


def neighbour_indices(mean_face: np.ndarray, num_nb: int) -> np.ndarray:
    """For each landmark of the (N,2) mean face, the `num_nb` nearest other landmarks: (N, num_nb)."""
    d = np.linalg.norm(mean_face[:, None, :] - mean_face[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :num_nb].astype(np.int64)


SPREAD_FLOOR = 0.05   # grid cells: keeps log(spread) finite where every candidate agrees


def merge_matrix(nb_idx: torch.Tensor) -> torch.Tensor:
    """(N, N*(1+K)) averaging weights: landmark j = mean of its own prediction and every neighbour
    prediction of j made by a landmark that has j among its neighbours (PIPNet's neighbour merging)."""
    n, k = nb_idx.shape
    m = torch.zeros(n, n * (1 + k))
    m[torch.arange(n), torch.arange(n)] = 1.0
    for i in range(n):
        for slot in range(k):
            m[nb_idx[i, slot], n + i * k + slot] = 1.0
    return m / m.sum(dim=1, keepdim=True)


def padded_merge_matrix(nb_idx: torch.Tensor) -> torch.Tensor:
    """Neighbour merging as the PIPNet authors' released code does it (get_meanface + their test/demo decode).

    Each landmark's list of neighbour predictions (ordered by predicting landmark, then slot) is repeated
    until it is as long as the longest list (at most 11 copies, then cut), and averaged with the landmark's
    own prediction: weights over 1 + longest, so some neighbour predictions count twice. Raises ValueError
    where their code could not run (a landmark predicted by too few others to fill the longest list)."""
    n, k = nb_idx.shape
    cols: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for slot in range(k):
            cols[int(nb_idx[i, slot])].append(n + i * k + slot)
    longest = max(len(c) for c in cols)
    m = torch.zeros(n, n * (1 + k))
    for j, c in enumerate(cols):
        padded = (c * 11)[:longest]          # their "+= list * 10", then cut to the longest list
        if len(padded) < longest:
            raise ValueError(f"landmark {j} is a neighbour of {len(c)} landmark(s), too few to fill the "
                             f"longest list ({longest}); the authors' decode cannot merge this mean face")
        m[j, j] = 1.0
        for col in padded:
            m[j, col] += 1.0
    return m / (1 + longest)


class PIPNet(nn.Module):
    def __init__(self, backbone: str = "resnet18", num_points: int = 68, num_nb: int = 10, input_size: int = 256):
        super().__init__()
        self.backbone_name, self.num_points, self.num_nb, self.input_size = backbone, num_points, num_nb, input_size
        self.backbone = build_trunk(backbone)
        c = self.backbone.out_channels
        self.cls_layer = nn.Conv2d(c, num_points, 1)
        self.x_layer = nn.Conv2d(c, num_points, 1)
        self.y_layer = nn.Conv2d(c, num_points, 1)
        self.nb_x_layer = nn.Conv2d(c, num_points * num_nb, 1)
        self.nb_y_layer = nn.Conv2d(c, num_points * num_nb, 1)
        for layer in (self.cls_layer, self.x_layer, self.y_layer, self.nb_x_layer, self.nb_y_layer):
            nn.init.normal_(layer.weight, std=0.001)
            nn.init.zeros_(layer.bias)
        # Placeholders until set_mean_face(): a weight file always overrides them.
        self.register_buffer("mean_face", torch.zeros(num_points, 2))
        self.register_buffer("nb_idx", torch.zeros(num_points, num_nb, dtype=torch.int64))
        self.register_buffer("merge", torch.zeros(num_points, num_points * (1 + num_nb)), persistent=False)

    def set_mean_face(self, mean_face: np.ndarray) -> None:
        """Set the (N,2) mean face in normalised crop coordinates; derives neighbour indices from it."""
        self.mean_face.copy_(torch.as_tensor(mean_face, dtype=torch.float32))
        self.nb_idx.copy_(torch.from_numpy(neighbour_indices(np.asarray(mean_face), self.num_nb)))
        self.set_merge(None)

    def set_merge(self, merge: torch.Tensor | None) -> None:
        """Neighbour-merging weights. None: the plain average, derived from nb_idx and not stored. A matrix
        (e.g. padded_merge_matrix, for the authors' released checkpoints) is stored in the weight file, so
        every copy of these weights merges the same way."""
        if merge is None:
            self.merge = merge_matrix(self.nb_idx)
            self._non_persistent_buffers_set.add("merge")
            return
        if tuple(merge.shape) != tuple(self.merge.shape):
            raise ValueError(f"merge weights must be {tuple(self.merge.shape)}, not {tuple(merge.shape)}")
        self.merge = merge.detach().float().clone()
        self._non_persistent_buffers_set.discard("merge")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A weight file carrying "merge" keeps its own merging weights; otherwise they follow nb_idx.
        stored = prefix + "merge" in state_dict
        if stored:
            self._non_persistent_buffers_set.discard("merge")
        else:
            self._non_persistent_buffers_set.add("merge")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if not stored:
            self.merge = merge_matrix(self.nb_idx)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def heads(self, feat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.cls_layer(feat), self.x_layer(feat), self.y_layer(feat),
                self.nb_x_layer(feat), self.nb_y_layer(feat))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.heads(self.features(x))

    def _merge_numpy(self) -> np.ndarray:
        """merge.T as float64 numpy (E[c^2] - E[c]^2 cancels in float32), made again only when the buffer changes."""
        key = (self.merge.data_ptr(), self.merge._version, tuple(self.merge.shape))
        if getattr(self, "_merge_cache", (None,))[0] != key:
            self._merge_cache = (key, self.merge.detach().cpu().numpy().T.astype(np.float64))
        return self._merge_cache[1]

    EVIDENCE = ("peak", "log_spread")   # what decode's evidence holds per point, in order (Confidence's features)

    def decode(self, outputs: Sequence[torch.Tensor | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Raw heads -> ((B, N, 2) landmarks in normalised crop coordinates [0, 1], (B, N, 2) evidence).

        Evidence, which Face.scores calibrates: each point's score-map peak, and the log of how far its
        candidates (its own prediction and its neighbours' predictions of it) scatter around their merged mean,
        in grid cells: where they disagree, the point is likely wrong."""
        cls, ox, oy, nbx, nby = (as_numpy(o) for o in outputs)
        b, n, h, w = cls.shape
        k, hw = self.num_nb, h * w
        idx = cls.reshape(b, n, hw).argmax(axis=2)                           # (B, N): each landmark's cell
        # flat indices of the chosen cell in every map (plain fancy indexing: take_along_axis costs 3x here)
        own = (np.arange(b * n).reshape(b, n) * hw + idx)                    # (B, N) into the (B*N*H*W) maps
        nbs = ((np.arange(b * n).reshape(b, n, 1) * k + np.arange(k)) * hw + idx[..., None])   # (B, N, K)
        peak = cls.reshape(-1)[own]
        gx, gy = (idx % w).astype(np.float32), (idx // w).astype(np.float32)
        # candidates in grid cells: merge's columns are the N own predictions, then landmark i's K neighbour
        # predictions at N + i*K + slot, which is the order of the flattened (B, N, K) block
        cx = np.concatenate([gx + ox.reshape(-1)[own], (gx[..., None] + nbx.reshape(-1)[nbs]).reshape(b, n * k)], 1)
        cy = np.concatenate([gy + oy.reshape(-1)[own], (gy[..., None] + nby.reshape(-1)[nbs]).reshape(b, n * k)], 1)
        merge = self._merge_numpy()
        cx, cy = cx.astype(np.float64), cy.astype(np.float64)               # (B, N*(1+K))
        mx, my = cx @ merge, cy @ merge                                      # merged, (B, N)
        var = (cx * cx + cy * cy) @ merge - mx * mx - my * my                # weighted scatter around the mean
        spread = np.sqrt(np.maximum(var, 0.0))
        pts = np.stack([mx / w, my / h], axis=-1)
        evidence = np.stack([peak, np.log(spread + SPREAD_FLOOR)], axis=-1)
        return pts.astype(np.float32), evidence.astype(np.float32)
