"""Drawing faces: box, landmarks and the scheme's contours, and prediction-vs-truth error lines."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .schemes import Scheme

LOW_CONFIDENCE = 0.5     # Face.scores below this draw hollow: the model doubts the point
PALETTE = [(255, 64, 64), (64, 160, 255), (64, 200, 64), (255, 170, 0), (200, 64, 255), (0, 200, 200)]


def _sizes(box_or_pts: np.ndarray) -> tuple[int, int]:
    pts = np.asarray(box_or_pts, np.float32).reshape(-1, 2)
    span = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1.0))
    return max(1, round(span / 150)), max(1, round(span / 90))      # line width, point radius


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, scheme: Scheme, color=(64, 200, 64),
                   contours: bool = True, radius: int | None = None, thickness: int | None = None,
                   scores: np.ndarray | None = None, low: float = LOW_CONFIDENCE) -> np.ndarray:
    """Points (and the scheme's contours) drawn into `image`; with `scores`, points below `low` are hollow rings."""
    out = image
    lw, r = _sizes(landmarks)
    r, lw = radius or r, thickness or lw
    pts = np.asarray(landmarks, np.float32)
    if contours:
        for c in scheme.contours:
            poly = np.round(pts[list(c.indices)] * 16).astype(np.int32)     # 4 fractional bits: smooth lines
            cv2.polylines(out, [poly], c.closed, color, lw, cv2.LINE_AA, shift=4)
    doubtful = np.zeros(len(pts), bool) if scores is None else np.asarray(scores, np.float32) < low
    for (x, y), hollow in zip(pts, doubtful):
        centre = (int(round(x * 16)), int(round(y * 16)))
        if hollow:                      # a ring one size up, so it reads as a different mark, not a smaller dot
            cv2.circle(out, centre, (r + 1) * 16, color, max(1, lw), cv2.LINE_AA, shift=4)
        else:
            cv2.circle(out, centre, r * 16, color, -1, cv2.LINE_AA, shift=4)
    return out


def draw_faces(image: np.ndarray, faces: Sequence, scheme: Scheme, color=None, label: str | None = None) -> np.ndarray:
    """A copy of the RGB image with each face's box, landmarks and contours; points the model doubts
    (Face.scores below LOW_CONFIDENCE) hollow."""
    out = np.ascontiguousarray(image).copy()
    for i, f in enumerate(faces):
        c = color or PALETTE[i % len(PALETTE)]
        lw, _ = _sizes(f.box)
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), c, lw, cv2.LINE_AA)
        text = f"{label + ' ' if label else ''}{f.score:.2f}"
        cv2.putText(out, text, (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, lw * 0.4), c, lw, cv2.LINE_AA)
        draw_landmarks(out, f.landmarks, scheme, c, scores=f.scores)
    return out


def draw_errors(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Ground truth (green) vs prediction (red), joined by a line per point."""
    out = np.ascontiguousarray(image).copy()
    lw, r = _sizes(gt)
    for (px, py), (gx, gy) in zip(pred, gt):
        cv2.line(out, (int(px), int(py)), (int(gx), int(gy)), (255, 220, 0), lw, cv2.LINE_AA)
    draw_landmarks(out, gt, scheme, (64, 200, 64), contours=False, radius=r)
    draw_landmarks(out, pred, scheme, (255, 64, 64), contours=False, radius=r)
    return out


def fit_width(image: np.ndarray, width: int = 640) -> tuple[np.ndarray, float]:
    """Resize so small and large photos draw at a size where points can be told apart."""
    s = width / image.shape[1]
    if abs(s - 1) < 0.05:
        return image, 1.0
    return cv2.resize(image, (width, max(1, round(image.shape[0] * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC), s
