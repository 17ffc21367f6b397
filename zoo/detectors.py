"""Face detectors behind one interface: RGB uint8 image -> (boxes (K,4) x0 y0 x1 y1, scores (K,)).

The default is the best detector whose weights are on this machine (`best_detector`): YuNet (OpenCV's
cv2.FaceDetectorYN; its ONNX file is a sha256-pinned zoo weight), then FaceBoxesV2 (PIPNet's demo detector,
converted weights), then OpenCV's Haar cascade, which opencv-python(-headless) 4.x ships inside the wheel, so
it needs no download and no extra dependency. dlib's HOG detector stays an optional peer.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from . import registry
from .files import local_dir, sha256_file
from .hub import local_weights, resolve_weights
from .registry import Entry, ZooError

log = logging.getLogger(__name__)


class Detector(Protocol):
    name: str
    crop_rule: tuple[float, float, float, float] | None   # its boxes -> training crops (train.calibrate)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


class HaarDetector:
    """OpenCV's Haar cascade, run on a copy downscaled to `max_side` (its cost grows with pixels; the faces it
    can find survive the resize), keeping faces of at least `min_face` x the image's shorter side and a score
    (neighbour votes, 1 - exp(-votes / 10)) of at least `min_score`. Defaults in the registry entry, measured
    on 300-W with `python -m train.calibrate haar --data ../shared/data/300w --split common --stats`."""

    def __init__(self, entry: Entry, max_side: int | None = None, min_face: float | None = None,
                 min_score: float | None = None):
        self.name = entry.name
        args = entry.arch_args
        self.crop_rule = tuple(args["crop_rule"]) if args.get("crop_rule") else None
        path = Path(cv2.data.haarcascades) / args["cascade"]
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ZooError(f"OpenCV's Haar cascade {path} is missing: install opencv-python-headless 4.x "
                           "(5.x no longer ships the cascades)")
        self.scale_factor, self.min_neighbors = args["scale_factor"], args["min_neighbors"]
        self.max_side = int(max_side if max_side is not None else args.get("max_side", 800))
        self.min_face = float(min_face if min_face is not None else args.get("min_face", 0.05))
        self.min_score = float(min_score if min_score is not None else args.get("min_score", 0.0))

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            gray = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_size = max(20, int(self.min_face * min(gray.shape)))
        rects, votes = self.cascade.detectMultiScale2(gray, self.scale_factor, self.min_neighbors,
                                                     minSize=(min_size, min_size))
        if len(rects) == 0:
            return _empty()
        rects = np.asarray(rects, np.float32) / s
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        scores = 1.0 - np.exp(-np.asarray(votes, np.float32).reshape(-1) / 10.0)  # neighbour votes as confidence
        keep = scores >= self.min_score
        boxes, scores = boxes[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order].astype(np.float32)


class YuNetDetector:
    """OpenCV's YuNet (cv2.FaceDetectorYN, no new dependency) on a copy whose longer side is `input_size`:
    the network is cheap and its cost grows with pixels. Its ONNX file is a zoo weight (sha256-pinned)."""

    def __init__(self, entry: Entry, path: str | Path | None = None):
        self.name = entry.name
        args = entry.arch_args
        self.crop_rule = tuple(args["crop_rule"]) if args.get("crop_rule") else None
        if path is None:
            path = resolve_weights(entry)
        elif entry.hub.sha256 and sha256_file(path) != entry.hub.sha256:
            raise ZooError(f"{path}: sha256 {sha256_file(path)} is not the {entry.hub.sha256} pinned for {entry.name}")
        self.path = Path(path)
        self.input_size = int(args.get("input_size", 320))
        self.net = cv2.FaceDetectorYN.create(str(self.path), "", (self.input_size, self.input_size),
                                             float(args["score_threshold"]), float(args["nms_threshold"]),
                                             int(args.get("top_k", 5000)))
        self._size: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        s = min(1.0, self.input_size / max(h, w))
        small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
            if s < 1.0 else image
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self.net.setInputSize(size)
            self._size = size
        _, rows = self.net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))   # YuNet was trained on BGR
        if rows is None or len(rows) == 0:
            return _empty()
        rows = np.asarray(rows, np.float32)
        xywh = rows[:, :4] / s
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        order = np.argsort(-rows[:, -1], kind="stable")
        return boxes[order], rows[order, -1].copy()


class FaceBoxesDetector:
    def __init__(self, entry: Entry):
        from safetensors.torch import load_file

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


_KINDS = {"haar": HaarDetector, "faceboxes": FaceBoxesDetector, "yunet": YuNetDetector}
# Best first: zoo.load(name) takes the first whose weights are on this machine (Haar is embedded).
PREFERENCE = ("yunet", "faceboxes_v2", "haar")


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


def load_detector(name: str = "haar", **kwargs) -> Detector:
    """A ready detector; `kwargs` go to its class (e.g. Haar's max_side/min_face/min_score, YuNet's path)."""
    entry = detector_entry(name)
    return _KINDS[entry.arch](entry, **kwargs)


def available(name: str) -> bool:
    """Whether detector `name` can run here without a download (embedded, or its file is on this machine)."""
    entry = detector_entry(name)
    return entry.arch == "haar" or local_weights(entry) is not None


def best_detector() -> str:
    """The best detector whose weights are on this machine: YuNet, then FaceBoxesV2, then Haar (embedded)."""
    name = next(n for n in PREFERENCE if available(n))
    log.info("detector: %s (the best of %s on this machine; pass detector= to pin one)", name, list(PREFERENCE))
    return name


def place_file(name: str, src: str | Path) -> Path:
    """Copy a detector's original file (e.g. YuNet's .onnx) to where the zoo looks for it, after checking it
    against the pinned sha256; returns the destination."""
    import shutil

    entry = detector_entry(name)
    src = Path(src)
    if not src.is_file():
        raise ZooError(f"{src}: no such file")
    actual = sha256_file(src)
    if entry.hub.sha256 and actual != entry.hub.sha256:
        raise ZooError(f"{src}: sha256 {actual} is not the {entry.hub.sha256} pinned for {name}")
    dst = local_dir() / name / entry.hub.filename
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst
