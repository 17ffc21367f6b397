"""Cached training crops: each face cut once to the network's input (PIPNet's own preprocessing does the
same), kept as uint8 in memory and in a .npz under cache/, so epochs cost only augmentation and the model."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zoo import crop

log = logging.getLogger(__name__)
# TRAIN_CACHE_DIR moves it (tests, shared machines); default: cache/ in the repository (git-ignored)
CACHE_DIR = Path(os.environ.get("TRAIN_CACHE_DIR") or Path(__file__).resolve().parents[1] / "cache")


def build_crops(samples, size: int, scale: float, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(M,size,size,3) uint8 crops of each sample's landmark box x scale, and (M,N,2) landmarks in [0,1]."""
    imgs = np.zeros((len(samples), size, size, 3), np.uint8)
    lms = np.zeros((len(samples), samples[0].landmarks.shape[0], 2), np.float32)
    for i, s in enumerate(tqdm(samples, desc="caching crops", disable=not progress, leave=False)):
        image = s.load_image()
        box = crop.gt_crop_box(s.landmarks, scale)
        imgs[i] = crop.warp(image, crop.crop_matrix(box, size), size)
        lms[i] = (s.landmarks - box[:2]) / (box[2:] - box[:2])        # NaN (unlabelled) points stay NaN
    return imgs, lms


def cached_crops(samples, size: int, scale: float, tag: str, cache_dir: Path | None = CACHE_DIR,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    key = hashlib.sha1("|".join([tag, str(size), str(scale)] + [str(s.image_path) for s in samples]).encode())
    path = cache_dir / f"{tag}_{size}_{key.hexdigest()[:12]}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return z["images"], z["landmarks"]
    imgs, lms = build_crops(samples, size, scale, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")     # per process: concurrent runs race
        np.savez(tmp, images=imgs, landmarks=lms)
        os.replace(tmp, path)           # readers (other ranks, other runs) never see a half-written cache
        log.info("cached %d crops in %s", len(imgs), path)
    return imgs, lms
