"""Run several landmark models on the same photos: one face detection shared by all models (so they see the
same face boxes, cropped by that detector's rule, as `lm(photo)` would), several timed repeats per model
(median and spread, the model's own time apart from the shared detection), NME against uploaded ground
truth, pairwise disagreement, and the pictures and tables the app shows.

No Gradio here: the app turns ZooError into gr.Error and `Report.warnings` into visible warnings.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from zoo import crop, metrics
from zoo.cpu import cpu_name
from zoo.hub import local_weights
from zoo.images import load_image
from zoo.landmarker import STAGES, Face
from zoo.pts import read_pts
from zoo.registry import ZooError
from zoo.schemes import Scheme, convert_points, get_scheme

from . import render
from .models import (CACHE, DETECTORS, DetectorCache, ModelCache, count_params, is_peer, scheme_name,
                     uses_own_detector)

log = logging.getLogger(__name__)

MAX_MODELS = 4
MAX_IMAGES = int(os.environ.get("SPACE_MAX_IMAGES", "8"))
MAX_FACES = int(os.environ.get("SPACE_MAX_FACES", "16"))
MAX_SIDE = int(os.environ.get("SPACE_MAX_SIDE", "2048"))      # larger photos are processed downscaled
REPEATS = int(os.environ.get("SPACE_REPEATS", "3"))            # timed runs per model and photo
MAX_REPEATS = 10
TIMING_KEYS = (*STAGES, "total")
LANDMARK_STAGES = ("preprocess", "model", "decode")           # the model's own time, without detection

Progress = Callable[[float, str], None]


# ------------------------------------------------------------------------------------------- hardware
def hardware() -> dict[str, Any]:
    """Where the timings come from: CPU model, cores this process may use, torch/onnxruntime threads."""
    import torch

    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    info: dict[str, Any] = {"cpu": cpu_name(), "cpus": cpus, "torch": torch.__version__.split("+")[0],
                            "torch_threads": torch.get_num_threads(), "platform": platform.platform(terse=True)}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def hardware_line(info: dict[str, Any] | None = None) -> str:
    h = info or hardware()
    ort = f", onnxruntime {h['onnxruntime']}" if "onnxruntime" in h else ""
    return (f"{h['cpu']} · {h['cpus']} CPU core(s) available · torch {h['torch']} on CPU, "
            f"{h['torch_threads']} thread(s){ort}")


# ------------------------------------------------------------------------------------------- inputs
@dataclass
class InputImage:
    name: str                                   # what the visitor called it (upload's file name)
    image: np.ndarray                           # RGB uint8, possibly downscaled to MAX_SIDE
    scale: float = 1.0                          # work pixels per original pixel
    original_size: tuple[int, int] = (0, 0)     # (width, height) as uploaded
    gt: list[np.ndarray] | None = None          # ground-truth faces (N, 2), work pixels
    gt_name: str | None = None


def _clean(msg: str, path: Path, display: str) -> str:
    """A ZooError message about a server-side temp path, re-labelled with the visitor's file name."""
    return msg.replace(str(path), display)


def read_image(path: str | Path, display: str | None = None) -> InputImage:
    """An uploaded photo as an InputImage, or ZooError naming the visitor's file and what is wrong with it."""
    path = Path(path)
    display = display or path.name
    try:
        img = load_image(path)
    except ZooError as e:
        raise ZooError(_clean(str(e), path, display)) from None
    except MemoryError:
        raise ZooError(f"{display}: image too large to decode") from None
    h, w = img.shape[:2]
    s = min(1.0, MAX_SIDE / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    return InputImage(display, img, s, (w, h))


def from_array(image: np.ndarray, name: str = "image") -> InputImage:
    img = load_image(image)
    return InputImage(name, img, 1.0, (img.shape[1], img.shape[0]))


def _as_faces(data: Any, display: str) -> list[np.ndarray]:
    """JSON ground truth: [[x, y], ...] (one face), [[[x, y], ...], ...] (several), or {"landmarks": ...}."""
    if isinstance(data, dict):
        for key in ("landmarks", "faces", "points", "keypoints"):
            if key in data:
                return _as_faces(data[key], display)
        raise ZooError(f"{display}: JSON object without a 'landmarks' list; give [[x, y], ...] pixel coordinates")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [f for d in data for f in _as_faces(d, display)]
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError):
        raise ZooError(f"{display}: ground truth must be a list of [x, y] pairs (0-based pixels)") from None
    if arr.ndim == 2 and arr.shape[1] == 3 and arr.shape[0] > 0:       # x, y, visibility triples
        arr = arr[:, :2]
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] > 0:
        faces = [arr]
    elif arr.ndim == 3 and arr.shape[2] == 2 and arr.shape[1] > 0:
        faces = list(arr)
    else:
        raise ZooError(f"{display}: ground truth must be a list of [x, y] pairs (0-based pixels); "
                       f"got an array of shape {arr.shape}")
    for f in faces:
        if not np.isfinite(f).all():
            raise ZooError(f"{display}: ground truth holds NaN or infinite coordinates")
    return [f.astype(np.float32) for f in faces]


def read_ground_truth(path: str | Path, display: str | None = None) -> list[np.ndarray]:
    """Faces of landmarks (each (N, 2), 0-based pixels) from an iBUG .pts or a JSON file."""
    path = Path(path)
    display = display or path.name
    if path.stat().st_size > 5_000_000:
        raise ZooError(f"{display}: ground-truth file is over 5 MB; expected a .pts or a JSON list of [x, y]")
    suffix = Path(display).suffix.lower() or path.suffix.lower()
    if suffix == ".pts":
        try:
            return [read_pts(path).astype(np.float32)]
        except ValueError as e:
            raise ZooError(_clean(str(e), path, display)) from None
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ZooError(f"{display}: not valid JSON ({e})") from None
        return _as_faces(data, display)
    raise ZooError(f"{display}: ground truth must be an iBUG .pts file or a .json list of [x, y] points")


def pair_ground_truth(images: list[InputImage], gts: Sequence[tuple[str, list[np.ndarray]]]) -> list[str]:
    """Attach ground truth to images: by file stem, or the only file to the only photo. Returns warnings."""
    warnings: list[str] = []
    if not gts:
        return warnings
    if len(images) == 1 and len(gts) == 1:
        pairs = [(images[0], gts[0])]
    else:
        stems = {Path(n).stem: (n, f) for n, f in gts}
        pairs = [(im, stems[Path(im.name).stem]) for im in images if Path(im.name).stem in stems]
        used = {Path(im.name).stem for im, _ in pairs}
        for n, _ in gts:
            if Path(n).stem not in used:
                warnings.append(f"{n}: no uploaded photo named {Path(n).stem}.*; ground truth ignored")
    for im, (n, faces) in pairs:
        im.gt = [f * np.float32(im.scale) for f in faces]
        im.gt_name = n
    return warnings


def check_ground_truth_points(images: list[InputImage], schemes: dict[str, str]) -> None:
    """ZooError when a ground-truth file's point count fits none of the chosen models (a 98-point model is
    scored on 68-point truth through zoo.schemes.convert_points)."""
    counts: dict[int, list[str]] = {}
    for m, sname in schemes.items():
        for target in {sname, "68"} if _convertible(sname, "68") else {sname}:
            counts.setdefault(get_scheme(target).num_points, []).append(m)
    for im in images:
        for f in im.gt or []:
            if len(f) not in counts:
                have = ", ".join(f"{n} points ({', '.join(counts[n])})" for n in sorted(counts))
                raise ZooError(f"{im.gt_name}: ground truth has {len(f)} points, but the chosen models predict "
                               f"{have}; upload a .pts or JSON with that many points, or pick models of that scheme")


def _convertible(src: str, dst: str) -> bool:
    if src == dst:
        return True
    try:
        convert_points(np.zeros((get_scheme(src).num_points, 2)), src, dst)
        return True
    except ZooError:
        return False


# ------------------------------------------------------------------------------------------- activity
class Activity:
    """Which comparisons run at the same time, so a result can say that its timings shared the CPU."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, int] = {}            # token -> most other comparisons seen running at once
        self._next = 0

    @contextmanager
    def track(self) -> Iterator[Callable[[], int]]:
        """Yields a function giving the most other comparisons that overlapped this one so far."""
        with self._lock:
            token, self._next = self._next, self._next + 1
            others = len(self._active)
            for t in self._active:
                self._active[t] = max(self._active[t], others)
            self._active[token] = others
        try:
            yield lambda: self._active.get(token, 0)
        finally:
            with self._lock:
                self._active.pop(token, None)

    def running(self) -> int:
        with self._lock:
            return len(self._active)


ACTIVITY = Activity()


# ------------------------------------------------------------------------------------------- running
@dataclass
class ModelRun:
    faces: list[Face]
    timings: dict[str, float]                   # median over the timed repeats, per stage (ms)
    landmark_ms: list[float]                    # per repeat: preprocess + model + decode (the model's own time)
    own_detector: bool = False


@dataclass
class ImageResult:
    inp: InputImage
    boxes: np.ndarray
    scores: np.ndarray
    detect_ms: float
    runs: dict[str, ModelRun] = field(default_factory=dict)
    found: int = 0                              # faces the detector found before max_faces / threshold


@dataclass
class Report:
    models: list[str]
    detector: str
    backend: str
    whole_image: bool
    results: list[ImageResult]
    hardware: dict[str, Any]
    schemes: dict[str, str] = field(default_factory=dict)
    repeats: int = REPEATS
    score_threshold: float = 0.0
    max_faces: int = MAX_FACES
    warnings: list[str] = field(default_factory=list)
    load_ms: dict[str, float] = field(default_factory=dict)
    overlapping: int = 0                         # most other comparisons running at the same time
    load_avg: float | None = None                # the machine's 1-minute load average when it finished
    info: dict[str, dict[str, Any]] = field(default_factory=dict)   # params, weights size, benchmark

    def color(self, m: str) -> tuple[int, int, int]:
        return render.model_color(self.models.index(m))

    def scheme(self, m: str) -> Scheme:
        return get_scheme(self.schemes[m])

    # ------------------------------------------------------------------ matching faces
    def matches(self, r: ImageResult, m: str) -> list[int | None]:
        """Per ground-truth face of photo r: the index of model m's face on it (by landmark boxes), or None."""
        run = r.runs.get(m)
        if run is None or not run.faces or not r.inp.gt:
            return [None] * len(r.inp.gt or [])
        boxes = np.stack([np.concatenate([f.landmarks.min(0), f.landmarks.max(0)]) for f in run.faces])
        return [crop.match_face(boxes, gt) for gt in r.inp.gt]

    def points_as(self, m: str, pts: np.ndarray, n: int) -> np.ndarray | None:
        """Model m's points in the n-point scheme (98 -> 68 when asked), or None when there is no map."""
        src = self.schemes[m]
        if get_scheme(src).num_points == n:
            return pts
        target = next((s for s in ("68", "98") if get_scheme(s).num_points == n), None)
        return convert_points(pts, src, target) if target and _convertible(src, target) else None

    # ------------------------------------------------------------------ tables
    def timing_rows(self) -> list[dict[str, Any]]:
        """Per model: median ms per stage over photos and repeats, the model's own time (median, fastest,
        slowest timed repeat), the detection time apart, and FPS."""
        rows = []
        for m in self.models:
            runs = [r.runs[m] for r in self.results if m in r.runs and r.runs[m].faces]
            if not runs:
                continue
            med = {k: float(np.median([run.timings.get(k, 0.0) for run in runs])) for k in TIMING_KEYS}
            own = [v for run in runs for v in run.landmark_ms]
            model_ms = float(np.median(own))
            rows.append({"model": m, "backend": _backend_of(m, self.backend), "photos": len(runs),
                         "faces": int(sum(len(run.faces) for run in runs)), "repeats": self.repeats,
                         "detector": "own" if runs[0].own_detector else ("none" if self.whole_image else self.detector),
                         **{f"{k}_ms": round(v, 2) for k, v in med.items()},
                         "landmark_ms": round(model_ms, 2), "landmark_ms_min": round(min(own), 2),
                         "landmark_ms_max": round(max(own), 2),
                         "landmark_ms_per_face": round(model_ms * len(runs) / max(1, sum(len(r.faces) for r in runs)), 2),
                         "fps": round(1000.0 / med["total"], 2) if med["total"] > 0 else None,
                         "model_fps": round(1000.0 / model_ms, 1) if model_ms > 0 else None})
        return rows

    def accuracy_rows(self) -> list[dict[str, Any]]:
        """NME (percent of the scheme's normaliser) per photo with ground truth and model; a 98-point model is
        scored on 68-point truth through the scheme's point map."""
        rows = []
        for r in self.results:
            if not r.inp.gt:
                continue
            for m in self.models:
                if m not in r.runs:
                    continue
                for gi, (gt, k) in enumerate(zip(r.inp.gt, self.matches(r, m))):
                    gscheme = get_scheme(len(gt))
                    row = {"photo": r.inp.name, "gt_face": gi, "model": m, "scheme": self.schemes[m],
                           "scored_as": gscheme.name, "normaliser": gscheme.norm_desc, "nme_pct": None,
                           "matched_face": k}
                    if k is not None:
                        pred = self.points_as(m, r.runs[m].faces[k].landmarks, len(gt))
                        if pred is None:
                            continue
                        row["nme_pct"] = round(100.0 * nme(pred, gt, gscheme), 3)
                    rows.append(row)
        return rows

    def disagreement_rows(self) -> list[dict[str, Any]]:
        """Mean point distance between two models on the same faces (paired by landmark boxes), in % of the
        scheme's normaliser; 98-point models are compared on their 68-point subset."""
        rows = []
        for a, b in combinations(self.models, 2):
            n = min(self.scheme(a).num_points, self.scheme(b).num_points)
            scheme = get_scheme(n)
            vals = []
            for r in self.results:
                if a not in r.runs or b not in r.runs or not r.runs[b].faces:
                    continue
                fb_boxes = np.stack([np.concatenate([f.landmarks.min(0), f.landmarks.max(0)]) for f in r.runs[b].faces])
                for fa in r.runs[a].faces:
                    k = crop.match_face(fb_boxes, fa.landmarks)
                    pa = self.points_as(a, fa.landmarks, n)
                    pb = self.points_as(b, r.runs[b].faces[k].landmarks, n) if k is not None else None
                    if pa is not None and pb is not None:
                        vals.append(disagreement(pa, pb, scheme))
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                rows.append({"model_a": a, "model_b": b, "scheme": scheme.name, "faces": len(vals),
                             "disagreement_pct": round(100.0 * float(np.mean(vals)), 3),
                             "normaliser": scheme.norm_desc})
        return rows

    def leaderboard_rows(self) -> list[dict[str, Any]]:
        """One row per model: size, benchmark NME (registry), NME on the visitor's photos, speed."""
        timing = {r["model"]: r for r in self.timing_rows()}
        acc: dict[str, list[float]] = {}
        for row in self.accuracy_rows():
            if row["nme_pct"] is not None:
                acc.setdefault(row["model"], []).append(row["nme_pct"])
        rows = []
        for m in self.models:
            info, t = self.info.get(m, {}), timing.get(m, {})
            rows.append({"model": m, "color": render.hex_color(self.color(m)), "points": self.scheme(m).num_points,
                         "params_m": round(info["params"] / 1e6, 2) if info.get("params") else None,
                         "size_mb": round(info["bytes"] / 2**20, 1) if info.get("bytes") else None,
                         "benchmark_nme_pct": info.get("benchmark_nme_pct"), "benchmark": info.get("benchmark"),
                         "benchmarks": info.get("benchmarks", {}),
                         "your_nme_pct": round(float(np.mean(acc[m])), 2) if m in acc else None,
                         "model_ms": t.get("landmark_ms"), "model_ms_min": t.get("landmark_ms_min"),
                         "model_ms_max": t.get("landmark_ms_max"), "detect_ms": t.get("detect_ms"),
                         "total_ms": t.get("total_ms"), "fps": t.get("fps"), "detector": t.get("detector"),
                         "faces": t.get("faces", 0)})
        return rows

    def chart_rows(self) -> list[dict[str, Any]]:
        """The timing chart's bars: each model's own time, then the shared detection (grey)."""
        rows = [{"label": r["model"], "ms": r["landmark_ms"], "lo": r["landmark_ms_min"], "hi": r["landmark_ms_max"],
                 "color": self.color(r["model"])} for r in self.timing_rows()]
        for r in self.timing_rows():           # a peer's own detector gets a bar of its own
            if r["detector"] == "own":
                own = [res.runs[r["model"]].timings["detect"] for res in self.results if r["model"] in res.runs]
                rows.append({"label": f"{r['model']}'s own detection", "ms": float(np.median(own)), "lo": min(own),
                             "hi": max(own), "color": (190, 190, 190)})
        det = [r.detect_ms for r in self.results if len(r.boxes)]
        if det and not self.whole_image:
            rows.append({"label": f"{self.detector} detection (shared)", "ms": float(np.median(det)),
                         "lo": min(det), "hi": max(det), "color": (150, 150, 150)})
        return rows

    def timing_note(self) -> str:
        note = (f"median of {self.repeats} timed run(s) per model and photo after a warm-up; whiskers: fastest "
                "to slowest.")
        if self.overlapping:
            note += (f" ⚠ {self.overlapping} other comparison(s) ran here at the same time and shared the CPU: "
                     "slower than alone.")
        cpus = int(self.hardware.get("cpus") or 1)
        if self.load_avg is not None and self.load_avg > cpus:
            note += (f" ⚠ The machine is busy (load average {self.load_avg:.1f} on {cpus} core(s)): timings are "
                     "slower and noisier than on an idle machine.")
        return note

    # ------------------------------------------------------------------ export
    def to_json(self) -> dict[str, Any]:
        images = []
        for r in self.results:
            inv = 1.0 / r.inp.scale

            def face_dict(f: Face) -> dict[str, Any]:
                return Face(f.box * inv, f.landmarks * inv, f.score, f.detector).to_dict()

            images.append({
                "name": r.inp.name, "width": r.inp.original_size[0], "height": r.inp.original_size[1],
                "processed_scale": round(r.inp.scale, 6), "detect_ms": round(r.detect_ms, 3),
                "faces_found": r.found,
                "boxes": [[round(float(v) * inv, 2) for v in b] for b in r.boxes],
                "ground_truth": r.inp.gt_name,
                "results": {m: {"scheme": self.schemes[m], "own_detector": run.own_detector,
                                "faces": [face_dict(f) for f in run.faces],
                                "timings_ms": {k: round(run.timings.get(k, 0.0), 3) for k in TIMING_KEYS},
                                "landmark_ms_runs": [round(v, 3) for v in run.landmark_ms]}
                            for m, run in r.runs.items()},
            })
        return {"format": "facezoo-space/2", "models": self.models, "detector": self.detector,
                "backend": self.backend, "whole_image": self.whole_image, "score_threshold": self.score_threshold,
                "max_faces": self.max_faces, "repeats": self.repeats,
                "colors": {m: render.hex_color(self.color(m)) for m in self.models},
                "hardware": self.hardware, "hardware_line": hardware_line(self.hardware),
                "concurrent_requests": self.overlapping, "load_average": self.load_avg,
                "timing_note": self.timing_note(),
                "images": images, "leaderboard": self.leaderboard_rows(), "timings": self.timing_rows(),
                "accuracy": self.accuracy_rows(), "disagreement": self.disagreement_rows(),
                "load_ms": {k: round(v, 1) for k, v in self.load_ms.items()}, "warnings": self.warnings,
                "coordinates": "0-based pixels of the uploaded photo; boxes x0 y0 x1 y1"}

    # ------------------------------------------------------------------ pictures
    def layers(self, r: ImageResult) -> list[render.Layer]:
        out = []
        for m in self.models:
            run = r.runs.get(m)
            note = f"{np.median(run.landmark_ms):.1f} ms" if run and run.faces else "no face"
            out.append(render.Layer(m, run.faces if run else [], self.scheme(m), self.color(m), note))
        return out

    def panels(self, width: int = 900) -> list[tuple[str, np.ndarray]]:
        """Per photo: legend + every model overlaid in its colour + a zoom on each face."""
        return [(r.inp.name, render.comparison_panel(r.inp.image, self.layers(r), None if self.whole_image else r.boxes,
                                                     r.inp.name, width)) for r in self.results]

    def grid(self, cell: int = 360) -> np.ndarray:
        """Photos down, models across."""
        return render.grid([(r.inp.name, r.inp.image, self.layers(r)) for r in self.results], cell)

    def chart(self) -> np.ndarray | None:
        rows = self.chart_rows()
        return render.timing_chart(rows) if rows else None

    def error_gallery(self) -> list[tuple[np.ndarray, str]]:
        """Ground truth (green) vs prediction (red) per photo with ground truth and model."""
        out = []
        for r in self.results:
            if not r.inp.gt:
                continue
            for m in self.models:
                run = r.runs.get(m)
                if run is None:
                    continue
                pairs = [(self.points_as(m, run.faces[k].landmarks, len(gt)), gt)
                         for gt, k in zip(r.inp.gt, self.matches(r, m)) if k is not None]
                pairs = [(p, g) for p, g in pairs if p is not None]
                if not pairs:
                    continue
                img, sc = render.fit_width(r.inp.image, render.DISPLAY_WIDTH)
                for pred, gt in pairs:
                    img = render.draw_errors(img, pred * sc, gt * sc, get_scheme(len(gt)))
                nmes = [row["nme_pct"] for row in self.accuracy_rows()
                        if row["photo"] == r.inp.name and row["model"] == m and row["nme_pct"] is not None]
                cap = f"{m} vs ground truth · {r.inp.name}" + (f" · NME {np.mean(nmes):.2f}%" if nmes else "")
                out.append((img, cap))
        return out


def _backend_of(model: str, backend: str) -> str:
    return "peer" if is_peer(model) else backend


def nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, box: np.ndarray | None = None) -> float:
    """Normalised mean error of one face (a fraction), by the evaluation's own rule."""
    return float(metrics.nme(np.asarray(pred)[None], np.asarray(gt)[None], scheme,
                             None if box is None else np.asarray(box, np.float64).reshape(1, 4))[0])


def disagreement(a: np.ndarray, b: np.ndarray, scheme: Scheme) -> float:
    """Mean point distance between two predictions of one face / the mean of their normalisers."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norm = 0.5 * (float(scheme.norm_distance(a)) + float(scheme.norm_distance(b)))
    d = float(np.linalg.norm(a - b, axis=-1).mean())
    return d / norm if norm > 0 else float("nan")


def detect(inp: InputImage, detector: str, whole_image: bool, detectors: DetectorCache,
           max_faces: int = MAX_FACES, score_threshold: float = 0.0
           ) -> tuple[np.ndarray, np.ndarray, float, int, np.ndarray]:
    """(boxes, scores, ms, faces found before the threshold and max_faces, rolls) of the shared detector."""
    h, w = inp.image.shape[:2]
    if whole_image:
        return np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32), 0.0, 1, np.zeros(1)
    boxes, scores, ms, rolls = detectors.detect(detector, inp.image)
    keep = scores >= score_threshold
    found = len(boxes)
    return boxes[keep][:max_faces], scores[keep][:max_faces], ms, found, rolls[keep][:max_faces]


def validate_choice(models: Sequence[str], available: Sequence[str]) -> list[str]:
    models = list(dict.fromkeys(m for m in (models or []) if m))
    if not models:
        raise ZooError("pick at least one model (2–4 to compare)")
    if len(models) > MAX_MODELS:
        raise ZooError(f"pick at most {MAX_MODELS} models at a time (got {len(models)})")
    unknown = [m for m in models if m not in available]
    if unknown:
        raise ZooError(f"not available here: {', '.join(unknown)}; available: {', '.join(available) or 'none'}")
    return models


def too_many_photos(names: Sequence[str]) -> str | None:
    """The warning when more than MAX_IMAGES photos are given (only the first MAX_IMAGES are compared)."""
    if len(names) <= MAX_IMAGES:
        return None
    left = list(names[MAX_IMAGES:])
    return (f"{len(names)} photos given: only the first {MAX_IMAGES} were compared ({', '.join(left[:4])}"
            f"{' …' if len(left) > 4 else ''} left out)")


def _timed_runs(lm: Any, image: np.ndarray, repeats: int, **kwargs: Any) -> ModelRun:
    """Call a landmarker `repeats` times; the faces of the last call, the median per stage."""
    samples: list[dict[str, float]] = []
    faces: list[Face] = []
    for _ in range(repeats):
        faces = lm(image, **kwargs)
        samples.append(dict(lm.timings))
    med = {k: float(np.median([s.get(k, 0.0) for s in samples])) for k in STAGES}
    own = [sum(s.get(k, 0.0) for k in LANDMARK_STAGES) for s in samples]
    return ModelRun(faces, med, own)


def run_comparison(images: list[InputImage], models: Sequence[str], detector: str = "haar",
                   backend: str = "torch", whole_image: bool = False, cache: ModelCache | None = None,
                   detectors: DetectorCache | None = None, progress: Progress | None = None,
                   score_threshold: float = 0.0, max_faces: int = MAX_FACES, repeats: int = REPEATS,
                   warnings: Sequence[str] = ()) -> Report:
    """Detect once per photo, run every model on the same boxes (cropped by that detector's rule, as the
    library does), `repeats` timed times each, and collect timings and accuracy. Models with their own
    detector (the dlib peer) find their own faces. `warnings` are put first in the report's."""
    cache = cache or CACHE
    detectors = detectors or DETECTORS
    progress = progress or (lambda f, d: None)
    repeats = int(min(MAX_REPEATS, max(1, repeats)))
    max_faces = int(min(MAX_FACES, max(1, max_faces)))
    report = Report(list(models), detector, backend, whole_image, [], hardware(), repeats=repeats,
                    score_threshold=float(score_threshold), max_faces=max_faces, warnings=list(warnings))
    dropped = too_many_photos([im.name for im in images])
    if dropped:
        report.warnings.append(dropped)
        images = images[:MAX_IMAGES]
    steps = len(models) * (1 + len(images)) + len(images)
    done = 0
    with ACTIVITY.track() as overlapping:
        for m in models:                            # load (and warm up) before anything is timed
            progress(done / steps, f"loading {m}")
            if cache.peek(m, backend) is None:
                report.load_ms[m] = cache.get(m, backend).load_ms
            report.schemes[m] = scheme_name(m, cache)
            done += 1
        report.info = model_info(models, cache)
        check_ground_truth_points(images, report.schemes)
        for inp in images:
            progress(done / steps, f"detecting faces in {inp.name}")
            boxes, scores, det_ms, found, rolls = detect(inp, detector, whole_image, detectors, max_faces,
                                                         score_threshold)
            done += 1
            res = ImageResult(inp, boxes, scores, det_ms, found=found)
            report.results.append(res)
            if found > len(boxes):
                report.warnings.append(f"{inp.name}: {found} face(s) found, {len(boxes)} compared (score ≥ "
                                       f"{score_threshold:.2f}, at most {max_faces})")
            if len(boxes) == 0:
                report.warnings.append(f"no face found in {inp.name} by the {detector} detector: try a larger, "
                                       "frontal face, another detector, a lower score threshold, or 'no detection' "
                                       "for a photo cropped to one face")
            for m in models:
                own = uses_own_detector(m) and not whole_image
                if len(boxes) == 0 and not own:
                    done += 1
                    continue
                progress(done / steps, f"{m} on {inp.name}")
                with cache.use(m, backend) as lm:
                    if own:
                        run = _timed_runs(lm, inp.image, repeats, max_faces=max_faces)
                    else:
                        run = _timed_runs(lm, inp.image, repeats, boxes=boxes,
                                          box_rule=None if whole_image else detector, rolls=rolls)
                run.own_detector = own
                if not own:
                    run.timings["detect"] = det_ms
                    for f, s in zip(run.faces, scores):
                        f.score, f.detector = float(s), None if whole_image else detector
                run.timings["total"] = sum(run.timings.get(k, 0.0) for k in STAGES)
                res.runs[m] = run
                done += 1
            for m in models:
                for gi, k in enumerate(report.matches(res, m)):
                    if k is None and m in res.runs:
                        report.warnings.append(f"{inp.gt_name}: ground-truth face {gi} is not near any face "
                                               f"{m} found; no NME for it")
        report.overlapping = overlapping()
    try:
        report.load_avg = os.getloadavg()[0]
    except OSError:                              # not on every platform
        pass
    release_memory()
    progress(1.0, "done")
    return report


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc's malloc_trim): a comparison allocates and frees large
    image and tensor buffers from many worker threads, and without this the server's resident memory creeps
    up over hundreds of requests. A no-op where glibc is not the C library."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


def model_info(names: Sequence[str], cache: ModelCache | None = None) -> dict[str, dict[str, Any]]:
    """Per model: parameter count, weights file and its size, benchmark NME from the registry."""
    from zoo import registry

    cache = cache or CACHE
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        slot = cache.peek(n, "torch") or cache.peek(n, "onnx")
        obj = slot.obj if slot else None
        if is_peer(n):
            path = getattr(obj, "model_path", None)
            out[n] = {"params": getattr(getattr(obj, "entry", None), "params", None), "weights": path,
                      "bytes": Path(path).stat().st_size if path and Path(path).is_file() else None}
            continue
        try:
            entry = registry.get(n)
            weights = local_weights(entry)
        except ZooError:
            entry, weights = None, None
        info: dict[str, Any] = {"params": (entry.params if entry else None) or (count_params(obj) if obj else None),
                                "weights": weights,
                                "bytes": weights.stat().st_size if weights is not None and weights.is_file() else None}
        m = entry.metrics if entry else {}
        if m and "nme" in m:
            info["benchmark_nme_pct"] = round(100.0 * float(m["nme"]), 2)
            info["benchmark"] = f"{m.get('dataset', entry.dataset)} {m.get('split', 'test')}"
        out[n] = info
    for n in names:
        out[n]["benchmarks"] = benchmark_nme(n, out[n])
    return out


# The leaderboard's test sets, each its own column (NMEs of different sets are never ranked together): the stored
# results of `python -m train.leaderboard` (GT crops) under docs/results/, else the registry's own metric.
BENCHMARKS = {"300w_common": "300-W common NME %", "wflw_test": "WFLW test NME % (98 pts)"}
RESULTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "results"
_REGISTRY_BENCH = {("300w", "common"): "300w_common", ("wflw", "test"): "wflw_test"}


def benchmark_nme(name: str, info: dict[str, Any]) -> dict[str, float]:
    """BENCHMARKS column -> NME % of `name` on that set (GT crops), where measured."""
    out: dict[str, float] = {}
    for key, title in BENCHMARKS.items():
        path = RESULTS_DIR / f"{name}__{key}__gt.json"
        if path.is_file():
            try:
                out[title] = round(100.0 * float(json.loads(path.read_text())["nme"]), 2)
            except (OSError, ValueError, KeyError, TypeError):
                pass
    bench = info.get("benchmark", "").split()
    key = _REGISTRY_BENCH.get(tuple(bench)) if len(bench) == 2 else None
    if key and BENCHMARKS[key] not in out and info.get("benchmark_nme_pct") is not None:
        out[BENCHMARKS[key]] = info["benchmark_nme_pct"]
    return out


def cards_markdown(names: Sequence[str], info: dict[str, dict[str, Any]] | None = None,
                   cache: ModelCache | None = None) -> str:
    """The chosen models' cards: registry entries, and for peers what the loaded peer says of itself."""
    info = info or {}
    if not names:
        return "_Pick models to see their cards._"
    parts = []
    for n in names:
        if is_peer(n):
            from zoo.peers import PEERS

            slot = (cache or CACHE).peek(n, "peer")
            entry = slot.obj.entry if slot else None
            note = PEERS.get(n, "")
            parts.append(render.peer_card(n, entry, note) if entry else f"### {n} (peer)\n- {note}\n")
        else:
            parts.append(render.card_markdown(n, info.get(n, {}).get("params"), info.get(n, {}).get("weights")))
    return "\n".join(parts)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    return _SAFE.sub("_", Path(name).stem)[:60] or "image"
