"""Where the error is: NME per face region, per attribute subset (WFLW) or folder (300-W), and per yaw bin.

Every number here is a mean of per-face NME (fractions of the scheme's normaliser) over a group of faces;
faces with no prediction (missed by a detector) are left out of NME and counted as failures in FR and AUC,
as in the headline numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from zoo.metrics import auc, failure_rate
from zoo.schemes import Scheme

from .datasets import SUBSET_FLAGS, Sample
from .pose import estimate_pose, pose_supported, yaw_bins


@dataclass
class SubsetMetrics:
    nme: float
    fr: float
    auc: float
    n: int


def group_metrics(errors: np.ndarray, threshold: float) -> SubsetMetrics:
    """NME over the faces that have a prediction; FR and AUC count missed faces (NaN) as failures."""
    found = errors[np.isfinite(errors)]
    return SubsetMetrics(float(np.mean(found)) if len(found) else float("nan"), failure_rate(errors, threshold),
                         auc(errors, threshold), int(len(errors)))


def point_errors(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, boxes: np.ndarray | None = None) -> np.ndarray:
    """(K, N) point-to-point distances over the scheme's per-face normaliser; their mean over points is
    zoo.metrics.nme."""
    norm = scheme.norm_distance(gt, boxes if scheme.norm_points is None else None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm(np.asarray(pred, np.float64) - gt, axis=-1) / norm[:, None]


def region_nme(point_err: np.ndarray, scheme: Scheme) -> dict[str, float]:
    """Region name -> NME over its points (jaw, brows, nose, eyes, mouth), over the faces with a prediction."""
    found = np.isfinite(point_err).all(axis=1)
    if not found.any():
        return {}
    return {name: float(point_err[found][:, list(idx)].mean()) for name, idx in scheme.regions.items() if idx}


def subset_masks(samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    """Attribute subsets (WFLW pose ... blur, AFLW frontal) and, with several folders, one mask per folder."""
    masks: dict[str, np.ndarray] = {}
    for flag in SUBSET_FLAGS:
        m = np.array([s.attributes.get(flag, 0) == 1 for s in samples])
        if m.any():
            masks[flag] = m
    folders = sorted({s.subset for s in samples})
    if len(folders) > 1:
        for f in folders:
            masks[f] = np.array([s.subset == f for s in samples])
    return masks


def yaw_of(samples: Sequence[Sample], scheme: str) -> np.ndarray | None:
    """Estimated yaw (degrees) of each ground-truth face, or None when the scheme has no pose mapping."""
    if not pose_supported(scheme):
        return None
    return estimate_pose(np.stack([s.landmarks for s in samples]), scheme)[:, 0]


def pose_metrics(errors: np.ndarray, yaw: np.ndarray, threshold: float) -> dict[str, SubsetMetrics]:
    return {label: group_metrics(errors[m], threshold) for label, m in yaw_bins(yaw).items() if m.any()}
