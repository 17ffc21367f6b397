"""300-W in the original iBUG layout: afw/, helen/{trainset,testset}/, lfpw/{trainset,testset}/, ibug/,
each a flat folder of NAME.jpg|png + NAME.pts (68 points, 1-based)."""
from __future__ import annotations

import logging
from pathlib import Path

from .pts import read_pts
from .sample import Sample, find_image

log = logging.getLogger(__name__)

_COMMON = ("helen/testset", "lfpw/testset")
_CHALLENGING = ("ibug",)
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": _COMMON,
    "challenging": _CHALLENGING,
    "full": _COMMON + _CHALLENGING,
}
# The train split cut by photo for choosing settings without the test faces: every 10th photo (a photo's faces
# are NAME_1, NAME_2, ...; LFPW's image_0001 is a photo of its own) in sorted order is held out as "val", the rest is "fit".
HELD_OUT = {"fit": False, "val": True}
SPLITS.update({k: SPLITS["train"] for k in HELD_OUT})
VAL_EVERY = 10


def photo_id(sample: Sample, root: Path) -> str:
    rel = sample.image_path.relative_to(root).with_suffix("").as_posix()
    head, _, tail = rel.rpartition("_")
    return head if head and tail.isdigit() and len(tail) <= 2 else rel     # lfpw's image_0001 is one photo


def held_out(samples: list[Sample], root: Path, val: bool) -> list[Sample]:
    photos = sorted({photo_id(s, root) for s in samples})
    chosen = set(photos[::VAL_EVERY])
    return [s for s in samples if (photo_id(s, root) in chosen) == val]


def read_300w(root: str | Path, split: str = "common") -> list[Sample]:
    """Samples of one 300-W split, sorted by relative path. Missing subfolders are skipped with a warning
    as long as one of the split's subfolders exists; a split with no images at all is an error."""
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"unknown 300-W split {split!r}; choose from {sorted(SPLITS)}")
    folders = SPLITS[split]
    present = [f for f in folders if (root / f).is_dir()]
    if not present:
        raise FileNotFoundError(f"{root}: none of the 300-W folders of split {split!r} exist ({', '.join(folders)})")
    missing = [f for f in folders if f not in present]
    if missing:
        # Loud: a "full" score without ibug is really a "common" score.
        log.warning("300-W split %r: folders %s are missing under %s; evaluating on %s only",
                    split, missing, root, present)
    samples: list[Sample] = []
    for sub in present:
        orphans = 0
        for pts_path in sorted((root / sub).glob("*.pts")):
            image = find_image(pts_path)
            if image is None:
                orphans += 1
                continue
            samples.append(Sample(image, read_pts(pts_path, 68), None, sub))
        if orphans:
            log.warning("%s: skipped %d .pts files with no image beside them", root / sub, orphans)
    if not samples:
        raise ValueError(f"{root}: 300-W split {split!r} has no image + .pts pairs in {present}")
    samples.sort(key=lambda s: s.image_path.relative_to(root).as_posix())
    return held_out(samples, root, HELD_OUT[split]) if split in HELD_OUT else samples
