"""COFW (29 points) from COFW_{train,test}_color.mat (or the grey COFW_{train,test}.mat).

Keys: IsTr/IsT (one image per face), phisTr/phisT (N, 87): 29 x, 29 y, 29 occlusion flags,
bboxesTr/bboxesT (N, 4): x y w h. All coordinates are MATLAB 1-based; they are made 0-based here.
The colour files are MATLAB v7.3 (HDF5: arrays stored transposed, images as object references) and are
read with h5py; older v5 files are read with scipy.io.loadmat.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .sample import Sample

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
NUM_POINTS = 29
_KEYS = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def mat_file(root: Path, split: str) -> Path:
    cap = split.capitalize()
    candidates = [root / f"COFW_{split}_color.mat", root / f"COFW_{split}.mat",
                  root / f"COFW_{cap}_color.mat", root / f"COFW_{cap}.mat"]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{root}: no COFW {split} file; looked for " + ", ".join(c.name for c in candidates))


def is_v73(path: Path) -> bool:
    """v7.3 .mat files are HDF5 with a 512-byte MATLAB header as user block."""
    with open(path, "rb") as f:
        head = f.read(1024)
    return b"MATLAB 7.3" in head[:128] or head[:8] == _HDF5_SIGNATURE or head[512:520] == _HDF5_SIGNATURE


def _read_v73(path: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{path} is a MATLAB v7.3 (HDF5) file; reading it needs h5py: pip install h5py") from None
    img_key, phis_key, box_key = keys
    with h5py.File(path, "r") as f:
        for k in keys:
            if k not in f:
                raise ValueError(f"{path}: no {k!r} variable (has {sorted(f.keys())})")
        # MATLAB writes column-major, so every array reads back transposed.
        phis = np.asarray(f[phis_key], dtype=np.float64).T
        boxes = np.asarray(f[box_key], dtype=np.float64).T
        images = [np.asarray(f[ref]).T for ref in np.asarray(f[img_key]).ravel()]
    return images, phis, boxes


def _read_v5(path: Path, keys: tuple[str, str, str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    img_key, phis_key, box_key = keys
    mat = loadmat(str(path))
    for k in keys:
        if k not in mat:
            raise ValueError(f"{path}: no {k!r} variable (has {sorted(k for k in mat if not k.startswith('__'))})")
    images = [np.asarray(im) for im in np.asarray(mat[img_key], dtype=object).ravel()]
    return images, np.asarray(mat[phis_key], dtype=np.float64), np.asarray(mat[box_key], dtype=np.float64)


def _to_rgb(image: np.ndarray, where: str) -> np.ndarray:
    im = np.asarray(image)
    if im.ndim == 3 and im.shape[2] == 1:
        im = im[..., 0]
    if im.ndim == 2:
        im = np.repeat(im[..., None], 3, axis=2)     # COFW mixes grey and colour faces
    if im.ndim != 3 or im.shape[2] != 3:
        raise ValueError(f"{where}: image of shape {im.shape} is neither grey (H, W) nor colour (H, W, 3)")
    if im.dtype != np.uint8:
        im = np.clip(im, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(im)


def read_cofw(root: str | Path, split: str = "test") -> list[Sample]:
    """COFW train (1,345 faces) or test (507) with embedded RGB pixels and per-point occlusion flags."""
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"unknown COFW split {split!r}; choose from {list(SPLITS)}")
    path = mat_file(root, split)
    keys = _KEYS[split]
    images, phis, boxes = (_read_v73 if is_v73(path) else _read_v5)(path, keys)
    n = len(images)
    if phis.shape != (n, 3 * NUM_POINTS):
        raise ValueError(f"{path}: {keys[1]} has shape {phis.shape}, expected ({n}, {3 * NUM_POINTS})")
    if boxes.shape != (n, 4):
        raise ValueError(f"{path}: {keys[2]} has shape {boxes.shape}, expected ({n}, 4)")
    samples = []
    for i in range(n):
        xy = np.stack([phis[i, :NUM_POINTS], phis[i, NUM_POINTS:2 * NUM_POINTS]], axis=1) - 1.0
        occluded = phis[i, 2 * NUM_POINTS:] > 0.5
        x, y, w, h = boxes[i]
        box = np.array([x - 1, y - 1, x - 1 + w, y - 1 + h], dtype=np.float32)
        attrs = {"index": i, "occluded_points": int(occluded.sum())}
        samples.append(Sample(None, xy.astype(np.float32), box, split, attrs,
                              image=_to_rgb(images[i], f"{path} face {i}"), occluded=occluded))
    if not samples:
        raise ValueError(f"{path}: no faces")
    log.info("COFW %s: %d faces from %s", split, n, path)
    return samples
