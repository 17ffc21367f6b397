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
from .crop import turn_matrix
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


def _dynamic_graph(path: Path) -> bytes:
    """YuNet's ONNX file with its input's height and width left free: the graph only reshapes with -1, so any
    multiple of 32 runs, and a 320x240 photo is not padded to 320x320."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    return model.SerializeToString()


class YuNetDetector:
    """YuNet (OpenCV Zoo's face detector; its ONNX file is a sha256-pinned zoo weight) on a copy whose longer
    side is `input_size`, padded to a multiple of 32: the network is cheap and its cost grows with pixels.
    Run by onnxruntime with YuNet's own decode (about 2.5x faster here than cv2.FaceDetectorYN's DNN module,
    same boxes); `runtime="opencv"` keeps OpenCV's."""

    STRIDES = (8, 16, 32)

    def __init__(self, entry: Entry, path: str | Path | None = None, runtime: str = "onnxruntime",
                 threads: int = 1):
        self.name = entry.name
        args = entry.arch_args
        self.crop_rule = tuple(args["crop_rule"]) if args.get("crop_rule") else None
        if path is None:
            path = resolve_weights(entry)
        elif entry.hub.sha256 and sha256_file(path) != entry.hub.sha256:
            raise ZooError(f"{path}: sha256 {sha256_file(path)} is not the {entry.hub.sha256} pinned for {entry.name}")
        self.path = Path(path)
        self.input_size = int(args.get("input_size", 320))
        self.score_threshold, self.nms_threshold = float(args["score_threshold"]), float(args["nms_threshold"])
        self.top_k = int(args.get("top_k", 5000))
        if runtime not in ("onnxruntime", "opencv"):
            raise ZooError(f"YuNet runtime must be 'onnxruntime' or 'opencv', not {runtime!r}")
        self.runtime = runtime
        if runtime == "opencv":
            self.net = cv2.FaceDetectorYN.create(str(self.path), "", (self.input_size, self.input_size),
                                                 self.score_threshold, self.nms_threshold, self.top_k)
            self._size: tuple[int, int] | None = None
        else:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            # one thread: at this size a second costs more in hand-over than it gains (measured, zoo bench)
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(_dynamic_graph(self.path), opts, providers=["CPUExecutionProvider"])
            self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores, _ = self.detect(image)
        return boxes, scores

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (K,4), scores (K,), best first, and each face's 5 keypoints (K,5,2): its eyes (image left,
        then right), nose tip and mouth corners, in image pixels."""
        h, w = image.shape[:2]
        s = min(1.0, self.input_size / max(h, w))
        small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
            if s < 1.0 else image
        rows = self._detect_cv2(small) if self.runtime == "opencv" else self._detect_ort(small)
        if len(rows) == 0:
            return (*_empty(), np.zeros((0, 5, 2), np.float32))
        xywh = rows[:, :4] / s
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        order = np.argsort(-rows[:, -1], kind="stable")
        return boxes[order], rows[order, -1].copy(), (rows[order, 4:14] / s).reshape(-1, 5, 2)

    def detect_rolls(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, scores and each face's roll (radians, the slope of its eye keypoints' line)."""
        boxes, scores, kps = self.detect(image)
        eyes = kps[:, 1] - kps[:, 0]
        return boxes, scores, np.arctan2(eyes[:, 1], eyes[:, 0]).astype(np.float64)

    def _detect_cv2(self, small: np.ndarray) -> np.ndarray:
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self.net.setInputSize(size)
            self._size = size
        _, rows = self.net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))   # YuNet was trained on BGR
        return np.zeros((0, 15), np.float32) if rows is None else np.asarray(rows, np.float32)

    def _detect_ort(self, small: np.ndarray) -> np.ndarray:
        """Rows as cv2.FaceDetectorYN gives them: x, y, w, h, 5 keypoints (x, y), score."""
        h, w = small.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        x = np.zeros((1, 3, ph, pw), np.float32)
        x[0, :, :h, :w] = small[..., ::-1].transpose(2, 0, 1)                  # BGR, 0-255, as trained
        out = dict(zip(self.outputs, self.session.run(self.outputs, {"input": x})))
        rows = []
        for st in self.STRIDES:
            cols = pw // st
            cls, obj = out[f"cls_{st}"][0, :, 0], out[f"obj_{st}"][0, :, 0]
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            keep = np.flatnonzero(score >= self.score_threshold)
            if not len(keep):
                continue
            anchor = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)   # (c, r) of each cell
            bb, kp = out[f"bbox_{st}"][0, keep], out[f"kps_{st}"][0, keep]
            centre, size = (anchor + bb[:, :2]) * st, np.exp(bb[:, 2:]) * st
            kps = ((anchor[:, None, :] + kp.reshape(-1, 5, 2)) * st).reshape(-1, 10)
            rows.append(np.concatenate([centre - size / 2, size, kps, score[keep, None]], axis=1))
        if not rows:
            return np.zeros((0, 15), np.float32)
        rows = np.concatenate(rows).astype(np.float32)
        picked = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, -1].tolist(), self.score_threshold,
                                  self.nms_threshold, top_k=self.top_k)
        return rows[np.asarray(picked, int).reshape(-1)]


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


RETRY_ROLLS_DEG = (45.0, -45.0)   # where a keypoint detector finds no face upright, the picture turned by these


def detect_rolls(det: Detector, image: np.ndarray, retry_rolled: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores and each face's roll (radians) from a detector that gives keypoints (its `detect_rolls`,
    e.g. YuNet); 0 for the others. The landmarker levels each crop by it. With `retry_rolled`, a picture where
    such a detector finds nothing is searched again turned by RETRY_ROLLS_DEG (YuNet misses faces rolled by
    45 degrees or more); boxes found there come back as the upright boxes around those faces, with their roll."""
    if not callable(getattr(det, "detect_rolls", None)):
        boxes, scores = det(image)
        return boxes, scores, np.zeros(len(boxes))
    boxes, scores, rolls = det.detect_rolls(image)
    if len(boxes) or not retry_rolled:
        return boxes, scores, rolls
    for deg in RETRY_ROLLS_DEG:
        m, size = turn_matrix(image.shape[1], image.shape[0], deg)
        b, sc, r = det.detect_rolls(cv2.warpAffine(image, m, size))
        if not len(b):
            continue
        back = cv2.invertAffineTransform(m)
        corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)   # (K, 4, 2)
        pts = corners @ back[:, :2].T + back[:, 2]
        boxes = np.concatenate([pts.min(1), pts.max(1)], axis=1).astype(np.float32)
        # turning the picture counter-clockwise by deg lowers every roll (y-down slope angle) by deg
        return boxes, sc, r + np.radians(deg)
    return boxes, scores, rolls


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
