"""Evaluation protocols: where each face's crop comes from.

- "gt" (PIPNet's protocol): every face is cropped from its ground-truth landmark box x the entry's
  `gt_box_scale` (1.1) and goes to `predict_crops`. No detector, no misses: it measures the landmark network
  alone. Peers get what their authors intend from the same call: "dlib" runs dlib's own HOG detector and
  matches its boxes to the faces (a face HOG misses fails), "dlib_givenbox" gets a box derived from the crop.
- "detector" (real use): the named detector runs on the whole image and the model runs as a user calls it,
  `zoo.load(name)(image)`, which equals `lm(image, boxes=detected, box_rule=<the detector's measured rule>)`
  (pinned in tests/test_landmarker.py). Each ground-truth face takes the detection that holds its landmarks'
  centre and overlaps their box most (zoo.crop.match_face, IoU > 0.3); a face no detection matches is missed:
  its error is NaN, it counts as a failure in FR and AUC and is reported. A peer with its own detector (dlib:
  HOG) uses it; other peers get the named detector's boxes.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from zoo.crop import detector_crop_box, gt_crop_box, match_face

log = logging.getLogger(__name__)

PROTOCOLS = ("gt", "detector")


@dataclass(frozen=True)
class EvalProtocol:
    name: str = "gt"                 # "gt" or "detector"
    detector: str | None = None      # the detector's registry name, for "detector"
    pipnet_rule: bool = False        # crop detections by PIPNet demo's rule instead of the detector's measured one

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.name!r}; choose from {list(PROTOCOLS)}")
        if self.name == "detector" and not self.detector:
            raise ValueError("the detector protocol needs a detector name (--detector haar|faceboxes_v2)")

    @property
    def key(self) -> str:
        """Short id for file names and JSON: "gt", "det-faceboxes_v2"."""
        return "gt" if self.name == "gt" else f"det-{self.detector}" + ("-pipnetrule" if self.pipnet_rule else "")


def own_detector(model: Any) -> bool:
    """Whether `model` is a peer that always finds faces with its own detector ("dlib": HOG)."""
    return bool(getattr(model, "own_detector", False))


def boxes_from(model: Any, protocol: EvalProtocol) -> str:
    """Where `model`'s face boxes come from under `protocol`, for reports: "ground truth", "dlib HOG", ..."""
    if own_detector(model):
        return f"own detector ({getattr(model, 'detector_label', 'dlib HOG')})"
    return "ground truth" if protocol.name == "gt" else protocol.detector + (" (PIPNet rule)" if protocol.pipnet_rule else "")


class CachedDetector:
    """A detector whose boxes are remembered per image content, so several models evaluated on the same
    images (the leaderboard) run the detector once per image."""

    def __init__(self, detector: Any, max_items: int = 4096):
        self.detector = detector
        self.name = getattr(detector, "name", None)
        self.crop_rule = getattr(detector, "crop_rule", None)
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self.max_items = max_items

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest() + bytes(str(image.shape), "ascii")
        if key not in self._cache:
            if len(self._cache) >= self.max_items:
                self._cache.clear()
            self._cache[key] = self.detector(image)
        return self._cache[key]


def _from_faces(faces: Sequence[Any], landmarks: Sequence[np.ndarray], num_points: int) -> np.ndarray:
    """(K, N, 2) predictions for the ground-truth faces from the model's detected faces; NaN where missed."""
    out = np.full((len(landmarks), num_points, 2), np.nan)
    if not faces:
        return out
    boxes = np.stack([np.asarray(f.box, np.float64) for f in faces])
    for k, lm in enumerate(landmarks):
        j = match_face(boxes, lm)
        if j is not None:
            out[k] = faces[j].landmarks
    return out


def predict_image(model: Any, image: np.ndarray, landmarks: Sequence[np.ndarray], protocol: EvalProtocol,
                  detector: Any = None) -> np.ndarray:
    """(K, N, 2) predictions (image pixels) for the K ground-truth faces of one image under `protocol`;
    rows of NaN for faces the detector missed. `detector` is the loaded detector for "detector"."""
    n = model.scheme.num_points
    if protocol.name == "gt":
        scale = float(model.entry.preprocess.gt_box_scale)
        crops = np.stack([gt_crop_box(lm, scale) for lm in landmarks])
        return np.asarray(model.predict_crops(image, crops), dtype=np.float64)
    if own_detector(model):
        return _from_faces(model(image), landmarks, n)
    rule = None if protocol.pipnet_rule else getattr(detector, "crop_rule", None)
    rule = rule or model.entry.preprocess.box_rule
    if not callable(model):
        # A bare predict_crops model: the same arithmetic as Landmarker.__call__ with the detector's rule.
        boxes, _ = detector(image)
        picks = [match_face(boxes, lm) for lm in landmarks]
        found = [k for k, j in enumerate(picks) if j is not None]
        out = np.full((len(landmarks), n, 2), np.nan)
        if found:
            crops = np.stack([detector_crop_box(boxes[picks[k]], rule) for k in found])
            out[found] = model.predict_crops(image, crops)
        return out
    boxes, _ = detector(image)
    boxes = boxes[np.all(boxes[:, 2:] - boxes[:, :2] >= 4, axis=1)]     # slivers are no face (and no valid box)
    if len(boxes) == 0:
        return _from_faces([], landmarks, n)
    # Peers crop a detector box by their own rule and ignore box_rule.
    return _from_faces(model(image, boxes=boxes, box_rule=tuple(rule)), landmarks, n)
