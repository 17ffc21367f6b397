"""Faces in video: follow each face from frame to frame, re-detect only when needed, smooth the landmarks.

    for faces in lm.track("clip.mp4"):          # a video file, a webcam index (0), or any iterable of images
        ...
    tracker = zoo.track.Tracker(lm)             # frame by frame (a live feed): faces = tracker.update(frame)

Each tracked face is cropped from its previous frame's landmarks by the crop the model was trained on (the
landmark box x gt_box_scale, taken from a similarity fit of the face's shape, see Tracker._follow), so
between detections the detector does not run at all. The detector runs on the first frame, whenever a face
is lost (its landmarks no longer fit a face shape, change size beyond what one frame allows, or leave the
image), every `redetect_every` frames (to find new faces and drop ones that left), and whenever no
face is tracked. Landmarks are smoothed with One Euro filters (Casiez et al., CHI 2012): low-pass filters
whose cut-off rises with speed, so a still face stops jittering and a moving one keeps up; the face's motion
and its shape are filtered apart (FaceFilter). Speeds are measured in face sizes per second, so the same
parameters serve small and large faces. The defaults come from
`python -m train.track_eval` (synthetic clips of 300-W photos moving along known paths).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from .crop import box_iou, gt_crop_box, points_roll, rolled_landmark_box
from .detectors import detect_rolls
from .images import load_image
from .face import Face
from .registry import ZooError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackConfig:
    """Tracker settings. The smoothing defaults come from `python -m train.track_eval`'s grid: least jitter
    (still + moving clips) at a lag of at most 1 frame. Its very best used a 0.1 Hz shape cut-off for 1% less
    jitter; 0.3 Hz is kept, as expressions (absent from those clips) would lag three times longer."""
    redetect_every: int = 30        # frames between detections while faces are tracked (0: only when needed)
    smooth: bool = True             # One Euro filter on the landmarks
    min_cutoff: float = 0.25        # Hz: the face's motion, cut-off at rest (lower: steadier, more lag)
    beta: float = 30.0              # its cut-off added per face size per second of speed (higher: less lag)
    shape_min_cutoff: float | None = 0.3   # Hz: the face's shape (expression), at rest; None: not smoothed
    shape_beta: float = 1.0         # its cut-off added per face size per second of shape change
    d_cutoff: float = 1.0           # Hz: cut-off of the speed estimates
    doubt_cutoff: float = 0.25      # a point the model doubts (Face.scores 0) gets this share of the shape cut-off
    fps: float = 30.0               # frame rate when frames carry no time (a video file gives its own)
    max_faces: int | None = None    # follow at most this many faces (the detector's most confident)
    max_residual: float = 0.1       # lost: landmarks further than this (RMS, in face radii) from a face shape
    max_scale_change: float = 1.3   # ... or a face that changed size by more than this factor in one frame
    match_iou: float = 0.3          # a detection within this IoU of a tracked face is that face


def _alpha(dt: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over (N, 2) points: x_hat = a x + (1 - a) x_hat_prev with a from a cut-off that grows
    with the (filtered) speed of each point. `scale` (e.g. the face size in pixels) makes beta unit-free."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 10.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ZooError(f"One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got "
                           f"{min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0, trust: np.ndarray | None = None) -> np.ndarray:
        """`trust` (N,) in (0, 1] scales each point's cut-off: a point trusted less is smoothed harder."""
        x = np.asarray(x, np.float64)
        if self.x is None or self.t is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.astype(np.float32)
        dt = t - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + _alpha(dt, self.d_cutoff) * (dx - self.dx)
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True) / max(scale, 1e-6)
        cutoff = self.min_cutoff + self.beta * speed
        if trust is not None:
            cutoff = cutoff * np.asarray(trust, np.float64).reshape(-1, 1)
        a = _alpha(dt, cutoff)
        self.x, self.t = self.x + a * (x - self.x), t
        return self.x.astype(np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares similarity (rotation, uniform scale, shift) taking points src (N,2) onto dst:
    (A (2,2), b (2,)) with dst ~ src @ A.T + b."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    n = max(float((s ** 2).sum()), 1e-12)
    a = float((s * d).sum()) / n
    c = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / n
    m = np.array([[a, -c], [c, a]])
    return m, md - ms @ m.T


def _scale(a: np.ndarray) -> float:
    return float(np.hypot(a[0, 0], a[1, 0]))


class FaceFilter:
    """Smooths one face's landmarks in two parts: its motion (the reference shape moved by the similarity that
    best fits the landmarks: 68 points averaged, so little noise drives its cut-off up) and its shape (what is
    left, in the face's own frame), each with a One Euro filter. Most frame-to-frame noise is in the shape
    part, which can be smoothed hard without making head motion lag; fast expressions lag by its cut-off."""

    def __init__(self, reference: np.ndarray, config: "TrackConfig"):
        c = config
        self.reference = np.asarray(reference, np.float64)
        self.size = _size(_landmark_box(self.reference))
        self.doubt_cutoff = c.doubt_cutoff
        self.motion = OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff)
        self.shape = OneEuroFilter(c.shape_min_cutoff, c.shape_beta, c.d_cutoff) \
            if c.shape_min_cutoff is not None else None

    def __call__(self, points: np.ndarray, t: float, scores: np.ndarray | None = None) -> np.ndarray:
        """Smoothed points; with `scores` (Face.scores), a point the model doubts follows its shape more slowly."""
        a, b = similarity(self.reference, points)
        rigid = self.reference @ a.T + b
        q = self.motion(rigid, t, _size(_landmark_box(rigid))).astype(np.float64)
        if self.shape is None:
            return (q + (points - rigid)).astype(np.float32)
        local = (points - rigid) @ np.linalg.inv(a).T           # the shape residual in the reference's frame
        trust = None if scores is None else self.doubt_cutoff + (1 - self.doubt_cutoff) * np.clip(scores, 0, 1)
        r = self.shape(local, t, self.size, trust).astype(np.float64)
        a_q, _ = similarity(self.reference, q)
        return (q + r @ a_q.T).astype(np.float32)


@dataclass
class _Track:
    landmarks: np.ndarray           # (N, 2) the model's latest landmarks (unsmoothed: the next crop comes from them)
    score: float
    detector: str | None
    config: "TrackConfig"
    scores: np.ndarray | None       # (N,) their confidence (Face.scores), None without a calibration
    reference: np.ndarray = None    # (N, 2) its landmarks when detected: the shape its crops are built from
    radius: float = 1.0             # RMS distance of the reference's points from their centre
    filter: FaceFilter = None

    def __post_init__(self) -> None:
        self.reference = np.asarray(self.landmarks, np.float64).copy()
        self.radius = max(float(np.sqrt(((self.reference - self.reference.mean(0)) ** 2).sum(-1).mean())), 1e-6)
        self.filter = FaceFilter(self.reference, self.config)


def _landmark_box(points: np.ndarray) -> np.ndarray:
    return gt_crop_box(points, 1.0)


def _size(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


class Tracker:
    """Frame-by-frame face tracking with one Landmarker: `update(frame) -> list[Face]`.

    Faces come out in track order; a tracked face's `box` is its landmark box and its `detector` is None
    (no detector box was made on that frame); on frames where a face was just detected it is the detector's
    box and name, as from `lm(frame)`. `stats` counts frames and detector runs."""

    def __init__(self, landmarker: Any, config: TrackConfig | None = None, **options: Any):
        if getattr(landmarker, "_detector", "x") is None:
            raise ZooError(f"{landmarker.name} was loaded with detector=None: tracking needs a detector to "
                           "find faces (e.g. zoo.load(name, detector='yunet'))")
        self.lm = landmarker
        self.config = replace(config or TrackConfig(), **options)
        self.tracks: list[_Track] = []
        self.frame_index = -1
        self.last_detect = -1
        self.stats = {"frames": 0, "detections": 0, "lost": 0}

    def reset(self) -> None:
        self.tracks, self.frame_index, self.last_detect = [], -1, -1

    def _follow(self, img: np.ndarray) -> None:
        """Landmarks for every track from its last landmarks' training crop; lost tracks are dropped.

        The crop is not the box of the raw landmarks: the noisiest points (the jaw) sit on that box's edges,
        and feeding their noise back into the next crop lets the box drift until the face is lost (measured:
        lost within 40 frames of a moving clip). It is the box of the track's reference shape (its landmarks
        when first detected) moved onto the last landmarks by a least-squares similarity, which all points
        steady. How far the new landmarks are from such a moved reference says whether they are a face."""
        if not self.tracks:
            return
        h, w = img.shape[:2]
        scale = float(self.lm.entry.preprocess.gt_box_scale)
        fits = [similarity(t.reference, t.landmarks) for t in self.tracks]
        shapes = [t.reference @ a.T + b for t, (a, b) in zip(self.tracks, fits)]
        rolls = np.array([self._roll(s) for s in shapes])
        crops = np.stack([rolled_landmark_box(s, r, scale) if r else gt_crop_box(s, scale)
                          for s, r in zip(shapes, rolls)])
        points, evidence = self.lm.predict_crops(img, crops, evidence=True, rolls=rolls)
        conf = getattr(self.lm, "confidence", None)
        point_scores = conf(evidence) if conf is not None else [None] * len(points)
        kept = []
        c = self.config
        for t, (a, _), p, ps in zip(self.tracks, fits, points, point_scores):
            a2, b2 = similarity(t.reference, p)
            s_old, s_new = _scale(a), _scale(a2)
            residual = float(np.sqrt(((t.reference @ a2.T + b2 - p) ** 2).sum(-1).mean())) / (s_new * t.radius)
            cx, cy = p.mean(0)
            ok = (np.isfinite(p).all() and residual <= c.max_residual
                  and 1 / c.max_scale_change <= s_new / max(s_old, 1e-9) <= c.max_scale_change
                  and 0 <= cx < w and 0 <= cy < h)
            if ok:
                t.landmarks, t.scores = p, ps
                kept.append(t)
        self.stats["lost"] += len(self.tracks) - len(kept)
        self.tracks = kept

    def _roll(self, shape: np.ndarray) -> float:
        """The roll to level a tracked face's crop by, as Landmarker levels a detected one (0 below its
        `upright_from_deg`)."""
        pair, limit = self.lm.scheme.norm_points, getattr(self.lm, "upright_from_deg", None)
        if pair is None or limit is None:
            return 0.0
        r = points_roll(shape, pair)
        return r if abs(r) >= np.radians(limit) else 0.0

    def _detect(self, img: np.ndarray) -> list[Face]:
        """Run the detector: detections matching a track confirm it (tracks no detection matches are dropped);
        the others start new tracks. Returns the faces of the new tracks (landmarks from detector crops)."""
        det = self.lm.detector
        boxes, scores, rolls = detect_rolls(det, img)
        self.stats["detections"] += 1
        self.last_detect = self.frame_index
        name = getattr(det, "name", None)
        if self.config.max_faces is not None:
            boxes, scores, rolls = (v[:self.config.max_faces] for v in (boxes, scores, rolls))
        if len(boxes):                           # slivers are no face (and no valid box)
            ok = np.all(boxes[:, 2:] - boxes[:, :2] >= 4, axis=1)
            boxes, scores, rolls = boxes[ok], scores[ok], rolls[ok]
        taken: set[int] = set()
        kept = []
        for t in self.tracks:
            if len(boxes) == 0:
                break
            iou = box_iou(boxes, _landmark_box(t.landmarks)[None])
            iou[list(taken)] = 0.0
            j = int(iou.argmax())
            if iou[j] >= self.config.match_iou:
                taken.add(j)
                t.score = float(scores[j])
                kept.append(t)
        self.tracks = kept
        fresh = [j for j in range(len(boxes)) if j not in taken]
        room = None if self.config.max_faces is None else max(self.config.max_faces - len(kept), 0)
        fresh = fresh[:room]
        if not fresh:
            return []
        faces = self.lm(img, boxes=boxes[fresh], box_rule=name, rolls=rolls[fresh]) if name else \
            self.lm(img, boxes=boxes[fresh], rolls=rolls[fresh])
        for f, j in zip(faces, fresh):
            f.score, f.detector = float(scores[j]), name
            self.tracks.append(_Track(f.landmarks, f.score, name, self.config, f.scores))
        return faces

    def update(self, frame: Any, color: str = "rgb", t: float | None = None) -> list[Face]:
        """The faces of the next frame (an image array, path or PIL image; `t`: its time in seconds,
        default frame index / fps)."""
        img = load_image(frame, color)
        self.frame_index += 1
        self.stats["frames"] += 1
        t = self.frame_index / self.config.fps if t is None else float(t)
        n_old = len(self.tracks)
        self._follow(img)
        every = self.config.redetect_every
        detected: list[Face] = []
        # a lost face is looked for again on this very frame
        if not self.tracks or len(self.tracks) < n_old or self.last_detect < 0 or \
                (every and self.frame_index - self.last_detect >= every):
            detected = self._detect(img)
        boxes = {id(tr): f.box for tr, f in zip(self.tracks[len(self.tracks) - len(detected):], detected)}
        out = []
        for tr in self.tracks:
            pts = tr.landmarks
            if self.config.smooth:
                pts = tr.filter(pts, t, tr.scores)
            box = boxes.get(id(tr))
            out.append(Face(box if box is not None else _landmark_box(pts), pts.astype(np.float32), tr.score,
                            tr.detector if box is not None else None, tr.scores))
        return out


def frames(source: Any, color: str = "rgb") -> Iterator[np.ndarray]:
    """RGB frames from a video file (path), a webcam (int index), or any iterable of images."""
    if isinstance(source, (str, Path)) or (isinstance(source, (int, np.integer)) and not isinstance(source, bool)):
        cap = cv2.VideoCapture(str(source) if isinstance(source, (str, Path)) else int(source))
        if not cap.isOpened():
            what = f"webcam {source}" if isinstance(source, (int, np.integer)) else f"{source}"
            raise ZooError(f"{what}: OpenCV cannot open it as a video" +
                           ("" if isinstance(source, (int, np.integer)) or Path(source).exists() else " (no such file)"))
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
    else:
        try:
            it = iter(source)
        except TypeError:
            raise ZooError(f"frames must be a video path, a webcam index or an iterable of images, not "
                           f"{type(source).__name__}") from None
        for item in it:
            yield load_image(item, color)


def video_fps(source: Any) -> float | None:
    """The frame rate a video file declares, or None."""
    if not isinstance(source, (str, Path)):
        return None
    cap = cv2.VideoCapture(str(source))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return float(fps) if fps and 1.0 <= fps <= 1000.0 else None


def track(landmarker: Any, source: Any, color: str = "rgb", **options: Any) -> Iterator[list[Face]]:
    """Faces per frame of `source` (see `frames`), followed and smoothed by a Tracker (TrackConfig options)."""
    fps = video_fps(source)
    if fps and "fps" not in options:
        options["fps"] = fps
    tracker = Tracker(landmarker, **options)
    for frame in frames(source, color):
        yield tracker.update(frame)


def moving_face_clip(image: np.ndarray, landmarks: np.ndarray, n_frames: int = 90, size: tuple[int, int] = (640, 480),
                     motion: float = 1.0, noise: float = 3.0, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """A synthetic video with known truth: `image` (RGB, its face's `landmarks`) moved, scaled and rotated
    along a smooth path (sines of a few seconds' period; `motion` scales the path, 0 = still) on a gray
    canvas, with Gaussian pixel noise of `noise` grey levels per frame. Returns (frames, truth (T, N, 2))."""
    rng = np.random.default_rng(seed)
    w, h = size
    lm = np.asarray(landmarks, np.float64)
    centre = (lm.min(0) + lm.max(0)) / 2
    face = float((lm.max(0) - lm.min(0)).max())
    base = 0.45 * min(w, h) / face                       # the face fills ~45% of the frame's shorter side
    frames, truth = [], []
    for i in range(n_frames):
        t = i / 30.0
        ang = motion * 10.0 * math.sin(2 * math.pi * t / 3.1)              # degrees
        sc = base * (1.0 + motion * 0.12 * math.sin(2 * math.pi * t / 2.3))
        dx = motion * 0.12 * w * math.sin(2 * math.pi * t / 2.7)
        dy = motion * 0.08 * h * math.sin(2 * math.pi * t / 1.9 + 1.0)
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), ang, sc)
        m[:, 2] += np.array([w / 2 + dx, h / 2 + dy]) - centre
        frame = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(128, 128, 128))
        if noise:
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        frames.append(frame)
        truth.append(lm @ m[:, :2].T + m[:, 2])
    return frames, np.asarray(truth, np.float32)
