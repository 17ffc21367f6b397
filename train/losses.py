"""Losses: PIPNet (score-map MSE + offset L1 at the ground-truth cell), heatmap MSE, and MobileFAN's two
distillation losses (feature-aligned, feature-similarity)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pipnet_targets(lms: torch.Tensor, nb_idx: torch.Tensor, h: int, w: int):
    """Ground-truth cell (B,N) flat index, own offsets (B,N,2) and neighbour offsets (B,N,K,2), in cells."""
    grid = lms * torch.tensor([w, h], device=lms.device, dtype=lms.dtype)
    cell = grid.floor()
    cell[..., 0].clamp_(0, w - 1)
    cell[..., 1].clamp_(0, h - 1)
    flat = (cell[..., 1] * w + cell[..., 0]).long()
    own = grid - cell
    nb = grid[:, nb_idx] - cell[:, :, None, :]                      # neighbour j seen from landmark i's cell
    return flat, own, nb


def supervised(lms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Partial labels: NaN marks a point its face does not label. (mask (B,N) float, landmarks with the
    missing points filled in, so target arithmetic stays finite; the mask keeps them out of every loss)."""
    mask = torch.isfinite(lms).all(dim=-1)
    return mask.to(lms.dtype), torch.where(mask[..., None], lms, torch.full_like(lms, 0.5))


def _masked_mean(err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of `err` over the entries `weight` keeps (weight broadcast to err); 0 when it keeps none."""
    weight = weight.expand_as(err)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def pipnet_loss(outputs, lms: torch.Tensor, nb_idx: torch.Tensor, cls_weight: float = 10.0,
                reg_weight: float = 1.0, coarse: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """PIPNet's loss. Points whose landmarks are NaN are unsupervised (partial labels: a 300-W face in a
    98-point model), and so is a neighbour offset towards one. Faces flagged `coarse` (B,) supervise the
    score map only, the cell and not the offsets within it (the first round of the self-training curriculum)."""
    cls, ox, oy, nbx, nby = (o.float() for o in outputs)
    b, n, h, w = cls.shape
    k = nb_idx.shape[1]
    mask, lms = supervised(lms.float())
    flat, own, nb = pipnet_targets(lms, nb_idx, h, w)
    onehot = F.one_hot(flat, h * w).float().view(b, n, h, w)
    loss_cls = _masked_mean((cls - onehot) ** 2, mask[:, :, None, None])
    fine = mask if coarse is None else mask * (~coarse.bool()).to(mask)[:, None]

    def at(t: torch.Tensor, per: int) -> torch.Tensor:
        t = t.reshape(b, n, per, h * w)
        return t.gather(3, flat[:, :, None, None].expand(b, n, per, 1))[..., 0]

    loss_x = _masked_mean((at(ox, 1)[..., 0] - own[..., 0]).abs(), fine)
    loss_y = _masked_mean((at(oy, 1)[..., 0] - own[..., 1]).abs(), fine)
    nb_fine = fine[:, :, None] * mask[:, nb_idx]                      # both ends of the offset labelled
    loss_nbx = _masked_mean((at(nbx, k) - nb[..., 0]).abs(), nb_fine)
    loss_nby = _masked_mean((at(nby, k) - nb[..., 1]).abs(), nb_fine)
    reg = loss_x + loss_y + loss_nbx + loss_nby
    total = cls_weight * loss_cls + reg_weight * reg
    return total, {"cls": loss_cls.item(), "reg": reg.item()}


def gaussian_heatmaps(lms: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """(B,N,H,W) Gaussians at the landmarks; pixel centres at (i + 0.5) / W as decode_heatmaps assumes."""
    xs = torch.arange(w, device=lms.device, dtype=lms.dtype) + 0.5
    ys = torch.arange(h, device=lms.device, dtype=lms.dtype) + 0.5
    gx = lms[..., 0:1] * w
    gy = lms[..., 1:2] * h
    ex = torch.exp(-((xs[None, None] - gx) ** 2) / (2 * sigma ** 2))                # (B,N,W)
    ey = torch.exp(-((ys[None, None] - gy) ** 2) / (2 * sigma ** 2))                # (B,N,H)
    return ey[..., :, None] * ex[..., None, :]


def heatmap_loss(pred: torch.Tensor, lms: torch.Tensor, sigma: float, fg_weight: float = 0.0) -> torch.Tensor:
    """Heatmap MSE x100 (on the scale of the other terms); NaN landmarks are unsupervised, as in pipnet_loss.
    `fg_weight` w weighs each pixel by 1 + w * target: the ~15 peak pixels of a 64x64 map otherwise weigh so
    little that an all-zero map is a deep local minimum, which short schedules do not leave."""
    mask, lms = supervised(lms.float())
    target = gaussian_heatmaps(lms, pred.shape[2], pred.shape[3], sigma)
    weight = mask[:, :, None, None] * (1.0 + fg_weight * target)
    return _masked_mean((pred.float() - target) ** 2, weight) * 100.0


class FeatureAligner(nn.Module):
    """Projects student features to the teacher's channels and size (feature-aligned distillation)."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(student_channels, teacher_channels, 1, bias=False),
                                  nn.BatchNorm2d(teacher_channels))

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        s = self.proj(student.float())
        if s.shape[-2:] != teacher.shape[-2:]:
            s = F.adaptive_avg_pool2d(s, teacher.shape[-2:])
        return F.mse_loss(s, teacher.float())


def similarity_matrix(feat: torch.Tensor, size: int = 8) -> torch.Tensor:
    """(B, P, P) cosine similarity between every pair of spatial positions, at size x size."""
    f = F.adaptive_avg_pool2d(feat.float(), size).flatten(2)                         # (B,C,P)
    f = F.normalize(f, dim=1)
    return f.transpose(1, 2) @ f


def feature_similarity_loss(student: torch.Tensor, teacher: torch.Tensor, size: int = 8) -> torch.Tensor:
    """Match the pairwise spatial similarity of student and teacher features (channel counts may differ)."""
    return F.mse_loss(similarity_matrix(student, size), similarity_matrix(teacher, size))
