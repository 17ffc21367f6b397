"""Face detectors behind one interface: RGB uint8 image -> (boxes (K,4) x0 y0 x1 y1, scores (K,)).

Default: OpenCV's Haar cascade, which opencv-python(-headless) 4.x ships inside the wheel, so it needs no
download and no extra dependency (OpenCV is already needed for crops and augmentation). dlib's HOG
detector is more accurate but dlib-bin would be a second native dependency. FaceBoxesV2 (PIPNet's demo
detector) is a zoo entry whose weights load like any zoo weight.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from . import registry
from .registry import Entry, ZooError

log = logging.getLogger(__name__)


class Detector(Protocol):
    name: str
    crop_rule: tuple[float, float, float, float] | None   # its boxes -> training crops (train.calibrate)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


class HaarDetector:
    def __init__(self, entry: Entry, max_side: int = 800):
        self.name = entry.name
        args = entry.arch_args
        self.crop_rule = tuple(args["crop_rule"]) if args.get("crop_rule") else None
        path = Path(cv2.data.haarcascades) / args["cascade"]
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ZooError(f"OpenCV's Haar cascade {path} is missing: install opencv-python-headless 4.x "
                           "(5.x no longer ships the cascades)")
        self.scale_factor, self.min_neighbors, self.max_side = args["scale_factor"], args["min_neighbors"], max_side

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        s = min(1.0, self.max_side / max(h, w))     # detection cost grows with pixels; faces survive the resize
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            gray = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_size = max(20, int(0.05 * min(gray.shape)))
        rects, votes = self.cascade.detectMultiScale2(gray, self.scale_factor, self.min_neighbors,
                                                     minSize=(min_size, min_size))
        if len(rects) == 0:
            return _empty()
        rects = np.asarray(rects, np.float32) / s
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        scores = 1.0 - np.exp(-np.asarray(votes, np.float32).reshape(-1) / 10.0)  # neighbour votes as confidence
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order].astype(np.float32)


class FaceBoxesDetector:
    def __init__(self, entry: Entry):
        from safetensors.torch import load_file

        from .hub import resolve_weights
        from .nets.faceboxes import FaceBoxesV2

        self.name = entry.name
        self.args = entry.arch_args
        self.crop_rule = tuple(self.args["crop_rule"]) if self.args.get("crop_rule") else None
        self.model = FaceBoxesV2()
        self.model.load_state_dict(load_file(str(resolve_weights(entry))), strict=True)
        self.model.eval()

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from .nets.faceboxes import detect

        return detect(self.model, image, self.args["score_threshold"], self.args["nms_threshold"])


_KINDS = {"haar": HaarDetector, "faceboxes": FaceBoxesDetector}


def detector_entry(name: str) -> Entry:
    """The registry entry of detector `name`, or a ZooError listing the detectors (checked at load time)."""
    entry = registry.entries().get(name) if isinstance(name, str) else None
    if entry is None or entry.kind != "detector":
        what = f"a {entry.kind}" if entry is not None else "not a zoo entry"
        raise ZooError(f"unknown detector {name!r} ({what}); detectors: {registry.list_models(kind='detector')}")
    return entry


def crop_rule_of(name: str) -> tuple[float, float, float, float] | None:
    """The measured crop rule of detector `name` (from the registry, without loading the detector)."""
    rule = detector_entry(name).arch_args.get("crop_rule")
    return tuple(float(v) for v in rule) if rule else None


def load_detector(name: str = "haar") -> Detector:
    entry = detector_entry(name)
    return _KINDS[entry.arch](entry)
