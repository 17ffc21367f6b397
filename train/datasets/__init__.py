"""Dataset readers: every format becomes a list of `Sample` (0-based pixel landmarks, optional face box).

    read_dataset("300w", root, "common")    # afw/ helen/ lfpw/ ibug/ of the iBUG distribution
    read_dataset("wflw", root, "test")      # WFLW_annotations/ + WFLW_images/; train, fewshot_train, pose, ...
    read_dataset("cofw", root, "test")      # COFW_{train,test}_color.mat (v7.3 or older)
    read_dataset("aflw", root, "test")      # face_landmarks_aflw_{train,test,test_frontal}.csv + images/
    read_dataset("pts", root)               # any folder of images + .pts (split ignored)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from . import aflw, cofw, w300, wflw
from .aflw import read_aflw
from .cofw import read_cofw
from .pts import read_pts, read_pts_folder, write_pts
from .sample import SUBSET_FLAGS, Sample
from .w300 import read_300w
from .wflw import read_wflw

log = logging.getLogger(__name__)

__all__ = ["Sample", "read_dataset", "read_pts", "write_pts", "read_pts_folder", "read_300w", "read_wflw",
           "read_cofw", "read_aflw", "sibling_root", "DATASETS", "DEFAULT_SPLITS", "SPLITS", "SUBSET_FLAGS"]

DATASETS = ("300w", "wflw", "cofw", "aflw", "pts")
DEFAULT_SPLITS = {"300w": "common", "wflw": "test", "cofw": "test", "aflw": "test", "pts": "all"}
SPLITS: dict[str, tuple[str, ...]] = {
    "300w": tuple(w300.SPLITS), "wflw": wflw.SPLITS, "cofw": cofw.SPLITS, "aflw": aflw.SPLITS, "pts": ("all",),
}
_READERS: dict[str, Callable[[Path, str], list[Sample]]] = {
    "300w": read_300w, "wflw": read_wflw, "cofw": read_cofw, "aflw": read_aflw,
    "pts": lambda root, split: read_pts_folder(root),
}
# Files or folders that show a folder holds the dataset, so `--data shared/data` finds shared/data/300w.
_MARKERS = {
    "300w": ("afw", "helen", "lfpw", "ibug"),
    "wflw": ("WFLW_annotations", "list_98pt_rect_attr_train_test", "list_98pt_rect_attr_test.txt",
             "list_98pt_rect_attr_train.txt", "list_98pt_test.txt", "list_98pt_fewshot_train.txt"),
    "cofw": ("COFW_test_color.mat", "COFW_train_color.mat", "COFW_test.mat", "COFW_train.mat"),
    "aflw": ("face_landmarks_aflw_test.csv", "face_landmarks_aflw_train.csv", "annotations"),
}


def dataset_root(name: str, root: Path) -> Path:
    """`root`, or its sub-folder named after the dataset (any case) when only that one holds the data."""
    markers = _MARKERS.get(name)
    if markers is None or any((root / m).exists() for m in markers):
        return root
    for sub in dict.fromkeys((name, name.upper(), name.capitalize())):
        cand = root / sub
        if cand.is_dir() and any((cand / m).exists() for m in markers):
            log.info("using %s for dataset %s", cand, name)
            return cand
    return root


def sibling_root(data_dir: Path, name: str) -> Path:
    """Where dataset `name` lives when training or scoring on another one from `data_dir`: inside it, or
    beside it (../shared/data/300w next to ../shared/data/wflw)."""
    for cand in (Path(data_dir), Path(data_dir).parent):
        root = dataset_root(name, cand)
        if root != cand or cand.name.lower() == name:
            return root
    raise FileNotFoundError(f"no {name} data under {data_dir} or beside it; put it at {Path(data_dir).parent / name}")


def read_dataset(name: str, root: str | Path, split: str | None = None) -> list[Sample]:
    """Samples of one dataset split; `split=None` takes the usual test split (300-W: common)."""
    key = name.lower()
    if key not in _READERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder does not exist")
    split = split or DEFAULT_SPLITS[key]
    return _READERS[key](dataset_root(key, root), split)
