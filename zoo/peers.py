"""Peer landmarkers from other projects, behind the zoo's Landmarker contract: `peer(image, boxes=None)` ->
list of `zoo.Face`, `predict_crops(image, crop_boxes)` for evaluation on ground-truth crops, `.timings`,
`.scheme`, `.entry` (with `preprocess.gt_box_scale`), `.name`. Evaluation, bench and the Space score them
alike.

    load_peer("dlib")            # dlib's 68-point predictor on dlib's own HOG face boxes (its authors' protocol)
    load_peer("dlib_givenbox")   # the same predictor on a box derived from the given (ground-truth) crop
    load_peer("pfld_ghostone")   # PFLD-GhostOne, 98 points, ONNX; the file is never downloaded:
                                 # $ZOO_HOME/pfld_ghostone/PFLD_GhostOne_112_1_opt_sim.onnx or `path`

dlib's 68-point shape predictor ships in the `face-recognition-models` package; it was trained on iBUG
300-W, whose licence is non-commercial, and it has seen the 300-W training images.
"""
from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import crop
from . import files
from .files import local_dir, sha256_file
from .images import ImageInput, load_image
from .landmarker import STAGES, Face, Landmarker
from .registry import Preprocess, ZooError
from .schemes import Scheme, get_scheme

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install dlib-bin face-recognition-models"

# dlib's HOG face box relative to the 68-point landmark box (width w, height h, centre c), measured by
# running dlib.get_frontal_face_detector() on 887 faces of the 300-W training folders here (medians):
# a square of side 1.06 * sqrt(w * h), centred 0.094 * h above the landmark box's centre (it starts
# above the brows and stops near the chin). "dlib_givenbox" gets this box from the evaluation crop.
DLIB_SIDE = 1.06
DLIB_SHIFT_UP = 0.094
# dlib's own examples (face_landmark_detection.py) run the HOG detector with one upsampling: faces down to
# about 40 px are found.
DLIB_UPSAMPLE = 1

PFLD_FILE = "PFLD_GhostOne_112_1_opt_sim.onnx"
PFLD_SHA256 = "74d1a83932af79c2689d9371b21f32d014552f089985f076e832e89cb18f41e8"
# PFLD's crop: a square centred on the landmark (or detector) box, side 1.2x its larger side.
PFLD_SCALE = 1.2

PEERS: dict[str, str] = {
    "dlib": "dlib 68-point ERT predictor on dlib's own HOG detector boxes (the protocol it was trained for)",
    "dlib_givenbox": "dlib 68-point ERT predictor on a box derived from the given face / ground-truth crop",
    "pfld_ghostone": "PFLD-GhostOne 98-point (WFLW), ONNX, bundled",
    "mediapipe": "MediaPipe Face Mesh (BlazeFace + rotated crop + 468-point mesh), mapped to 300-W's 68 points",
    "mediapipe_98": "MediaPipe Face Mesh, mapped to WFLW's 98 points",
}
MEDIAPIPE_FOLDER = "mediapipe_facemesh"
# Evaluation on a ground-truth crop: MediaPipe's detector looks at this square about the crop (its graph takes
# such a region of interest), so each face is found by its own detector, as in a photo of that face alone.
MEDIAPIPE_EVAL_ROI = 2.0


@dataclass(frozen=True)
class PeerEntry:
    """The registry-entry fields evaluation, bench and the Space read."""
    name: str
    dataset: str | None
    scheme: str
    preprocess: Preprocess = field(default_factory=Preprocess)
    license: str = "other"
    notes: str = ""
    params: int | None = None
    kind: str = "peer"


Boxes = Sequence[Sequence[float]] | np.ndarray | Sequence[Face]


class Peer:
    """The shared call path; subclasses give `_detect(img)` and `_landmarks(img, face_boxes)`."""

    name: str
    scheme: Scheme
    entry: PeerEntry
    backend = "peer"
    _stage = Landmarker._stage          # the same stage timer as the zoo's landmarker

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def _detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        raise NotImplementedError

    def _landmarks(self, img: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, image: ImageInput, boxes: Boxes | None = None, color: str = "rgb",
                 max_faces: int | None = None, box_rule: Any = None, rolls: Any = None) -> list[Face]:
        """Faces in `image`. `boxes` (face boxes [[x0, y0, x1, y1], ...] or Faces) skips the peer's detector.
        A peer crops every face box by its own rule, upright, so `box_rule` and `rolls` are accepted for call
        compatibility only."""
        self.timings = dict.fromkeys(STAGES, 0.0)
        if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer))
                                      or max_faces < 0):
            raise ZooError(f"max_faces must be a whole number >= 0 or None, not {max_faces!r}")
        img = load_image(image, color)
        with self._stage("detect"):
            if boxes is None:
                det, scores, det_name = self._detect(img)
                names: list[str | None] = [det_name] * len(det)
            else:
                det, scores, names = _given_boxes(boxes, img.shape[1], img.shape[0])
        if max_faces is not None:
            det, scores, names = det[:max_faces], scores[:max_faces], names[:max_faces]
        points = self._landmarks(img, det) if len(det) else np.zeros((0, self.scheme.num_points, 2), np.float32)
        self.timings["total"] = sum(self.timings[s] for s in STAGES)
        return [Face(b.astype(np.float32), p, float(s), n) for b, p, s, n in zip(det, points, scores, names)]

    def predict_crops(self, image: ImageInput, crop_boxes: np.ndarray) -> np.ndarray:
        """(K, N, 2) float32 image pixels for (K, 4) evaluation crop boxes (landmark box x gt_box_scale)."""
        self.timings = dict.fromkeys(STAGES, 0.0)
        img = load_image(image)
        out = self._from_crops(img, np.asarray(crop_boxes, np.float64).reshape(-1, 4))
        self.timings["total"] = sum(self.timings[s] for s in STAGES)
        return out

    def _from_crops(self, img: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, scheme={self.scheme.name})"


def _given_boxes(boxes: Boxes, w: int, h: int) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Caller boxes (arrays or Faces) -> (K,4) boxes, scores, detector names; ZooError for a wrong box."""
    items = [boxes] if isinstance(boxes, Face) else boxes
    if not isinstance(items, np.ndarray) and len(items) and all(isinstance(f, Face) for f in items):
        scores = np.asarray([f.score for f in items], np.float32)
        names: list[str | None] = [f.detector for f in items]
        items = [f.box for f in items]
    else:
        scores, names = None, []
    if not isinstance(items, np.ndarray) and len(items) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), []
    try:
        b = crop.validate_boxes(items, w, h)
    except (ValueError, TypeError) as e:
        raise ZooError(str(e)) from None
    return b, np.ones(len(b), np.float32) if scores is None else scores, names or [None] * len(b)


def _landmark_boxes(crop_boxes: np.ndarray, gt_box_scale: float) -> np.ndarray:
    """(K,4) landmark boxes from evaluation crop boxes: undo the crop's scaling about the centre."""
    b = np.asarray(crop_boxes, np.float64).reshape(-1, 4)
    c, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2 / gt_box_scale
    return np.concatenate([c - half, c + half], axis=1)


# ------------------------------------------------------------------------------------------------ dlib
def dlib_model_path() -> Path:
    """shape_predictor_68_face_landmarks.dat inside face-recognition-models, found without importing that
    package (its __init__ imports pkg_resources, gone from recent setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the dlib 68-point model needs face-recognition-models: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise ImportError(f"{path} is missing; reinstall: {INSTALL_HINT}")
    return path


def dlib_face_box(crop_boxes: np.ndarray, gt_box_scale: float) -> np.ndarray:
    """(K, 4) dlib-like face boxes from (K, 4) evaluation crop boxes (landmark box x gt_box_scale)."""
    lb = _landmark_boxes(crop_boxes, gt_box_scale)
    w, h = lb[:, 2] - lb[:, 0], lb[:, 3] - lb[:, 1]
    cx = (lb[:, 0] + lb[:, 2]) / 2
    cy = (lb[:, 1] + lb[:, 3]) / 2 - DLIB_SHIFT_UP * h
    half = DLIB_SIDE * np.sqrt(w * h) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


class DlibPeer(Peer):
    """dlib's 68-point shape predictor (ERT, Kazemi & Sullivan 2014) on 300-W's scheme.

    `own_detector=True` ("dlib"): evaluation crops are matched (IoU) to dlib's HOG detections and the
    predictor runs on the HOG box, as it was trained; faces HOG misses get NaN rows (failures).
    `own_detector=False` ("dlib_givenbox"): the predictor runs on a box derived from the crop.
    Called on an image, both find faces with HOG; given face boxes are used as they are.
    """

    backend = "dlib"

    def __init__(self, own_detector: bool = True, model_path: str | Path | None = None,
                 upsample: int = DLIB_UPSAMPLE) -> None:
        super().__init__()
        try:
            import dlib
        except ImportError:
            raise ImportError(f"the dlib peer needs dlib: {INSTALL_HINT}") from None
        self._dlib = dlib
        self.own_detector = own_detector
        self.upsample = upsample
        self.model_path = Path(model_path) if model_path else dlib_model_path()
        self._predictor = dlib.shape_predictor(str(self.model_path))
        self._hog = dlib.get_frontal_face_detector()
        self.name = "dlib" if own_detector else "dlib_givenbox"
        self.scheme = get_scheme("68")
        how = "on dlib's own HOG face boxes" if own_detector else "on a face box derived from the given crop"
        self.entry = PeerEntry(self.name, "300w", "68", license="dlib: Boost; model: trained on iBUG 300-W "
                               "(non-commercial)", notes=f"dlib {dlib.__version__} shape_predictor_68 {how}")

    def _detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        rects, scores, _ = self._hog.run(np.ascontiguousarray(img, np.uint8), self.upsample, 0.0)
        # dlib rectangles are integer and include their right/bottom pixel.
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
        order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
        return boxes.reshape(-1, 4)[order], np.asarray(scores, np.float32)[order], "dlib_hog"

    def _landmarks(self, img: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
        with self._stage("preprocess"):
            image = np.ascontiguousarray(img, dtype=np.uint8)
            rects = [self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
                     for x0, y0, x1, y1 in face_boxes]
        with self._stage("model"):
            shapes = [self._predictor(image, r) for r in rects]
        with self._stage("decode"):
            return np.array([[(p.x, p.y) for p in s.parts()] for s in shapes], np.float32).reshape(-1, 68, 2)

    def _from_crops(self, img: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
        scale = self.entry.preprocess.gt_box_scale
        if not self.own_detector:
            return self._landmarks(img, dlib_face_box(crop_boxes, scale))
        with self._stage("detect"):
            hog, _, _ = self._detect(img)
            lboxes = _landmark_boxes(crop_boxes, scale)
            # match_face reads a face's centre and extent from its points: the landmark box's two corners do.
            picks = [crop.match_face(hog, lb.reshape(2, 2)) for lb in lboxes]
        out = np.full((len(crop_boxes), 68, 2), np.nan, np.float32)
        found = [k for k, j in enumerate(picks) if j is not None]
        if found:
            out[found] = self._landmarks(img, hog[[picks[k] for k in found]])
        return out


class DlibLandmarker(DlibPeer):
    """The given-box dlib peer under its former name (space/ and train/ callers until they move)."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        super().__init__(own_detector=False, model_path=model_path)


# ------------------------------------------------------------------------------------------------ PFLD
def peer_file(folder: str, filename: str) -> Path:
    """A peer's model file: bundled in the package (zoo/weights/FOLDER/, with its LICENSE), else under
    $ZOO_HOME/FOLDER/ (zoo.files.local_dir()). The path returned may not exist; callers say so."""
    bundled = files.BUNDLED_DIR / folder / filename
    return bundled if bundled.is_file() else local_dir() / folder / filename


def pfld_default_path() -> Path:
    """Where load_peer("pfld_ghostone") looks without a path: bundled, else under $ZOO_HOME."""
    return peer_file("pfld_ghostone", PFLD_FILE)


def pfld_square(boxes: np.ndarray, scale: float = PFLD_SCALE) -> np.ndarray:
    """(K,4) squares centred on the boxes, side `scale` x each box's larger side (PFLD's crop)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    c = (b[:, :2] + b[:, 2:]) / 2
    half = scale * np.max(b[:, 2:] - b[:, :2], axis=1, keepdims=True) / 2
    return np.concatenate([c - half, c + half], axis=1).astype(np.float32)


def onnx_params(path: Path) -> int | None:
    """Parameter count of an ONNX graph (its initializers), or None when onnx cannot read it."""
    try:
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:      # onnx missing or the file unreadable: the count is informative only
        return None
    return int(sum(int(np.prod(t.dims)) for t in graph.initializer))


class PfldPeer(Peer):
    """PFLD-GhostOne (98 points, trained on WFLW; Apache-2.0), run by onnxruntime.

    Input 1x3x112x112 BGR, (x/255 - 0.5)/0.5; output 196 values, x y pairs in [0, 1] of the crop. The crop is
    a square of 1.2x the larger side of the landmark box (evaluation: gt_box_scale 1.2, squared) or of the
    detector box (called on an image: the zoo's `detector`; "auto", the default, is zoo.load's: the best
    detector on this machine).
    """

    backend = "onnx"

    def __init__(self, path: str | Path | None = None, detector: str = "auto", threads: int | None = None,
                 check_sha256: bool = True) -> None:
        super().__init__()
        from .onnx_backend import OnnxRunner

        self.model_path = Path(path) if path else pfld_default_path()
        if not self.model_path.is_file():
            raise ZooError(f"PFLD-GhostOne: {self.model_path} not found. It is never downloaded: put {PFLD_FILE} "
                           f"there (under $ZOO_HOME/pfld_ghostone/) or pass its path")
        if check_sha256 and sha256_file(self.model_path) != PFLD_SHA256:
            raise ZooError(f"{self.model_path}: sha256 differs from PFLD-GhostOne's {PFLD_SHA256}")
        self.runner = OnnxRunner(self.model_path, threads=threads)
        self._detector_name = detector
        self._detector: Any = None
        self.name = "pfld_ghostone"
        self.scheme = get_scheme("98")
        self.entry = PeerEntry(
            self.name, "wflw", "98",
            Preprocess(input_size=112, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), gt_box_scale=PFLD_SCALE),
            license="Apache-2.0 (weights trained on WFLW, non-commercial research data)",
            notes="PFLD-GhostOne 112x112 ONNX (opt_sim); BGR input; square crop of 1.2x the box's larger side",
            params=onnx_params(self.model_path))

    @property
    def detector(self):
        if self._detector is None:
            from .detectors import best_detector, load_detector
            name = best_detector() if self._detector_name == "auto" else self._detector_name
            self._detector = load_detector(name)
        return self._detector

    def _detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        boxes, scores = self.detector(img)
        return boxes, scores, getattr(self.detector, "name", self._detector_name)

    def _landmarks(self, img: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
        return self._run(img, pfld_square(face_boxes, PFLD_SCALE))

    def _from_crops(self, img: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
        return self._run(img, pfld_square(crop_boxes, 1.0))    # the crop box already holds the 1.2

    def preprocess(self, img: np.ndarray, squares: np.ndarray) -> np.ndarray:
        """(K,3,112,112) float32 network input: crops of the RGB image, as BGR, scaled to [-1, 1]."""
        p = self.entry.preprocess
        crops = crop.crop_faces(img, squares, p.input_size)[..., ::-1]      # RGB -> BGR, as trained
        # numpy arithmetic, as on the zoo's ONNX path: a torch op would wake torch's threads against onnxruntime
        return crop.normalise_crops(np.ascontiguousarray(crops), p.mean, p.std)

    def _run(self, img: np.ndarray, squares: np.ndarray) -> np.ndarray:
        with self._stage("preprocess"):
            x = self.preprocess(img, squares)
        with self._stage("model"):
            raw = np.concatenate([self.runner(x[i:i + 1])[0] for i in range(len(x))])   # the graph takes batch 1
        with self._stage("decode"):
            return crop.to_image_coords(raw.reshape(-1, 98, 2).astype(np.float32), squares)


# ------------------------------------------------------------------------------------------- MediaPipe
def mesh_map_path(scheme: str) -> Path:
    return peer_file(MEDIAPIPE_FOLDER, f"map_{scheme}.json")


def load_mesh_map(scheme: str) -> dict[str, Any]:
    """The linear map from the 468 mesh points to `scheme` (train/meshmap.py fits it on training faces):
    each target point is a weighted sum of a few mesh points, weights summing to 1."""
    path = mesh_map_path(scheme)
    if not path.is_file():
        raise ZooError(f"{path}: no MediaPipe map to {scheme} points; fit it with `python -m train.meshmap {scheme} "
                       "--data DIR` (training faces only)")
    m = json.loads(path.read_text())
    m["indices"], m["weights"] = np.asarray(m["indices"], np.int64), np.asarray(m["weights"], np.float32)
    return m


def apply_mesh_map(mesh: np.ndarray, mapping: dict[str, Any]) -> np.ndarray:
    """(..., 468, 2) mesh points -> (..., N, 2) points of the map's scheme."""
    return np.einsum("...nkd,nk->...nd", mesh[..., mapping["indices"], :], mapping["weights"]).astype(np.float32)


class MediaPipePeer(Peer):
    """MediaPipe Face Mesh run as its authors intend (zoo/facemesh.py): its own BlazeFace detector, the rotated
    square crop from the detection's eye keypoints, the 468-point mesh; scored on a landmark scheme through a
    linear map fitted on training faces only. `scheme=None` keeps the 468 raw points. Called with boxes from
    another detector, the crop is 1.5x the box's longer side, upright (no keypoints to level it)."""

    backend = "tflite"
    own_detector = True                 # evaluation: BlazeFace finds each face (train/protocols.py)
    detector_label = "BlazeFace short range"

    def __init__(self, scheme: str | None = "68", threads: int | None = 1, folder: str | Path | None = None) -> None:
        super().__init__()
        from .facemesh import NUM_POINTS, FaceMesh

        self.runtime = FaceMesh(Path(folder) if folder else peer_file(MEDIAPIPE_FOLDER, "face_landmark.tflite").parent,
                                threads)
        self.mapping = load_mesh_map(scheme) if scheme else None
        self.name = {"68": "mediapipe", "98": "mediapipe_98", None: "mediapipe_468"}.get(scheme, f"mediapipe_{scheme}")
        self.scheme = get_scheme(scheme) if scheme else Scheme("468", NUM_POINTS, (), None, "face box")
        fitted = f"; map fitted on {self.mapping['fitted_on']}" if self.mapping else ""
        self.entry = PeerEntry(self.name, None, self.scheme.name, Preprocess(input_size=192, gt_box_scale=1.1),
                               license="Apache-2.0", notes="MediaPipe Face Mesh (face_detection_short_range + "
                               f"face_landmark .tflite, mediapipe 0.10.21), ai-edge-litert{fitted}")
        self._kps: dict[tuple, np.ndarray] = {}

    def video(self, max_faces: int = 1):
        """MediaPipe's own video mode (facemesh.MeshVideo): `.update(rgb_frame)` -> landmarks in this scheme."""
        from .facemesh import MeshVideo

        to_scheme = (lambda p: apply_mesh_map(p[None], self.mapping)[0]) if self.mapping else None
        return MeshVideo(self.runtime, max_faces, to_scheme)

    def _detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        boxes, scores, kps = self.runtime.detect(img)
        self._kps = {tuple(np.round(b, 3)): k for b, k in zip(boxes, kps)}
        return boxes, scores, "blazeface"

    def _mesh(self, img: np.ndarray, regions: list) -> np.ndarray:
        from .facemesh import MESH_SIZE

        with self._stage("preprocess"):
            crops = [self.runtime.crop(img, r) for r in regions]
        with self._stage("model"):
            raw = [self.runtime.run_mesh(x)[0] for x in crops]
        with self._stage("decode"):
            pts = np.stack([r.to_image(p, MESH_SIZE) for r, p in zip(regions, raw)]) if raw else \
                np.zeros((0, 468, 2), np.float32)
            return apply_mesh_map(pts, self.mapping) if self.mapping else pts

    def _landmarks(self, img: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
        from .facemesh import Region, region_from

        regions: list[Region] = []
        for b in face_boxes:
            k = self._kps.get(tuple(np.round(b, 3)))
            if k is not None:          # its own detection: levelled by the eye keypoints
                regions.append(self.runtime.region(b, k))
            else:
                c = (b[:2] + b[2:]) / 2
                regions.append(region_from(c, float(max(b[2] - b[0], b[3] - b[1])), c, c + [1.0, 0.0]))
        return self._mesh(img, regions)

    def _from_crops(self, img: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
        out = np.full((len(crop_boxes), self.scheme.num_points, 2), np.nan, np.float32)
        for i, cb in enumerate(crop_boxes):
            c, side = (cb[:2] + cb[2:]) / 2, MEDIAPIPE_EVAL_ROI * float(max(cb[2:] - cb[:2]))
            roi = np.concatenate([c - side / 2, c + side / 2])
            with self._stage("detect"):
                boxes, _, kps = self.runtime.detect(img, roi)
                lb = _landmark_boxes(cb[None], self.entry.preprocess.gt_box_scale)[0]
                j = crop.match_face(boxes, lb.reshape(2, 2)) if len(boxes) else None
            if j is not None:
                out[i] = self._mesh(img, [self.runtime.region(boxes[j], kps[j])])[0]
        return out


# ------------------------------------------------------------------------------------------ the registry
def _dlib_missing() -> str | None:
    if importlib.util.find_spec("dlib") is None:
        return f"dlib is not installed ({INSTALL_HINT})"
    try:
        dlib_model_path()
    except ImportError as e:
        return str(e)
    return None


def peer_unavailable(name: str) -> str | None:
    """Why peer `name` cannot load on this machine now, or None when it can."""
    if name not in PEERS:
        return f"unknown peer {name!r}; peers: {list(PEERS)}"
    if name.startswith("dlib"):
        return _dlib_missing()
    if name.startswith("mediapipe"):
        from .facemesh import runtime_missing

        scheme = "98" if name == "mediapipe_98" else "68"
        return runtime_missing() or (None if mesh_map_path(scheme).is_file() else f"{mesh_map_path(scheme)} not found")
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime)"
    path = pfld_default_path()
    return None if path.is_file() else f"{path} not found (set $ZOO_HOME or pass the file's path)"


def available_peers() -> list[str]:
    """Peers usable on this machine now: dependencies installed and files found (nothing is downloaded)."""
    return [n for n in PEERS if peer_unavailable(n) is None]


def is_peer(name: str) -> bool:
    return name in PEERS


def load_peer(name: str, path: str | Path | None = None, **kwargs: Any) -> Peer:
    """A peer landmarker by name ("dlib", "dlib_givenbox", "pfld_ghostone"); `path` overrides its model file.
    Missing dependencies or files raise ZooError saying what to install or where to put the file."""
    if name not in PEERS:
        raise ZooError(f"unknown peer {name!r}; peers: {list(PEERS)}")
    try:
        if name == "pfld_ghostone":
            return PfldPeer(path, **kwargs)
        if name.startswith("mediapipe"):
            return MediaPipePeer("98" if name == "mediapipe_98" else "68", folder=path, **kwargs)
        return DlibPeer(own_detector=name == "dlib", model_path=path, **kwargs)
    except ImportError as e:
        raise ZooError(str(e)) from None
