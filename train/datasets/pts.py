"""A whole folder of image + iBUG .pts pairs (the file format itself lives in zoo.pts)."""
from __future__ import annotations

import logging
from pathlib import Path

from zoo.pts import read_pts, write_pts

from .sample import Sample, find_image

log = logging.getLogger(__name__)
__all__ = ["read_pts", "write_pts", "read_pts_folder"]


def read_pts_folder(root: str | Path) -> list[Sample]:
    """Every image under `root` (recursive) with a same-stem .pts file; subset is the relative folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    samples, orphans = [], 0
    for pts_path in sorted(root.rglob("*.pts")):
        image = find_image(pts_path)
        if image is None:
            orphans += 1
            continue
        rel = pts_path.parent.relative_to(root).as_posix()
        samples.append(Sample(image, read_pts(pts_path), None, "" if rel == "." else rel))
    if orphans:
        log.warning("%s: skipped %d .pts files with no image beside them", root, orphans)
    if not samples:
        raise ValueError(f"{root}: no image + .pts pairs found (recursive)")
    return samples
