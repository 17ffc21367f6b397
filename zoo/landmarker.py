"""Landmarker: image in, faces with boxes and landmarks out. detect -> crop -> network -> decode."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import numpy as np
import torch
from torch import nn

from . import crop
from .face import Face
from .images import ImageInput, load_image
from .registry import Confidence, Entry, ZooError
from .schemes import Scheme, get_scheme

log = logging.getLogger(__name__)
STAGES = ("detect", "preprocess", "model", "decode")
Rule = tuple[float, float, float, float]


Boxes = Union[Sequence[Sequence[float]], np.ndarray, Sequence[Face]]


class Landmarker:
    """A ready landmarker. `backend` is "torch" or "onnx" (then `runner` runs the exported graph).

    Faces are cropped level: by the detector's eye keypoints where it gives them (YuNet), then, where the
    landmarks' own eye line still shows a roll of `upright_from_deg` or more, once or twice more from those
    landmarks; the landmarks are turned back. The networks were trained on faces within about 30 degrees of
    level. None: axis-aligned crops, one pass (the pipeline before). Chosen on 300-W's held-out `val` photos
    (python -m train.rolled ... --split val): keypoints on every face and a second pass from 15 degrees.
    """

    upright_from_deg: float | None = 15.0

    def __init__(self, model: nn.Module, entry: Entry, detector: Any = "haar", runner: Any = None,
                 batch_size: int = 32):
        if isinstance(detector, str):
            from .detectors import detector_entry
            detector_entry(detector)                 # an unknown name fails now, listing the detectors
        elif detector is not None and not callable(detector):
            raise ZooError(f"detector must be a detector name, a detector object or None, not "
                           f"{type(detector).__name__}")
        self.model = model.eval()
        self.entry = entry
        self.scheme: Scheme = get_scheme(entry.scheme)
        self.preprocess = entry.preprocess
        self.runner = runner
        self.backend = "onnx" if runner is not None else "torch"
        self._detector = detector
        self.batch_size = batch_size
        self.timings: dict[str, float] = {}

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def detector(self):
        if isinstance(self._detector, str):       # loaded on first use: a boxes-only user never pays for it
            from .detectors import load_detector
            self._detector = load_detector(self._detector)
        return self._detector

    def rule_for(self, detector: str | None) -> Rule:
        """The crop rule for boxes made by `detector` (a name; None: the weight's rule for caller boxes)."""
        if detector is None:
            return self.preprocess.box_rule
        own = self._detector
        if own is not None and not isinstance(own, str) and getattr(own, "name", None) == detector:
            return getattr(own, "crop_rule", None) or self.preprocess.box_rule   # the loaded object rules
        from .detectors import crop_rule_of
        return crop_rule_of(detector) or self.preprocess.box_rule

    def _given_boxes(self, boxes: Boxes, box_rule: str | Sequence[float] | None, w: int, h: int
                     ) -> tuple[np.ndarray, np.ndarray, list[str | None], list[Rule], np.ndarray]:
        """Caller boxes -> (K,4) boxes, their scores, the detector name and crop rule of each, and each one's
        roll (a Face keeps the roll its crop was levelled by)."""
        items = [boxes] if isinstance(boxes, Face) else boxes
        rolls = None
        if not isinstance(items, np.ndarray) and any(isinstance(f, Face) for f in items):
            if not all(isinstance(f, Face) for f in items):
                raise ZooError("boxes must be all Faces or all [x0, y0, x1, y1] boxes, not a mix")
            names: list[str | None] = [f.detector for f in items]
            scores = np.asarray([f.score for f in items], np.float32)
            rolls = np.asarray([f.roll for f in items], np.float64)
            items = [f.box for f in items]
        else:
            names, scores = [], None
        try:
            b = crop.validate_boxes(items, w, h)
        except ValueError as e:
            raise ZooError(str(e)) from None
        scores = np.ones(len(b), np.float32) if scores is None else scores
        rolls = np.zeros(len(b)) if rolls is None else rolls
        names = names or [None] * len(b)
        if box_rule is None:
            return b, scores, names, [self.rule_for(n) for n in names], rolls
        if isinstance(box_rule, str):
            return b, scores, [box_rule] * len(b), [self.rule_for(box_rule)] * len(b), rolls
        try:
            rule = tuple(float(v) for v in box_rule)
        except (TypeError, ValueError):
            rule = ()
        if len(rule) != 4 or not np.isfinite(rule).all() or rule[2] <= 0 or rule[3] <= 0:
            shown = crop.format_box(rule) if rule else f"{box_rule!r:.80}"     # plain numbers, not np.float64(..)
            raise ZooError(f"box_rule must be a detector name or (dx, dy, sx, sy) with sx, sy > 0, not {shown}")
        return b, scores, [None] * len(b), [rule] * len(b), rolls

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - t0) * 1000.0

    def __call__(self, image: ImageInput, boxes: Boxes | None = None, color: str = "rgb",
                 max_faces: int | None = None, box_rule: str | Sequence[float] | None = None,
                 rolls: Sequence[float] | None = None) -> list[Face]:
        """Faces in `image` (path, PIL image, or array; arrays RGB unless color="bgr").

        `boxes` skips detection: [[x0, y0, x1, y1], ...] or Faces from an earlier call. A box is cropped by
        the rule of the detector that made it: a Face's `detector`, else `box_rule` (a detector name such as
        "haar", or (dx, dy, sx, sy)), else the weight's own rule. The same boxes give the same landmarks on
        every path: lm(img) == lm(img, boxes=faces) == lm(img, boxes=[f.box ...], box_rule="haar",
        rolls=[f.roll ...]). `rolls` (radians) level given boxes' first crops as the detector's keypoints do
        (zoo.detectors.detect_rolls); a Face carries its own.
        """
        self.timings = dict.fromkeys(STAGES, 0.0)
        if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer))
                                      or max_faces < 0):
            raise ZooError(f"max_faces must be a whole number >= 0 or None, not {max_faces}")
        if boxes is None and self._detector is None:
            raise ZooError(f"{self.name} was loaded with detector=None: pass boxes=[[x0, y0, x1, y1], ...], "
                           "or load it with a detector (e.g. detector='haar')")
        img = load_image(image, color)
        h, w = img.shape[:2]
        with self._stage("detect"):
            if boxes is None:
                if box_rule is not None:
                    raise ZooError("box_rule applies to given boxes; detected boxes use their detector's rule")
                det_boxes, scores, crop_rolls = self._detect(img)
                name = getattr(self.detector, "name", None)
                names, rules = [name] * len(det_boxes), [self.rule_for(name)] * len(det_boxes)
            else:
                det_boxes, scores, names, rules, crop_rolls = self._given_boxes(boxes, box_rule, w, h)
                if rolls is not None:
                    crop_rolls = self._given_rolls(rolls, len(det_boxes))
        if self.upright_from_deg is None:                # levelling off: axis-aligned crops whatever the source
            crop_rolls = np.zeros(len(det_boxes))
        if max_faces is not None:
            det_boxes, scores = det_boxes[:max_faces], scores[:max_faces]
            names, rules, crop_rolls = names[:max_faces], rules[:max_faces], crop_rolls[:max_faces]
        if len(det_boxes) == 0:
            self.timings["total"] = sum(self.timings.values())
            return []
        # One box at a time under its own rule: the same arithmetic whichever path the box came by.
        crop_boxes = np.stack([crop.rolled_crop_box(b, r, a) if a else crop.detector_crop_box(b, r)
                               for b, r, a in zip(det_boxes, rules, crop_rolls)])
        points, evidence = self._predict(img, crop_boxes, crop_rolls)
        points, evidence = self._relevel(img, points, evidence)
        conf = self.confidence(evidence) if self.confidence is not None else [None] * len(points)
        self.timings["total"] = sum(self.timings[s] for s in STAGES)
        return [Face(b.astype(np.float32), pts, float(s), n, c, float(a))
                for b, pts, s, n, c, a in zip(det_boxes, points, scores, names, conf, crop_rolls)]

    def _relevel(self, img: np.ndarray, points: np.ndarray, evidence: np.ndarray, rounds: int = 2
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Faces whose landmarks show a roll of `upright_from_deg` or more, once more from the training crop of
        those landmarks levelled by their own eye line; a second round where that turned the crop by over 5
        degrees. A detector's keypoints underestimate large rolls (YuNet's gave -8 to -40 degrees on 300-W
        faces rolled by -45), and its box places a rolled face only roughly."""
        pair = self.scheme.norm_points
        if self.upright_from_deg is None or pair is None:
            return points, evidence
        points, evidence = points.copy(), evidence.copy()
        seen = np.array([crop.points_roll(p, pair) for p in points])
        redo = np.flatnonzero(np.abs(seen) >= np.radians(self.upright_from_deg))
        for _ in range(rounds):
            if not len(redo):
                break
            boxes = np.stack([crop.rolled_landmark_box(points[i], seen[i], self.preprocess.gt_box_scale)
                              for i in redo])
            used = seen[redo]
            points[redo], evidence[redo] = self._predict(img, boxes, used)
            seen[redo] = [crop.points_roll(points[i], pair) for i in redo]
            redo = redo[np.abs(seen[redo] - used) > np.radians(5.0)]
        return points, evidence

    @staticmethod
    def _given_rolls(rolls: Sequence[float], n: int) -> np.ndarray:
        r = np.asarray(rolls, np.float64).reshape(-1)
        if len(r) != n or not np.isfinite(r).all():
            raise ZooError(f"rolls must be one finite angle (radians) per box: {n} box(es), got {len(r)} value(s)")
        return r

    def _detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The detector's boxes and scores, and the roll to level each first crop by (its eye keypoints'
        slope where it gives keypoints, zoo.detectors.detect_rolls)."""
        from .detectors import detect_rolls

        return detect_rolls(self.detector, img, retry_rolled=self.upright_from_deg is not None)

    def predict_crops(self, image: np.ndarray, crop_boxes: np.ndarray, evidence: bool = False,
                      rolls: np.ndarray | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Landmarks (K,N,2) in image pixels for explicit crop boxes (evaluation: ground-truth crops); with
        `evidence`, also each point's raw evidence (K,N,F) from the decode, which Confidence calibrates. `rolls`
        (K,) radians: each box is in a frame rolled by that angle (crop.rolled_landmark_box)."""
        self.timings = dict.fromkeys(STAGES, 0.0)
        points, raw = self._predict(load_image(image), np.asarray(crop_boxes, np.float32).reshape(-1, 4), rolls)
        return (points, raw) if evidence else points

    @property
    def confidence(self) -> Confidence | None:
        """The weight's calibration of Face.scores; None when absent or fitted for another weight file."""
        c = self.entry.confidence
        return c if c is not None and c.sha256 == self.entry.hub.sha256 else None

    def _predict(self, img: np.ndarray, crop_boxes: np.ndarray, rolls: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        p = self.preprocess
        rolls = np.zeros(len(crop_boxes)) if rolls is None else np.asarray(rolls, np.float64)
        out, evidence = [], []
        for i in range(0, len(crop_boxes), self.batch_size):     # batched over faces
            cb, rb = crop_boxes[i:i + self.batch_size], rolls[i:i + self.batch_size]
            with self._stage("preprocess"):
                # numpy throughout: a torch op here would wake torch's threads against onnxruntime's
                x = crop.normalise_crops(crop.crop_faces(img, cb, p.input_size, rb), p.mean, p.std)
            with self._stage("model"):
                raw = self.forward(x)
            with self._stage("decode"):
                norm, ev = self.model.decode(raw)
                out.append(crop.to_image_coords(norm, cb, rb))
                evidence.append(ev)
        return np.concatenate(out, axis=0), np.concatenate(evidence, axis=0)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray | torch.Tensor, ...]:
        """Raw network outputs for a normalised (K,3,S,S) float32 batch, on the chosen backend."""
        if self.runner is not None:
            return tuple(self.runner(x))
        with torch.inference_mode():
            return tuple(self.model(torch.from_numpy(x)))

    def track(self, frames: Any, **options: Any) -> Iterator[list[Face]]:
        """Faces per frame of a video (path), webcam (index) or iterable of images, followed from frame to
        frame and smoothed (zoo.track: options are TrackConfig's fields). Frame by frame: zoo.track.Tracker."""
        from .track import track

        return track(self, frames, **options)

    def export_onnx(self, path: str | Path, check: bool = True) -> dict[str, Any]:
        from .onnx_backend import export_onnx

        return export_onnx(self.model, Path(path), self.preprocess.input_size, check=check)

    def config(self) -> dict[str, Any]:
        """The folder config.json: the registry entry minus its Hub location and metrics."""
        e = self.entry.to_dict()
        keep = ("name", "kind", "arch", "arch_args", "dataset", "scheme", "preprocess", "confidence", "license",
                "notes")
        return {**{k: e[k] for k in keep}, "params": sum(p.numel() for p in self.model.parameters())}

    def save_pretrained(self, folder: str | Path, metrics: dict[str, Any] | None = None, body: str = "",
                        fp16: bool = False) -> Path:
        """A Hub-ready folder (model.safetensors, config.json, README.md card) that `zoo.push` publishes."""
        from .hub import render_card, save_folder

        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return save_folder(Path(folder), state, self.config(), render_card(self.config(), metrics, body), fp16=fp16)

    def push_to_hub(self, repo_id: str, token: str | None = None, tag: str | None = None, **card: Any) -> str:
        """save_pretrained into a temporary folder, then push it; returns the commit sha."""
        import tempfile

        from .hub import push

        with tempfile.TemporaryDirectory() as tmp:
            return push(self.save_pretrained(Path(tmp) / self.name, **card), repo_id, token=token, tag=tag)

    def __repr__(self) -> str:
        return f"Landmarker({self.name!r}, backend={self.backend!r}, scheme={self.scheme.name})"
