"""Peer landmarkers from other libraries, wrapped in the zoo's landmarker contract (`scheme`, `entry` with
`preprocess.gt_box_scale`, `predict_crops(image, crop_boxes)`) so evaluation, bench and the Space can score them alike.

dlib's 68-point shape predictor ships in the `face-recognition-models` package; it was trained on iBUG
300-W, whose licence is non-commercial, and it has seen the 300-W training images.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.registry import Preprocess
from zoo.schemes import Scheme, get_scheme

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install dlib-bin face-recognition-models"

# dlib's HOG face box relative to the 68-point landmark box (width w, height h, centre c), measured by
# running dlib.get_frontal_face_detector() on 887 faces of the 300-W training folders here (medians):
# a square of side 1.06 * sqrt(w * h), centred 0.094 * h above the landmark box's centre (it starts
# above the brows and stops near the chin). The predictor was trained on such boxes and is sensitive to
# them, so it gets this box, not the wider 1.1x evaluation crop.
DLIB_SIDE = 1.06
DLIB_SHIFT_UP = 0.094


@dataclass(frozen=True)
class PeerEntry:
    """The few registry-entry fields evaluation reads."""
    name: str
    dataset: str | None
    scheme: str
    preprocess: Preprocess = field(default_factory=Preprocess)
    license: str = "other"
    notes: str = ""


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
    b = np.asarray(crop_boxes, dtype=np.float64).reshape(-1, 4)
    w = (b[:, 2] - b[:, 0]) / gt_box_scale          # undo the crop's scaling: the landmark box
    h = (b[:, 3] - b[:, 1]) / gt_box_scale
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2 - DLIB_SHIFT_UP * h
    half = DLIB_SIDE * np.sqrt(w * h) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


class DlibLandmarker:
    """dlib's 68-point shape predictor (ERT, Kazemi & Sullivan 2014) on 300-W's scheme."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            import dlib
        except ImportError:
            raise ImportError(f"the dlib peer needs dlib: {INSTALL_HINT}") from None
        self._dlib = dlib
        self.model_path = Path(model_path) if model_path else dlib_model_path()
        self._predictor = dlib.shape_predictor(str(self.model_path))
        self.scheme: Scheme = get_scheme("68")
        self.entry = PeerEntry("dlib", "300w", "68", notes=f"dlib {dlib.__version__} shape_predictor_68")
        self.name = "dlib"

    def predict_crops(self, image_rgb: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
        """(K, 68, 2) float32 image pixels for the (K, 4) evaluation crop boxes."""
        image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        faces = dlib_face_box(crop_boxes, self.entry.preprocess.gt_box_scale)
        out = np.zeros((len(faces), 68, 2), dtype=np.float32)
        for k, (x0, y0, x1, y1) in enumerate(faces):
            # dlib rectangles are integer and inclusive of right/bottom.
            rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
            shape = self._predictor(image, rect)
            out[k] = [(p.x, p.y) for p in shape.parts()]
        return out
