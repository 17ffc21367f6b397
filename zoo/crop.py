"""Face crops: the box rules (detector box, ground-truth landmark box), the affine warp into the network's
input, and the way back to image pixels. Shared by inference, training and evaluation."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch


# PIPNet demo's rule for FaceBoxes boxes: widen each side by 10% of the width, move down by 10% of the
# height (a detector box starts above the brows; landmarks start at them). As (dx, dy, sx, sy): the crop's
# centre moves by (dx * w, dy * h) and its size is (sx * w, sy * h).
PIPNET_RULE = (0.0, 0.1, 1.2, 1.0)


def detector_crop_box(box: np.ndarray, rule: tuple[float, float, float, float] = PIPNET_RULE) -> np.ndarray:
    """Crop box from a face-detector box under a rule (dx, dy, sx, sy). Works on (4,) or (K,4) x0 y0 x1 y1."""
    dx, dy, sx, sy = rule
    b = np.asarray(box, dtype=np.float32)
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    cx, cy = (b[..., 0] + b[..., 2]) / 2 + dx * w, (b[..., 1] + b[..., 3]) / 2 + dy * h
    return np.stack([cx - sx * w / 2, cy - sy * h / 2, cx + sx * w / 2, cy + sy * h / 2], axis=-1).astype(np.float32)


def fit_crop_rule(det_boxes: np.ndarray, crop_boxes: np.ndarray) -> tuple[float, float, float, float]:
    """The rule (medians) that best maps a detector's boxes to the training crops of the same faces."""
    d, t = np.asarray(det_boxes, np.float64), np.asarray(crop_boxes, np.float64)
    w, h = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    dx = ((t[:, 0] + t[:, 2]) - (d[:, 0] + d[:, 2])) / 2 / w
    dy = ((t[:, 1] + t[:, 3]) - (d[:, 1] + d[:, 3])) / 2 / h
    sx, sy = (t[:, 2] - t[:, 0]) / w, (t[:, 3] - t[:, 1]) / h
    return tuple(round(float(np.median(v)), 4) for v in (dx, dy, sx, sy))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of (K,4) and (K,4) (or broadcastable) x0 y0 x1 y1 boxes."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None), axis=-1)
    return inter / (np.prod(a[..., 2:] - a[..., :2], -1) + np.prod(b[..., 2:] - b[..., :2], -1) - inter)


def match_face(boxes: np.ndarray, landmarks: np.ndarray, min_iou: float = 0.3) -> int | None:
    """Index of the detection that holds the landmarks' centre and overlaps their box most (IoU > min_iou)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    c = landmarks.mean(0)
    iou = box_iou(b, np.concatenate([landmarks.min(0), landmarks.max(0)]))
    holds = (b[:, 0] < c[0]) & (c[0] < b[:, 2]) & (b[:, 1] < c[1]) & (c[1] < b[:, 3])
    iou = np.where(holds, iou, 0.0)
    return int(iou.argmax()) if len(b) and iou.max() > min_iou else None


def gt_crop_box(landmarks: np.ndarray, scale: float = 1.1) -> np.ndarray:
    """The landmark bounding box scaled by `scale` about its centre (PIPNet's 300W training/test crop)."""
    lo, hi = np.nanmin(landmarks, axis=-2), np.nanmax(landmarks, axis=-2)     # partial labels: NaN points
    c, half = (lo + hi) / 2, (hi - lo) / 2 * scale
    return np.concatenate([c - half, c + half], axis=-1).astype(np.float32)


def rolled_crop_box(box: np.ndarray, rule: tuple[float, float, float, float], angle: float) -> np.ndarray:
    """The crop box, in the face's own upright frame, for an axis-aligned detector box around a face rolled by
    `angle` (radians, the eye line's slope): the upright face box (aspect sx/sy, the rule's square crop) that,
    rolled, has the detector box's width + height; then the rule, its shift turned with the face. Crop it
    with crop_matrix(..., angle)."""
    dx, dy, sx, sy = rule
    x0, y0, x1, y1 = (float(v) for v in box)
    c, s = abs(np.cos(angle)), abs(np.sin(angle))
    aspect = sx / sy
    w0 = ((x1 - x0) + (y1 - y0)) / ((1 + aspect) * (c + s))
    h0 = aspect * w0
    ox, oy = dx * w0, dy * h0
    cx = (x0 + x1) / 2 + np.cos(angle) * ox - np.sin(angle) * oy
    cy = (y0 + y1) / 2 + np.sin(angle) * ox + np.cos(angle) * oy
    return np.array([cx - sx * w0 / 2, cy - sy * h0 / 2, cx + sx * w0 / 2, cy + sy * h0 / 2], np.float32)


def points_roll(points: np.ndarray, pair: tuple[int, int]) -> float:
    """Radians: the slope of the line from point pair[0] to pair[1] (e.g. the outer eye corners)."""
    d = np.asarray(points, np.float64)[pair[1]] - np.asarray(points, np.float64)[pair[0]]
    return float(np.arctan2(d[1], d[0]))


def rolled_landmark_box(points: np.ndarray, angle: float, scale: float = 1.1) -> np.ndarray:
    """gt_crop_box of the landmarks in the frame rolled by `angle` (radians) about its own centre: the
    training crop of a rolled face, for crop_matrix(..., angle)."""
    pts = np.asarray(points, np.float64)
    c0, c, s = pts.mean(0), np.cos(angle), np.sin(angle)
    rel = pts - c0
    level = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], 1)   # turned by -angle
    box = gt_crop_box(level, scale).astype(np.float64)
    mid, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2
    centre = c0 + np.array([c * mid[0] - s * mid[1], s * mid[0] + c * mid[1]])               # back by +angle
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


def turn_matrix(width: int, height: int, degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The 2x3 map turning a width x height picture by `degrees` (counter-clockwise on screen) about its centre
    onto a canvas grown to hold all of it, and that canvas's (width, height)."""
    m = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(height * s + width * c)), int(np.ceil(height * c + width * s))
    m[:, 2] += (nw / 2 - width / 2, nh / 2 - height / 2)
    return m, (nw, nh)


def crop_matrix(box: np.ndarray, size: int, angle: float = 0.0) -> np.ndarray:
    """2x3 affine map from image pixels to the size x size crop of `box` (x0 y0 x1 y1); with `angle`, the box
    is in a frame rolled by that angle about its centre, and the crop comes out upright."""
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = size / max(x1 - x0, 1e-6), size / max(y1 - y0, 1e-6)
    if not angle:
        return np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], dtype=np.float64)
    cx, cy, c, s = (x0 + x1) / 2, (y0 + y1) / 2, np.cos(angle), np.sin(angle)
    # image -> rotate by -angle about the centre -> the upright box -> crop pixels
    rot = np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy], [0, 0, 1]])
    scale = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy], [0, 0, 1]])
    return (scale @ rot)[:2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Crop by affine warp; pixels outside the image are black, so no box ever needs clipping."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def crop_faces(image: np.ndarray, boxes: np.ndarray, size: int, angles: np.ndarray | None = None) -> np.ndarray:
    """(K, size, size, 3) uint8 crops of the (K,4) crop boxes (each rolled by its angle, when given)."""
    angles = np.zeros(len(boxes)) if angles is None else angles
    return np.stack([warp(image, crop_matrix(b, size, a), size) for b, a in zip(boxes, angles)]) if len(boxes) \
        else np.zeros((0, size, size, 3), np.uint8)


def normalise_crops(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(K,S,S,3) uint8 crops -> (K,3,S,S) float32 network input, (x / 255 - mean) / std, in one fused
    multiply-add per channel written straight into the NCHW array (0.1 ms a face; the torch version woke
    torch's threads and cost 1-30 ms on a busy 2-core machine). normalise_tensor is the same on tensors."""
    k, h, w = crops.shape[:3]
    scale = 1.0 / (255.0 * np.asarray(std, np.float32))
    bias = -np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    out = np.empty((k, 3, h, w), np.float32)
    for i in range(k):
        for c in range(3):
            np.multiply(crops[i, :, :, c], scale[c], out=out[i, c])
            out[i, c] += bias[c]
    return out


def normalise_tensor(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(K,3,S,S) floats in [0,1] -> normalised like normalise_crops (training batches, on their device)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def to_image_coords(norm_points: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None) -> np.ndarray:
    """(K,N,2) points in [0,1] crop coordinates -> image pixels of the (K,4) crop boxes (rolled by `angles`)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    origin = boxes[:, None, :2]
    extent = boxes[:, None, 2:] - boxes[:, None, :2]
    pts = norm_points * extent + origin
    if angles is not None and np.any(angles):
        centre = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
        c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
        rel = pts - centre
        pts = centre + np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1]], axis=-1)
    return pts.astype(np.float32)


def format_box(box) -> str:
    """A box as plain numbers, "[600, 10.5, 5, 50]" (never "np.float64(600.0)") for error messages."""
    return "[" + ", ".join(f"{float(v):g}" for v in np.asarray(box, np.float64).reshape(-1)) + "]"


def validate_boxes(boxes, width: int, height: int) -> np.ndarray:
    """User boxes -> (K,4) float32 (K may be 0), or ValueError saying which box is wrong."""
    try:
        b = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"boxes must be a list of [x0, y0, x1, y1] numbers, got {boxes!r:.80}") from None
    if b.size == 0:
        return np.zeros((0, 4), np.float32)
    if b.ndim == 1 and b.size == 4:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be a list of [x0, y0, x1, y1], got shape {tuple(b.shape)}")
    for i, (x0, y0, x1, y1) in enumerate(b):
        if not np.isfinite([x0, y0, x1, y1]).all():
            raise ValueError(f"box {i} {format_box(b[i])} has non-finite values")
        if x1 - x0 < 4 or y1 - y0 < 4:
            raise ValueError(f"box {i} {format_box(b[i])} is empty or inverted: need x1 > x0 and y1 > y0 "
                             "(x0 y0 x1 y1)")
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise ValueError(f"box {i} {format_box(b[i])} lies outside the {width}x{height} image")
    return b.astype(np.float32)
