"""iBUG .pts files (300-W, Menpo): read and write.

The files hold 1-based pixel coordinates (MATLAB convention); everything in memory is 0-based.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def read_pts(path: str | Path, num_points: int | None = None) -> np.ndarray:
    """(N, 2) float32 0-based landmarks from an iBUG .pts file.

    Raises ValueError naming the file and the problem for a malformed file, a point count that disagrees
    with its `n_points` header, or one that is not `num_points` when given.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")     # some tools write a BOM
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text .pts file") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty .pts file")
    try:
        start = lines.index("{")
    except ValueError:
        raise ValueError(f"{path}: no '{{' line opening the point list") from None
    try:
        end = lines.index("}", start + 1)
    except ValueError:
        raise ValueError(f"{path}: no '}}' line closing the point list") from None

    header: dict[str, str] = {}
    for ln in lines[:start]:
        key, sep, value = ln.partition(":")
        if not sep:
            raise ValueError(f"{path}: header line {ln!r} is not 'key: value'")
        header[key.strip().lower()] = value.strip()

    points = []
    for i, ln in enumerate(lines[start + 1:end]):
        parts = ln.split()
        if len(parts) != 2:
            raise ValueError(f"{path}: point {i + 1} line {ln!r} should hold two numbers 'x y'")
        try:
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"{path}: point {i + 1} line {ln!r} is not numeric") from None
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)

    if "n_points" in header:
        try:
            declared = int(header["n_points"])
        except ValueError:
            raise ValueError(f"{path}: n_points header {header['n_points']!r} is not an integer") from None
        if declared != len(pts):
            raise ValueError(f"{path}: header says n_points: {declared} but the file lists {len(pts)} points")
    if num_points is not None and len(pts) != num_points:
        raise ValueError(f"{path}: expected {num_points} points, the file has {len(pts)}")
    if len(pts) == 0:
        raise ValueError(f"{path}: no points between the braces")
    if not np.isfinite(pts).all():
        raise ValueError(f"{path}: coordinates contain NaN or infinity")
    return (pts - 1.0).astype(np.float32)


def write_pts(path: str | Path, landmarks: np.ndarray) -> None:
    """Write (N, 2) 0-based landmarks as an iBUG .pts file (1-based, as read_pts expects)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"landmarks must be (N, 2), got shape {pts.shape}")
    body = "\n".join(f"{x + 1:.6f} {y + 1:.6f}" for x, y in pts)
    Path(path).write_text(f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")
