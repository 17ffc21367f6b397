"""Head yaw from 2-D landmarks, for per-pose-bin NME.

How: six landmarks (outer eye corners, nose tip, mouth corners, chin; 68-point indices 36, 45, 30, 48, 54, 8,
98-point faces are mapped to 68 first) are fitted to the same six points of a generic 3-D mean face under a
scaled orthographic camera (least squares, closed form: no focal length to guess, no iteration). The fitted
2x3 projection is made orthonormal and its rotation read as yaw (about the vertical axis), pitch and roll.
Yaw is in degrees, positive when the nose points to the image's right. It is an estimate: with one generic
3-D face it is good to a few degrees near frontal and coarser beyond 45°, which is enough to bin faces.
"""
from __future__ import annotations

import numpy as np

from zoo.schemes import convert_points, get_scheme

# The generic 3-D face (arbitrary units, image-like axes: x to the image's right, y down, z away from the
# camera), after the six-point model widely used for head pose with OpenCV's solvePnP.
MODEL_68 = {
    30: (0.0, 0.0, 0.0),            # nose tip
    8: (0.0, 330.0, 65.0),          # chin
    36: (-225.0, -170.0, 135.0),    # outer corner of the eye on the image's left
    45: (225.0, -170.0, 135.0),     # outer corner of the eye on the image's right
    48: (-150.0, 150.0, 125.0),     # mouth corner, image left
    54: (150.0, 150.0, 125.0),      # mouth corner, image right
}
_IDX = np.array(list(MODEL_68))
_MODEL = np.array(list(MODEL_68.values()), dtype=np.float64)

# |yaw| bins in degrees: [0, 15), [15, 30), [30, 45), [45, 90].
YAW_EDGES = (0.0, 15.0, 30.0, 45.0)


def _rotation(points2d: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of the model that best explains the six 2-D points (scaled orthographic)."""
    x = points2d - points2d.mean(0)
    X = _MODEL - _MODEL.mean(0)
    A, *_ = np.linalg.lstsq(X, x, rcond=None)      # x ~= X @ A, A is (3, 2)
    r1 = A[:, 0] / np.linalg.norm(A[:, 0])
    r2 = A[:, 1] - r1 * (r1 @ A[:, 1])               # Gram-Schmidt: the nearest orthonormal pair
    r2 /= np.linalg.norm(r2)
    return np.stack([r1, r2, np.cross(r1, r2)])


def posable(landmarks: np.ndarray, scheme: str = "68") -> np.ndarray:
    """(K,) bool: whether each of (K, N, 2) landmarks labels the six points `estimate_pose` fits (NaN: unlabelled)."""
    pts = convert_points(np.asarray(landmarks, dtype=np.float64), get_scheme(scheme).name, "68")[:, _IDX]
    return np.isfinite(pts).all(axis=(1, 2))


def estimate_pose(landmarks: np.ndarray, scheme: str = "68") -> np.ndarray:
    """(K, 3) yaw, pitch, roll in degrees for (K, N, 2) or (N, 2) landmarks of a 68- or 98-point scheme."""
    pts = np.asarray(landmarks, dtype=np.float64)
    single = pts.ndim == 2
    pts = convert_points(pts[None] if single else pts, get_scheme(scheme).name, "68")[:, _IDX]
    out = np.empty((len(pts), 3))
    for k, p in enumerate(pts):
        R = _rotation(p)
        # The face's forward direction (the model's -z axis) in image axes is -R[:, 2]: yaw is its angle out
        # of the camera's vertical plane, pitch out of the horizontal one (down > 0); roll is the in-plane
        # angle of the eye line (the model's x axis).
        yaw = np.degrees(np.arcsin(np.clip(-R[0, 2], -1.0, 1.0)))
        pitch = np.degrees(np.arcsin(np.clip(-R[1, 2], -1.0, 1.0)))
        roll = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
        out[k] = yaw, pitch, roll
    return out[0] if single else out


def yaw_bin_labels(edges: tuple[float, ...] = YAW_EDGES) -> list[str]:
    return [f"|yaw| {a:.0f}-{b:.0f}°" for a, b in zip(edges, edges[1:])] + [f"|yaw| >={edges[-1]:.0f}°"]


def yaw_bins(yaw_deg: np.ndarray, edges: tuple[float, ...] = YAW_EDGES) -> dict[str, np.ndarray]:
    """Bin label -> boolean mask of the faces whose |yaw| falls in it."""
    a = np.abs(np.asarray(yaw_deg, dtype=np.float64))
    idx = np.searchsorted(np.asarray(edges[1:]), a, side="right")
    return {label: idx == i for i, label in enumerate(yaw_bin_labels(edges))}


def pose_supported(scheme: str) -> bool:
    """Whether `estimate_pose` can read this scheme (68 points, or a scheme that maps onto them)."""
    try:
        convert_points(np.zeros((get_scheme(scheme).num_points, 2)), get_scheme(scheme).name, "68")
        return True
    except Exception:
        return False
