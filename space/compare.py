"""Run several landmark models on the same photos: one face detection shared by all models (so they see the
same face boxes), per-stage timings, NME against uploaded ground truth, and pairwise disagreement.

No Gradio here: the app turns ZooError into gr.Error and `Report.warnings` into gr.Warning.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from zoo import metrics
from zoo.bench import cpu_name
from zoo.hub import local_weights
from zoo.images import load_image
from zoo.landmarker import STAGES, Face
from zoo.pts import read_pts
from zoo.registry import ZooError
from zoo.schemes import Scheme, get_scheme

from . import render
from .models import CACHE, DETECTORS, DetectorCache, ModelCache, count_params, scheme_name

log = logging.getLogger(__name__)

MAX_MODELS = 4
MAX_IMAGES = int(os.environ.get("SPACE_MAX_IMAGES", "8"))
MAX_FACES = int(os.environ.get("SPACE_MAX_FACES", "16"))
MAX_SIDE = int(os.environ.get("SPACE_MAX_SIDE", "2048"))      # larger photos are processed downscaled
TIMING_KEYS = (*STAGES, "total")

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


def check_ground_truth_points(images: list[InputImage], models: Sequence[str]) -> None:
    """ZooError when a ground-truth file's point count matches none of the chosen models' schemes."""
    counts = {get_scheme(scheme_name(m)).num_points: scheme_name(m) for m in models}
    for im in images:
        if not im.gt:
            continue
        for f in im.gt:
            if len(f) not in counts:
                by_count = {n: [m for m in models if get_scheme(scheme_name(m)).num_points == n] for n in counts}
                have = ", ".join(f"{n} points ({', '.join(by_count[n])})" for n in sorted(counts))
                raise ZooError(f"{im.gt_name}: ground truth has {len(f)} points, but the chosen models predict "
                               f"{have}; upload a .pts or JSON with that many points, or pick models of that scheme")


# ------------------------------------------------------------------------------------------- running
@dataclass
class ModelRun:
    faces: list[Face]
    timings: dict[str, float]


@dataclass
class ImageResult:
    inp: InputImage
    boxes: np.ndarray
    scores: np.ndarray
    detect_ms: float
    runs: dict[str, ModelRun] = field(default_factory=dict)
    matches: list[int | None] = field(default_factory=list)     # per GT face: index of the detected face


@dataclass
class Report:
    models: list[str]
    detector: str
    backend: str
    whole_image: bool
    results: list[ImageResult]
    hardware: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    load_ms: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ tables
    def timing_rows(self) -> list[dict[str, Any]]:
        """Per model: mean ms per stage over the photos where it ran, and FPS = 1000 / total."""
        rows = []
        for m in self.models:
            runs = [r.runs[m] for r in self.results if m in r.runs and r.runs[m].faces]
            if not runs:
                continue
            mean = {k: float(np.mean([run.timings.get(k, 0.0) for run in runs])) for k in TIMING_KEYS}
            rows.append({"model": m, "backend": _backend_of(m, self.backend), "photos": len(runs),
                         "faces": int(sum(len(run.faces) for run in runs)),
                         **{f"{k}_ms": round(v, 2) for k, v in mean.items()},
                         "fps": round(1000.0 / mean["total"], 2) if mean["total"] > 0 else None})
        return rows

    def accuracy_rows(self) -> list[dict[str, Any]]:
        """NME (percent of the scheme's normaliser) per photo with ground truth, per model of its scheme."""
        rows = []
        for r in self.results:
            if not r.inp.gt:
                continue
            for gi, gt in enumerate(r.inp.gt):
                k = r.matches[gi] if gi < len(r.matches) else None
                for m in self.models:
                    scheme = get_scheme(scheme_name(m))
                    if scheme.num_points != len(gt) or m not in r.runs:
                        continue
                    row = {"photo": r.inp.name, "gt_face": gi, "model": m, "scheme": scheme.name,
                           "normaliser": scheme.norm_desc, "nme_pct": None, "matched_face": k}
                    if k is not None:
                        row["nme_pct"] = round(100.0 * nme(r.runs[m].faces[k].landmarks, gt, scheme), 3)
                    rows.append(row)
        return rows

    def disagreement_rows(self) -> list[dict[str, Any]]:
        """Mean point distance between two models' predictions on the same faces, as a percent of the
        scheme's normaliser (mean of both models' normalisers); only models of the same scheme."""
        rows = []
        for a, b in combinations(self.models, 2):
            sa, sb = scheme_name(a), scheme_name(b)
            if sa != sb:
                continue
            scheme = get_scheme(sa)
            vals = []
            for r in self.results:
                if a in r.runs and b in r.runs:
                    for fa, fb in zip(r.runs[a].faces, r.runs[b].faces):
                        vals.append(disagreement(fa, fb, scheme))
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                rows.append({"model_a": a, "model_b": b, "scheme": scheme.name, "faces": len(vals),
                             "disagreement_pct": round(100.0 * float(np.mean(vals)), 3),
                             "normaliser": scheme.norm_desc})
        return rows

    # ------------------------------------------------------------------ export
    def to_json(self) -> dict[str, Any]:
        images = []
        for r in self.results:
            inv = 1.0 / r.inp.scale

            def face_dict(f: Face) -> dict[str, Any]:
                return Face(f.box * inv, f.landmarks * inv, f.score).to_dict()

            images.append({
                "name": r.inp.name, "width": r.inp.original_size[0], "height": r.inp.original_size[1],
                "processed_scale": round(r.inp.scale, 6), "detect_ms": round(r.detect_ms, 3),
                "boxes": [[round(float(v) * inv, 2) for v in b] for b in r.boxes],
                "ground_truth": r.inp.gt_name,
                "results": {m: {"scheme": scheme_name(m), "faces": [face_dict(f) for f in run.faces],
                                "timings_ms": {k: round(run.timings.get(k, 0.0), 3) for k in TIMING_KEYS}}
                            for m, run in r.runs.items()},
            })
        return {"format": "facezoo-space/1", "models": self.models, "detector": self.detector,
                "backend": self.backend, "whole_image": self.whole_image, "hardware": self.hardware,
                "hardware_line": hardware_line(self.hardware), "images": images, "timings": self.timing_rows(),
                "accuracy": self.accuracy_rows(), "disagreement": self.disagreement_rows(),
                "load_ms": {k: round(v, 1) for k, v in self.load_ms.items()}, "warnings": self.warnings,
                "coordinates": "0-based pixels of the uploaded photo; boxes x0 y0 x1 y1"}

    # ------------------------------------------------------------------ pictures
    def gallery(self) -> list[tuple[np.ndarray, str]]:
        """One annotated picture per (photo, model), model order within each photo."""
        out = []
        for r in self.results:
            for m in self.models:
                run = r.runs.get(m)
                faces = run.faces if run else []
                img = render.annotate(r.inp.image, faces, get_scheme(scheme_name(m)))
                ms = f" · {run.timings['total']:.0f} ms" if run and faces else ""
                out.append((img, f"{m} · {r.inp.name} · {len(faces)} face(s){ms}"))
        return out

    def error_gallery(self) -> list[tuple[np.ndarray, str]]:
        """Ground truth (green) vs prediction (red) per photo with ground truth and model of its scheme."""
        out = []
        acc = self.accuracy_rows()
        for r in self.results:
            if not r.inp.gt:
                continue
            for m in self.models:
                scheme = get_scheme(scheme_name(m))
                run = r.runs.get(m)
                if run is None:
                    continue
                pairs = [(run.faces[k].landmarks, gt) for gt, k in zip(r.inp.gt, r.matches)
                         if k is not None and len(gt) == scheme.num_points]
                if not pairs:
                    continue
                img, sc = render.fit_width(r.inp.image, render.DISPLAY_WIDTH)
                for pred, gt in pairs:
                    img = render.draw_errors(img, pred * sc, gt * sc, scheme)
                nmes = [row["nme_pct"] for row in acc
                        if row["photo"] == r.inp.name and row["model"] == m and row["nme_pct"] is not None]
                cap = f"{m} vs ground truth · {r.inp.name}" + (f" · NME {np.mean(nmes):.2f}%" if nmes else "")
                out.append((img, cap))
        return out

    def composites(self) -> list[tuple[str, np.ndarray]]:
        """Per photo, the models side by side (what the PNG download holds)."""
        out = []
        for r in self.results:
            panels = []
            for m in self.models:
                run = r.runs.get(m)
                panels.append((m, render.annotate(r.inp.image, run.faces if run else [], get_scheme(scheme_name(m)),
                                                  width=480)))
            out.append((r.inp.name, render.side_by_side(panels)))
        return out


def _backend_of(model: str, backend: str) -> str:
    from .models import is_peer

    return "dlib" if is_peer(model) else backend


def nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, box: np.ndarray | None = None) -> float:
    """Normalised mean error of one face (a fraction), by the evaluation's own rule."""
    return float(metrics.nme(np.asarray(pred)[None], np.asarray(gt)[None], scheme,
                           None if box is None else np.asarray(box, np.float64).reshape(1, 4))[0])


def disagreement(fa: Face, fb: Face, scheme: Scheme) -> float:
    """Mean point distance between two predictions of one face / the mean of their normalisers."""
    a, b = np.asarray(fa.landmarks, np.float64), np.asarray(fb.landmarks, np.float64)
    norm = 0.5 * (float(scheme.norm_distance(a, np.asarray(fa.box, np.float64)))
                  + float(scheme.norm_distance(b, np.asarray(fb.box, np.float64))))
    d = float(np.linalg.norm(a - b, axis=-1).mean())
    return d / norm if norm > 0 else float("nan")


def match_faces(gt_faces: Sequence[np.ndarray], boxes: np.ndarray) -> list[int | None]:
    """For each ground-truth face, the detected box whose centre is nearest its landmark-box centre, if that
    centre lies within the box (widened by a quarter); None when no box is near it."""
    out: list[int | None] = []
    if len(boxes) == 0:
        return [None] * len(gt_faces)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    for gt in gt_faces:
        c = (gt.min(0) + gt.max(0)) / 2
        d = np.linalg.norm(centres - c, axis=1)
        k = int(np.argmin(d))
        x0, y0, x1, y1 = boxes[k]
        mw, mh = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
        inside = x0 - mw <= c[0] <= x1 + mw and y0 - mh <= c[1] <= y1 + mh
        out.append(k if inside else None)
    return out


def detect(inp: InputImage, detector: str, whole_image: bool, detectors: DetectorCache,
           max_faces: int = MAX_FACES) -> tuple[np.ndarray, np.ndarray, float]:
    h, w = inp.image.shape[:2]
    if whole_image:
        return np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32), 0.0
    boxes, scores, ms = detectors.detect(detector, inp.image)
    return boxes[:max_faces], scores[:max_faces], ms


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


def run_comparison(images: list[InputImage], models: Sequence[str], detector: str = "haar",
                   backend: str = "torch", whole_image: bool = False, cache: ModelCache | None = None,
                   detectors: DetectorCache | None = None, progress: Progress | None = None) -> Report:
    """Detect once per photo, run every model on the same boxes, and collect timings and accuracy."""
    cache = cache or CACHE
    detectors = detectors or DETECTORS
    progress = progress or (lambda f, d: None)
    images = images[:MAX_IMAGES]
    report = Report(list(models), detector, backend, whole_image, [], hardware())
    check_ground_truth_points(images, models)
    steps = len(models) * (1 + len(images)) + len(images)
    done = 0
    for m in models:                                # load (and warm up) before anything is timed
        progress(done / steps, f"loading {m}")
        if cache.peek(m, backend) is None:
            report.load_ms[m] = cache.get(m, backend).load_ms
        done += 1
    for inp in images:
        progress(done / steps, f"detecting faces in {inp.name}")
        boxes, scores, det_ms = detect(inp, detector, whole_image, detectors)
        done += 1
        res = ImageResult(inp, boxes, scores, det_ms)
        report.results.append(res)
        if len(boxes) == 0:
            report.warnings.append(f"no face found in {inp.name} by the {detector} detector: try a larger, frontal "
                                   "face, another detector, or 'no detection' for a photo cropped to one face")
            done += len(models)
            continue
        for m in models:
            progress(done / steps, f"{m} on {inp.name}")
            with cache.use(m, backend) as lm:
                faces = lm(inp.image, boxes=boxes)
                t = dict(lm.timings)
            t["detect"] = det_ms
            t["total"] = sum(t.get(k, 0.0) for k in STAGES)
            for f, s in zip(faces, scores):
                f.score = float(s)
            res.runs[m] = ModelRun(faces, t)
            done += 1
        if inp.gt:
            res.matches = match_faces(inp.gt, boxes)
            for gi, k in enumerate(res.matches):
                if k is None:
                    report.warnings.append(f"{inp.gt_name}: ground-truth face {gi} is not near any detected face; "
                                           "no NME for it")
    progress(1.0, "done")
    return report


def model_info(names: Sequence[str], cache: ModelCache | None = None) -> dict[str, dict[str, Any]]:
    """Card extras: parameter count (when loaded) and the local weights file."""
    from zoo import registry

    from .models import is_peer

    cache = cache or CACHE
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        if is_peer(n):
            continue
        slot = cache.peek(n, "torch") or cache.peek(n, "onnx")
        try:
            weights = local_weights(registry.get(n))
        except ZooError:
            weights = None
        out[n] = {"params": count_params(slot.obj) if slot else None, "weights": weights}
    return out


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    return _SAFE.sub("_", Path(name).stem)[:60] or "image"
