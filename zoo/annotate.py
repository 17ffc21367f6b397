"""Bulk annotation: `python -m zoo annotate INPUT --model NAME --out DIR` for a folder of images or a video.

Writes, under DIR:
- `json/<path of the image under INPUT>.json` (a video: `json/frame_000123.json`): the image's size and its
  faces (box, score, detector, landmarks in pixels), one file per image or frame, written atomically;
- `annotations.csv`: one row per face of every JSON (rebuilt from the JSONs at the end, so a resumed run
  gives the whole table);
- `images/...png` with the faces drawn (`images=True`);
- `report.json`: what was done, skipped (already annotated) and failed, with each failure's reason, and with
  `review_below=T` the faces whose mean landmark confidence (Face.scores) is under T, for a person to check.
A file that cannot be read is listed in the report and the run goes on. Running again skips every image
whose JSON is already there (resume after an interruption); a video's frames are decoded again but only the
missing ones are annotated.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from .images import IMAGE_SUFFIXES, image_files
from .registry import ZooError

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass
class AnnotateReport:
    input: str
    model: str
    backend: str
    detector: str | None
    done: int = 0
    skipped: int = 0
    faces: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("input", "model", "backend", "detector", "done", "skipped", "faces",
                                              "failed", "review")}


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(doc) + "\n")
    os.replace(tmp, path)          # never a half-written JSON that a resumed run would take as done


def _is_done(path: Path) -> bool:
    try:
        return "faces" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def _doc(name: str, image: np.ndarray, faces: list, lm: Any) -> dict[str, Any]:
    return {"image": name, "width": int(image.shape[1]), "height": int(image.shape[0]), "model": lm.name,
            "scheme": lm.scheme.name, "faces": [f.to_dict() for f in faces],
            "timings_ms": {k: round(v, 2) for k, v in lm.timings.items()}}


def _save_drawing(path: Path, image: np.ndarray, faces: list, lm: Any) -> None:
    from PIL import Image

    from .draw import draw_faces

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(draw_faces(image, faces, lm.scheme)).save(path)


def _json_docs(out: Path) -> Iterator[dict[str, Any]]:
    for p in sorted((out / "json").rglob("*.json")):
        try:
            yield json.loads(p.read_text())
        except (OSError, ValueError):
            continue


def _mean_confidence(face: dict[str, Any]) -> float | None:
    return round(float(np.mean(face["scores"])), 3) if face.get("scores") else None


def write_csv(out: Path) -> int:
    """annotations.csv from every JSON under out/json; returns the number of face rows. `confidence` is the
    face's mean landmark confidence (blank where the model has no calibration)."""
    rows = 0
    with open(out / "annotations.csv", "w", newline="") as f:
        w = csv.writer(f)
        header_done = False
        for doc in _json_docs(out):
            for k, face in enumerate(doc.get("faces", [])):
                pts = face["landmarks"]
                if not header_done:
                    w.writerow(["image", "face", "x0", "y0", "x1", "y1", "score", "detector", "confidence",
                                *(f"{c}{i}" for i in range(len(pts)) for c in "xy")])
                    header_done = True
                conf = _mean_confidence(face)
                w.writerow([doc["image"], k, *face["box"], face["score"], face["detector"] or "",
                            "" if conf is None else conf, *(v for xy in pts for v in xy)])
                rows += 1
        if not header_done:
            w.writerow(["image", "face", "x0", "y0", "x1", "y1", "score", "detector", "confidence"])
    return rows


def faces_to_review(out: Path, below: float) -> list[dict[str, Any]]:
    """Every annotated face whose mean landmark confidence is under `below`, least confident first."""
    low = [{"image": doc["image"], "face": k, "confidence": c}
           for doc in _json_docs(out) for k, face in enumerate(doc.get("faces", []))
           if (c := _mean_confidence(face)) is not None and c < below]
    return sorted(low, key=lambda r: r["confidence"])


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    from .track import frames

    yield from frames(path)


def annotate(input: str | Path, landmarker: Any, out: str | Path, images: bool = False, track: bool = True,
             progress: bool = True, review_below: float | None = None) -> AnnotateReport:
    """Annotate a folder of images (recursively) or a video file with `landmarker`; see the module doc."""
    src, out = Path(input), Path(out)
    if not src.exists():
        raise ZooError(f"{src}: no such file or folder")
    out.mkdir(parents=True, exist_ok=True)
    det = getattr(landmarker, "_detector", None)
    report = AnnotateReport(str(src), landmarker.name, landmarker.backend,
                            det if isinstance(det, str) or det is None else getattr(det, "name", None))
    if src.is_dir():
        _annotate_folder(src, landmarker, out, images, progress, report)
    elif src.suffix.lower() in IMAGE_SUFFIXES:
        _annotate_files([src], src.parent, landmarker, out, images, progress, report)
    else:
        _annotate_video(src, landmarker, out, images, track, progress, report)
    rows = write_csv(out)
    if review_below is not None:
        if getattr(landmarker, "confidence", None) is None:
            log.warning("%s has no landmark confidence calibrated: nothing can be flagged for review", landmarker.name)
        report.review = faces_to_review(out, review_below)
    (out / "report.json").write_text(json.dumps({**report.to_dict(), "csv_rows": rows}, indent=1) + "\n")
    log.info("annotated %d, skipped %d (done before), failed %d; %s", report.done, report.skipped,
             len(report.failed), out)
    return report


def _annotate_folder(src: Path, lm: Any, out: Path, images: bool, progress: bool, report: AnnotateReport) -> None:
    files = image_files(src)
    if not files:
        raise ZooError(f"{src}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    _annotate_files(files, src, lm, out, images, progress, report)


def _annotate_files(files: list[Path], root: Path, lm: Any, out: Path, images: bool, progress: bool,
                    report: AnnotateReport) -> None:
    from .images import load_image

    for path in tqdm(files, desc="annotating", unit="image", disable=not progress):
        rel = path.relative_to(root)
        dst = out / "json" / rel.with_name(rel.name + ".json")
        if _is_done(dst):
            report.skipped += 1
            continue
        try:
            image = load_image(path)
            faces = lm(image)
        except (ZooError, OSError, ValueError) as e:     # unreadable or odd input: listed, never fatal
            report.failed.append({"file": str(rel), "error": str(e)})
            log.warning("%s: %s", path, e)
            continue
        _write_json(dst, _doc(str(rel), image, faces, lm))
        if images:
            _save_drawing(out / "images" / rel.with_suffix(".png"), image, faces, lm)
        report.done += 1
        report.faces += len(faces)


def _annotate_video(src: Path, lm: Any, out: Path, images: bool, track: bool, progress: bool,
                    report: AnnotateReport) -> None:
    import cv2

    from .track import Tracker, video_fps

    cap = cv2.VideoCapture(str(src))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    tracker = Tracker(lm, fps=video_fps(src) or 30.0) if track else None
    try:
        stream = _video_frames(src)
        for i, frame in enumerate(tqdm(stream, desc="annotating", unit="frame", total=total or None,
                                       disable=not progress)):
            name = f"frame_{i:06d}"
            dst = out / "json" / f"{name}.json"
            if _is_done(dst):
                report.skipped += 1
                if tracker is not None:
                    tracker.reset()            # the next frame to annotate starts afresh from a detection
                continue
            faces = tracker.update(frame) if tracker is not None else lm(frame)
            _write_json(dst, {**_doc(f"{src.name}#{i}", frame, faces, lm), "frame": i})
            if images:
                _save_drawing(out / "images" / f"{name}.png", frame, faces, lm)
            report.done += 1
            report.faces += len(faces)
    except ZooError as e:
        report.failed.append({"file": src.name, "error": str(e)})
        log.warning("%s: %s", src, e)
