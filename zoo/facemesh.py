"""MediaPipe Face Mesh as its authors run it, outside MediaPipe: BlazeFace short-range finds faces, each face is
cut as a rotated square (its eyes level) and the mesh model gives 468 points there, which are turned back.

The steps and constants are those of MediaPipe's graphs (mediapipe/modules/face_detection/face_detection*.pbtxt,
face_landmark/face_landmark_front_cpu.pbtxt, face_detection_front_detection_to_roi.pbtxt, face_landmark_cpu.pbtxt):
- detector: the image letterboxed to 128x128 (zero border), scaled to [-1, 1]; 896 SSD anchors (strides 8, 16,
  16, 16; fixed size); sigmoid scores >= 0.5; weighted non-maximum suppression at IoU 0.3;
- region: the detection box's centre, rotated so keypoint 0 -> 1 (the eyes) is level, a square of 1.5x its longer
  side;
- mesh: that square warped to 192x192, scaled to [0, 1]; 468 (x, y, z) in input pixels; face presence =
  sigmoid(second output). Video mode (track) takes the next region from the points 33 and 263 (eye corners).
Both .tflite files (Apache-2.0) are bundled in zoo/weights/mediapipe_facemesh/ and run with ai-edge-litert.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .crop import box_iou
from .registry import ZooError

DETECTOR_FILE = "face_detection_short_range.tflite"
MESH_FILE = "face_landmark.tflite"
SHA256 = {DETECTOR_FILE: "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
          MESH_FILE: "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"}
INSTALL_HINT = "pip install ai-edge-litert"
DET_SIZE, MESH_SIZE = 128, 192
MIN_SCORE, NMS_IOU = 0.5, 0.3
MIN_PRESENCE = 0.5               # video mode: a held face is dropped below this mesh face-presence score
ROI_SCALE = 1.5
EYE_CORNERS = (33, 263)          # the mesh points video mode levels the next region with
NUM_POINTS = 468


def runtime_missing() -> str | None:
    return None if importlib.util.find_spec("ai_edge_litert") else f"ai-edge-litert is not installed ({INSTALL_HINT})"


def _interpreter(path: Path, threads: int | None):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads or 1)
    it.allocate_tensors()
    return it


def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1]: 2 per cell of the 16x16 map, then 6 per cell of the 8x8 map."""
    out = []
    for fm, per in ((DET_SIZE // 8, 2), (DET_SIZE // 16, 6)):
        yy, xx = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        out.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], 1), per, axis=0))
    return np.concatenate(out).astype(np.float32)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU):
    """MediaPipe's WEIGHTED suppression: each cluster (IoU > iou with its best box) is replaced by the
    score-weighted mean of its boxes and keypoints, keeping the best score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    left = np.ones(len(boxes), bool)
    out_b, out_k, out_s = [], [], []
    for i in range(len(boxes)):
        if not left[i]:
            continue
        members = left & (box_iou(boxes[i], boxes) > iou)
        members[i] = True
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_k.append((kps[members].reshape(-1, 12) * w).sum(0).reshape(6, 2) / w.sum())
        out_s.append(scores[i])
        left &= ~members
    if not out_b:
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32)
    return np.array(out_b, np.float32), np.array(out_k, np.float32), np.array(out_s, np.float32)


@dataclass
class Region:
    """A rotated square in image pixels: centre, side, rotation (radians, MediaPipe's sign)."""
    cx: float
    cy: float
    side: float
    angle: float

    def matrix(self, size: int) -> np.ndarray:
        """2x3 map from image pixels to the size x size crop (the inverse of `to_image`)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        fwd = np.array([[c * self.side / size, -s * self.side / size, 0.0],
                        [s * self.side / size, c * self.side / size, 0.0]])
        fwd[:, 2] = np.array([self.cx, self.cy]) - fwd[:, :2] @ np.array([size / 2, size / 2])
        return cv2.invertAffineTransform(fwd)

    def to_image(self, pts: np.ndarray, size: int) -> np.ndarray:
        u = pts[:, :2] / size - 0.5
        c, s = np.cos(self.angle), np.sin(self.angle)
        x = self.cx + self.side * (c * u[:, 0] - s * u[:, 1])
        y = self.cy + self.side * (s * u[:, 0] + c * u[:, 1])
        return np.stack([x, y], 1).astype(np.float32)


def region_from(centre: np.ndarray, extent: float, p0: np.ndarray, p1: np.ndarray) -> Region:
    """ROI_SCALE x `extent` square about `centre`, turned so p0 -> p1 is level (rotation as MediaPipe's
    DetectionsToRectsCalculator: target 0 - atan2(-(y1 - y0), x1 - x0))."""
    angle = -np.arctan2(-(p1[1] - p0[1]), p1[0] - p0[0])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    return Region(float(centre[0]), float(centre[1]), float(ROI_SCALE * extent), float(angle))


class FaceMesh:
    """The two models and the steps between them. `detect(img)` -> boxes, scores, keypoints (K,6,2);
    `mesh(img, region)` -> (468, 2) image points and the face-presence score."""

    def __init__(self, folder: Path, threads: int | None = 1, check_sha256: bool = True):
        why = runtime_missing()
        if why:
            raise ImportError(f"the MediaPipe peer needs {why}")
        from .files import sha256_file

        for name in (DETECTOR_FILE, MESH_FILE):
            path = folder / name
            if not path.is_file():
                raise ZooError(f"MediaPipe Face Mesh: {path} not found")
            if check_sha256 and sha256_file(path) != SHA256[name]:
                raise ZooError(f"{path}: sha256 differs from MediaPipe's {name} ({SHA256[name]})")
        self.det = _interpreter(folder / DETECTOR_FILE, threads)
        self.net = _interpreter(folder / MESH_FILE, threads)
        self.anchors = anchors()
        self._det_io = (self.det.get_input_details()[0]["index"],
                        {d["name"]: d["index"] for d in self.det.get_output_details()})
        outs = self.net.get_output_details()
        self._mesh_io = (self.net.get_input_details()[0]["index"],
                         max(outs, key=lambda d: int(np.prod(d["shape"])))["index"],
                         min(outs, key=lambda d: int(np.prod(d["shape"])))["index"])

    def detect(self, img: np.ndarray, roi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in the RGB image (or in the square `roi` x0 y0 x1 y1 of it): boxes (K,4), scores, keypoints."""
        h, w = img.shape[:2]
        x0, y0, x1, y1 = (0.0, 0.0, float(w), float(h)) if roi is None else (float(v) for v in roi)
        s = DET_SIZE / max(x1 - x0, y1 - y0)                  # letterbox: keep the aspect ratio, centre it
        ox = (DET_SIZE - (x1 - x0) * s) / 2 - x0 * s
        oy = (DET_SIZE - (y1 - y0) * s) / 2 - y0 * s
        m = np.array([[s, 0, ox], [0, s, oy]])
        x = cv2.warpAffine(img, m, (DET_SIZE, DET_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = (x.astype(np.float32) / 127.5 - 1.0)[None]
        inp, outs = self._det_io
        self.det.set_tensor(inp, x)
        self.det.invoke()
        raw = self.det.get_tensor(outs["regressors"])[0]
        logits = self.det.get_tensor(outs["classificators"])[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        keep = scores >= MIN_SCORE
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32)
        raw, scores, a = raw[keep], scores[keep], self.anchors[keep]
        c = raw[:, :2] / DET_SIZE + a
        half = raw[:, 2:4] / DET_SIZE / 2
        boxes = np.concatenate([c - half, c + half], 1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) / DET_SIZE + a[:, None, :]
        boxes, kps, scores = weighted_nms(boxes, kps, scores)
        back = lambda p: (p * DET_SIZE - [ox, oy]) / s        # tensor [0,1] -> image pixels
        boxes = np.concatenate([back(boxes[:, :2]), back(boxes[:, 2:])], 1).astype(np.float32)
        return boxes, scores, back(kps).astype(np.float32)

    @staticmethod
    def region(box: np.ndarray, kps: np.ndarray) -> Region:
        """The mesh's crop for a detection: MediaPipe's FaceDetectionFrontDetectionToRoi."""
        return region_from((box[:2] + box[2:]) / 2, float(max(box[2] - box[0], box[3] - box[1])), kps[0], kps[1])

    @staticmethod
    def region_from_mesh(points: np.ndarray) -> Region:
        """The next frame's crop from this frame's mesh (video mode: FaceLandmarkLandmarksToRoi)."""
        lo, hi = points.min(0), points.max(0)
        # MediaPipe levels the landmarks' box before sizing it; its side is the rotated box's longer side
        p0, p1 = points[EYE_CORNERS[0]], points[EYE_CORNERS[1]]
        r = region_from((lo + hi) / 2, 0.0, p0, p1)
        c, s = np.cos(-r.angle), np.sin(-r.angle)
        rel = points - [r.cx, r.cy]
        level = np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], 1)
        llo, lhi = level.min(0), level.max(0)
        mid = (llo + lhi) / 2
        cx = r.cx + np.cos(r.angle) * mid[0] - np.sin(r.angle) * mid[1]
        cy = r.cy + np.sin(r.angle) * mid[0] + np.cos(r.angle) * mid[1]
        return Region(float(cx), float(cy), float(ROI_SCALE * max(lhi - llo)), r.angle)

    def crop(self, img: np.ndarray, region: Region) -> np.ndarray:
        """(192, 192, 3) float32 in [0, 1]: the rotated square, edge pixels repeated outside the image."""
        x = cv2.warpAffine(img, region.matrix(MESH_SIZE), (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        return x.astype(np.float32) / 255.0

    def run_mesh(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        inp, pts_idx, score_idx = self._mesh_io
        self.net.set_tensor(inp, x[None])
        self.net.invoke()
        pts = self.net.get_tensor(pts_idx).reshape(NUM_POINTS, 3)
        presence = float(1 / (1 + np.exp(-self.net.get_tensor(score_idx).ravel()[0])))
        return pts, presence

    def mesh(self, img: np.ndarray, region: Region) -> tuple[np.ndarray, float]:
        pts, presence = self.run_mesh(self.crop(img, region))
        return region.to_image(pts, MESH_SIZE), presence


class MeshVideo:
    """MediaPipe Face Mesh's video mode (legacy FaceMesh with static_image_mode=False): the detector runs only
    while fewer than `max_faces` faces are held; each held face's next crop comes from its last mesh, and it is
    dropped when the mesh's face-presence score falls under MIN_PRESENCE. `update(img)` -> [(468, 2) points],
    each passed through `transform` when given (a peer's map to a landmark scheme)."""

    def __init__(self, mesh: FaceMesh, max_faces: int = 1, transform=None):
        self.mesh, self.max_faces, self.transform = mesh, max_faces, transform
        self.regions: list[Region] = []
        self.detections = 0

    def update(self, img: np.ndarray) -> list[np.ndarray]:
        if len(self.regions) < self.max_faces:
            boxes, _, kps = self.mesh.detect(img)
            self.detections += 1
            room = self.max_faces - len(self.regions)
            self.regions += [self.mesh.region(b, k) for b, k in zip(boxes[:room], kps[:room])]
        out, held = [], []
        for r in self.regions:
            pts, presence = self.mesh.mesh(img, r)
            if presence >= MIN_PRESENCE:
                out.append(pts if self.transform is None else self.transform(pts))
                held.append(self.mesh.region_from_mesh(pts))
        self.regions = held
        return out
