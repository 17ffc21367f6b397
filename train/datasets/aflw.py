"""AFLW-19 in the csv layout of HRNet / SAN: face_landmarks_aflw_{train,test,test_frontal}.csv.

Columns: image_name, scale, box_size, center_w, center_h, then 19 x y pairs (one header row). The face box
is the box_size square about (center_w, center_h); its side is the NME normaliser (sqrt(w*h) = box_size),
as in HRNet's evaluation. Coordinates are taken as they are (0-based pixels). Images are looked up under
images/ beside the csv files, then beside the csv files themselves.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from .sample import Sample, as_landmarks

log = logging.getLogger(__name__)

NUM_POINTS = 19
SPLITS = ("train", "test", "frontal")
_FILES = {"train": "face_landmarks_aflw_train.csv", "test": "face_landmarks_aflw_test.csv",
          "frontal": "face_landmarks_aflw_test_frontal.csv"}


def csv_file(root: Path, split: str) -> Path | None:
    for c in (root / _FILES[split], root / "annotations" / _FILES[split]):
        if c.is_file():
            return c
    return None


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    with open(path, newline="") as f:
        rows = [(i + 1, r) for i, r in enumerate(csv.reader(f)) if r and any(v.strip() for v in r)]
    if rows:
        try:
            float(rows[0][1][1])
        except (ValueError, IndexError):
            rows = rows[1:]          # header row
    return rows


def _image_dirs(root: Path) -> list[Path]:
    return [d for d in (root / "images", root) if d.is_dir()]


def read_aflw(root: str | Path, split: str = "test") -> list[Sample]:
    """AFLW-19 train, test (full) or frontal (the test faces in the frontal list). Test faces carry a
    `frontal` attribute (0/1) when the frontal csv is present, so evaluation reports both at once."""
    root = Path(root)
    split = split.removeprefix("test_")
    if split not in SPLITS:
        raise ValueError(f"unknown AFLW split {split!r}; choose from {list(SPLITS)}")
    path = csv_file(root, split)
    if path is None:
        raise FileNotFoundError(f"{root}: no {_FILES[split]} (here or under annotations/)")
    frontal_keys: set[tuple[str, ...]] | None = None
    if split == "test":
        fp = csv_file(root, "frontal")
        if fp is not None:
            frontal_keys = {tuple(v.strip() for v in r) for _, r in _rows(fp)}
    dirs = _image_dirs(root) + ([path.parent / "images", path.parent] if path.parent != root else [])
    samples, missing = [], 0
    for line_no, row in _rows(path):
        where = f"{path}:{line_no}"
        if len(row) != 5 + 2 * NUM_POINTS:
            raise ValueError(f"{where}: expected {5 + 2 * NUM_POINTS} columns (image_name, scale, box_size, "
                             f"center_w, center_h, 19 x y pairs), got {len(row)}")
        name = row[0].strip()
        try:
            _, box_size, cx, cy = (float(v) for v in row[1:5])
        except ValueError:
            raise ValueError(f"{where}: scale, box_size, center_w, center_h must be numbers") from None
        try:
            landmarks = as_landmarks([float(v) for v in row[5:]], NUM_POINTS, where)
        except ValueError as e:
            raise ValueError(f"{where}: bad landmark values ({e})") from None
        image = next((d / name for d in dirs if (d / name).is_file()), None)
        if image is None:
            missing += 1
            continue
        half = box_size / 2
        box = np.array([cx - half, cy - half, cx + half, cy + half], dtype=np.float32)
        attrs = {}
        if frontal_keys is not None:
            attrs["frontal"] = int(tuple(v.strip() for v in row) in frontal_keys)
        samples.append(Sample(image, landmarks, box, "frontal" if split == "frontal" else split, attrs))
    if missing:
        log.warning("AFLW %s: %d images listed in %s not found under %s; skipped", split, missing, path,
                    [str(d) for d in dirs])
    if not samples:
        raise ValueError(f"AFLW split {split!r}: no samples (annotations {path})")
    return samples
