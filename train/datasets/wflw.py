"""WFLW: list_98pt_rect_attr_{train,test}.txt annotation lists + WFLW_images/.

Each line: 196 coordinates (98 x y pairs), the face box x_min y_min x_max y_max, six 0/1 attribute flags
(pose expression illumination make-up occlusion blur) and the image path relative to WFLW_images/.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .sample import Sample, as_landmarks

log = logging.getLogger(__name__)

ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
SPLITS = ("train", "test") + ATTRIBUTES
_LIST_DIR = "list_98pt_rect_attr_train_test"
_NUMBERS = 196 + 4 + 6


def annotation_file(root: Path, which: str) -> Path:
    """The train or test list: under WFLW_annotations/, under the list folder, or at root itself."""
    name = f"list_98pt_rect_attr_{which}.txt"
    candidates = [root / "WFLW_annotations" / _LIST_DIR / name, root / _LIST_DIR / name,
                  root / "WFLW_annotations" / name, root / name]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{root}: no WFLW {which} list; looked for " + ", ".join(str(c) for c in candidates))


def images_dir(root: Path) -> Path:
    for c in (root / "WFLW_images", root / "images"):
        if c.is_dir():
            return c
    return root


def parse_line(line: str, where: str) -> tuple[np.ndarray, np.ndarray, dict[str, int], str]:
    parts = line.split()
    if len(parts) < _NUMBERS + 1:
        raise ValueError(f"{where}: expected {_NUMBERS} numbers and an image path, got {len(parts)} fields")
    try:
        nums = [float(v) for v in parts[:_NUMBERS]]
    except ValueError:
        raise ValueError(f"{where}: non-numeric value among the first {_NUMBERS} fields") from None
    landmarks = as_landmarks(nums[:196], 98, where)
    box = np.asarray(nums[196:200], dtype=np.float32)
    flags = [int(round(v)) for v in nums[200:206]]
    if any(f not in (0, 1) for f in flags):
        raise ValueError(f"{where}: attribute flags {flags} should be 0 or 1")
    return landmarks, box, dict(zip(ATTRIBUTES, flags)), " ".join(parts[_NUMBERS:])


def read_wflw(root: str | Path, split: str = "test") -> list[Sample]:
    """Samples of WFLW train, test, or a test attribute subset (pose, expression, ..., blur; "test_pose"
    is accepted too), in file order."""
    root = Path(root)
    split = split.removeprefix("test_")
    if split not in SPLITS:
        raise ValueError(f"unknown WFLW split {split!r}; choose from {list(SPLITS)}")
    which = "train" if split == "train" else "test"
    ann = annotation_file(root, which)
    img_dir = images_dir(root)
    samples: list[Sample] = []
    missing = 0
    for i, line in enumerate(ann.read_text().splitlines()):
        if not line.strip():
            continue
        landmarks, box, attrs, rel = parse_line(line, f"{ann}:{i + 1}")
        if split in ATTRIBUTES and attrs[split] != 1:
            continue
        path = img_dir / rel
        if not path.is_file():
            missing += 1
            continue
        samples.append(Sample(path, landmarks, box, which, attrs))
    if missing:
        log.warning("WFLW %s: %d images listed in %s are missing under %s; skipped", split, missing, ann, img_dir)
    if not samples:
        raise ValueError(f"WFLW split {split!r}: no samples (annotations {ann}, images {img_dir})")
    return samples
