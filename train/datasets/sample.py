"""The one record every dataset reader returns, and helpers shared by the readers."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG", ".BMP")
# Binary per-face flags that define evaluation subsets (WFLW attributes, AFLW's frontal test subset).
SUBSET_FLAGS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur", "frontal")


@dataclass(eq=False)     # eq on arrays is ambiguous; samples compare by identity
class Sample:
    """One annotated face. Coordinates are 0-based pixels of the full image (pixel centres at integers)."""
    image_path: Path | None
    landmarks: np.ndarray = field(repr=False)    # (N, 2) float32
    box: np.ndarray | None                # (4,) float32 x0 y0 x1 y1: the dataset's own face box, if it has one
    subset: str
    attributes: dict[str, int] = field(default_factory=dict)
    # (H, W, 3) uint8 RGB, for formats that embed pixels (COFW .mat)
    image: np.ndarray | None = field(default=None, repr=False)
    # (N,) bool per-point occlusion, where the dataset labels it (COFW)
    occluded: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """A readable id: the image path, or subset#index for embedded images."""
        if self.image_path is not None:
            return str(self.image_path)
        return f"{self.subset}#{self.attributes.get('index', 0):04d}"

    def load_image(self) -> np.ndarray:
        """RGB uint8 (H, W, 3) pixels, from the embedded array or the image file."""
        from zoo.images import array_to_rgb, load_image   # zoo is light, but keep readers importable alone

        if self.image is not None:
            return array_to_rgb(self.image)
        if self.image_path is None:
            raise ValueError(f"sample {self.name} has neither an image path nor embedded pixels")
        return load_image(self.image_path)


def as_landmarks(values, num_points: int, where: str) -> np.ndarray:
    """(num_points, 2) float32 from a flat x0 y0 x1 y1 ... sequence, or ValueError naming `where`."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size != 2 * num_points:
        raise ValueError(f"{where}: expected {num_points} points ({2 * num_points} numbers), got {arr.size} numbers")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: landmark coordinates contain NaN or infinity")
    return arr.reshape(num_points, 2).astype(np.float32)


def find_image(stem_path: Path) -> Path | None:
    """The image beside an annotation file with the same stem (300-W mixes .jpg and .png), or None."""
    for ext in IMAGE_EXTS:
        p = stem_path.with_suffix(ext)
        if p.is_file():
            return p
    return None
