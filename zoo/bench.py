"""Latency benchmarks of zoo entries and peers (zoo.peers): median ms per stage and per face, warm-up first;
table and JSON."""
from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cpu import configure, cpu_name, simd_summary
from .landmarker import STAGES
from .registry import ZooError

log = logging.getLogger(__name__)


def bench_image(path: Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The image to time on and its face box: the given file, a real 300-W test face beside the checkout
    when there is one, else a synthetic 640x480 image (model stages only: no face for the detector)."""
    from .images import load_image

    if path is not None:
        return load_image(path), None
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "300w" / "lfpw" / "testset"
    files = sorted(shared.glob("*.jpg"))[:1]
    if files:
        return load_image(files[0]), None
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), np.array([[200, 120, 440, 360]], np.float32)


def bench_one(lm, image: np.ndarray, box: np.ndarray | None, faces: int, repeats: int, warmup: int) -> dict[str, Any]:
    if box is None:
        found = lm(image, max_faces=1)
        box = np.array([found[0].box]) if found else np.array([[0.25 * image.shape[1], 0.2 * image.shape[0],
                                                                 0.75 * image.shape[1], 0.8 * image.shape[0]]])
    boxes = np.repeat(box[:1], faces, axis=0)
    runs: dict[str, list[float]] = {s: [] for s in (*STAGES, "total")}
    for i in range(warmup + repeats):
        lm(image)                                    # detection on the real image
        det = lm.timings["detect"]
        lm(image, boxes=boxes)                       # model stages on exactly `faces` faces
        if i >= warmup:
            runs["detect"].append(det)
            for s in STAGES[1:]:
                runs[s].append(lm.timings[s])
            runs["total"].append(det + sum(lm.timings[s] for s in STAGES[1:]))
    med = {s: round(statistics.median(v), 2) for s, v in runs.items()}
    med["per_face"] = round((med["preprocess"] + med["model"] + med["decode"]) / faces, 2)
    med["fps"] = round(1000.0 / med["total"], 1) if med["total"] else None
    return med


def load_peer_for_bench(name: str, threads: int | None, detector: str, path: Path | None = None
                        ) -> tuple[Any, str | None]:
    """(peer, None), or (None, why it cannot run here): a missing dependency or file skips the peer."""
    from .peers import load_peer, peer_unavailable

    why = peer_unavailable(name) if path is None else None
    if why:
        return None, why
    kwargs = {"detector": detector, "threads": threads} if name == "pfld_ghostone" else \
        {"threads": threads} if name.startswith("mediapipe") else {}
    try:
        return load_peer(name, path, **kwargs), None
    except ZooError as e:
        return None, str(e)


def time_frames(update, clip: list[np.ndarray], warmup: int) -> dict[str, Any]:
    ms = []
    for i, frame in enumerate(clip):
        t0 = time.perf_counter()
        update(frame)
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1000)
    mean = statistics.fmean(ms)
    return {"total": round(mean, 2), "median_frame": round(statistics.median(ms), 2), "fps": round(1000 / mean, 1),
            "frames": len(ms)}


def bench_track(lm, image: np.ndarray, n_frames: int = 60, warmup: int = 5) -> dict[str, Any]:
    """Tracking speed (zoo.track.Tracker, smoothing on; for MediaPipe its own video mode) on a synthetic clip of
    the bench image's face moving along a smooth path: mean ms per frame over `n_frames` after `warmup`,
    detector runs included."""
    from .track import Tracker, moving_face_clip

    found = lm(image, max_faces=1)
    if not found:
        return {"error": "no face found in the bench image to make a clip of"}
    clip, _ = moving_face_clip(image, found[0].landmarks, n_frames + warmup, seed=0)
    if hasattr(lm, "video"):                   # a peer with its own video mode (MediaPipe's static_image_mode=False)
        video = lm.video(max_faces=1)
        return {**time_frames(video.update, clip, warmup), "detector_runs": video.detections}
    tracker = Tracker(lm, max_faces=1)
    return {**time_frames(tracker.update, clip, warmup), "detector_runs": tracker.stats["detections"]}


def photo_list(sources: list[Path], limit: int | None = None) -> list[Path]:
    """Image files from folders (recursively) and single files, in order, at most `limit`."""
    from .images import IMAGE_SUFFIXES, image_files

    files: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            files += image_files(src)
        elif src.is_file() and src.suffix.lower() in IMAGE_SUFFIXES:
            files.append(src)
        else:
            raise ZooError(f"--photos {src}: not a folder or an image file")
    if not files:
        raise ZooError(f"--photos {[str(s) for s in sources]}: no image files there")
    return files[:limit]


def fit_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    import cv2

    s = (max_side or 0) / max(image.shape[:2])
    if not max_side or s >= 1:
        return image
    return cv2.resize(image, (round(image.shape[1] * s), round(image.shape[0] * s)), interpolation=cv2.INTER_AREA)


def bench_photos(rows: list[tuple[dict[str, Any], Any]], photos: list[Path], max_side: int | None = 512,
                 warmup: int = 3) -> None:
    """End to end per photo, as a user calls it (`lm(image, max_faces=1)`: detection, crop, model, decode):
    every pipeline on each photo in turn, so all meet the same machine noise. Adds to each row's dict the
    median wall-clock ms per photo, the median of each stage, and on how many photos it found a face."""
    from tqdm import tqdm

    from .images import load_image

    runs = [{s: [] for s in (*STAGES, "total")} for _ in rows]
    found = [0] * len(rows)
    images = [fit_side(load_image(p), max_side) for p in photos]
    for i, img in enumerate(tqdm([images[0]] * warmup + images, desc="bench photos", unit="photo", leave=False)):
        for k, (_, lm) in enumerate(rows):
            t0 = time.perf_counter()
            faces = lm(img, max_faces=1)
            ms = (time.perf_counter() - t0) * 1000
            if i < warmup:
                continue
            found[k] += bool(faces)
            runs[k]["total"].append(ms)
            for s in STAGES:
                runs[k][s].append(lm.timings.get(s, 0.0))
    for (row, _), r, n in zip(rows, runs, found):
        row.update({s: round(statistics.median(v), 2) for s, v in r.items()})
        row.update(mode="photos", photos=len(images), found=n, fps=round(1000.0 / row["total"], 1))


def add_ratios(result: dict[str, Any], reference: str | None = None) -> None:
    """Each row's total and per-face time as a multiple of the reference row's ("NAME" or "NAME:BACKEND",
    image mode; default: the first row)."""
    rows = [r for r in result["results"] if r.get("mode", "image") in ("image", "photos")]
    if not rows:
        return
    name, _, backend = (reference or "").partition(":")
    ref = next((r for r in rows if r["name"] == name and (not backend or r["backend"] == backend)), None) \
        if reference else rows[0]
    if ref is None:
        raise ZooError(f"--reference {reference}: no such row (rows: {[r['name'] + ':' + r['backend'] for r in rows]})")
    result["reference"] = f"{ref['name']}:{ref['backend']}:{ref['detector']}"
    for r in result["results"]:
        for key, col in (("total", "total_vs_ref"), ("per_face", "face_vs_ref")):
            if r.get(key) and ref.get(key) and r.get("mode") != "track":
                r[col] = round(r[key] / ref[key], 2)
    tracks = [r for r in result["results"] if r.get("mode") == "track" and r.get("total")]
    ref_track = next((r for r in tracks if r["name"] == ref["name"]), None)
    for r in tracks if ref_track else []:                    # tracking against the reference's own video mode
        r["total_vs_ref"] = round(r["total"] / ref_track["total"], 2)


def run_bench(names: list[str], backends: list[str], threads: int | None, faces: int = 1, repeats: int = 20,
              warmup: int = 3, image: Path | None = None, detector: str = "auto",
              peer_paths: dict[str, Path] | None = None, detectors: list[str] | None = None, track: bool = False,
              track_frames: int = 60, reference: str | None = None, photos: list[Path] | None = None,
              max_side: int | None = 512, limit: int | None = None) -> dict[str, Any]:
    """Median timings of zoo entries (once per backend and detector in `detectors`, default [`detector`]) and
    peers (zoo.peers names, their own runtime; dlib finds faces with its HOG detector, PFLD with `detector`).
    On one image (`faces` boxes, `repeats` runs), or with `photos`, end to end per photo over those photos
    (bench_photos). With `track`, also each pipeline's tracking speed (bench_track). Peers that cannot run here
    are listed under "skipped" with the reason. Ratios to the `reference` row (add_ratios)."""
    import zoo

    from .peers import is_peer

    if threads:
        configure(threads)
    img, box = bench_image(image)
    files = photo_list(photos, limit) if photos else None
    out: dict[str, Any] = {"hardware": f"{cpu_name()} ({simd_summary()}), {os.cpu_count()} cores, "
                                       f"torch threads {torch.get_num_threads()}", "image": list(img.shape), "faces": faces,
                           "repeats": repeats, "detector": detector, "results": [], "skipped": []}
    if files:
        out.update(photos=[str(p) for p in photos], max_side=max_side, n_photos=len(files))
    rows: list[tuple[dict[str, Any], Any]] = []
    for name in names:
        if is_peer(name):
            peer, why = load_peer_for_bench(name, threads, detector, (peer_paths or {}).get(name))
            if peer is None:
                log.warning("bench: skipping peer %s: %s", name, why)
                out["skipped"].append({"name": name, "reason": why})
                continue
            found = peer(img, max_faces=1)
            rows.append(({"name": name, "backend": peer.backend, "detector": found[0].detector if found else None},
                         peer))
            continue
        for backend in backends:
            for det in detectors or [detector]:
                lm = zoo.load(name, backend=backend, detector=det, threads=threads)   # torch's budget for onnx too
                # lm.backend: "onnx" where the int8 graph was refused or could not be made (logged)
                rows.append(({"name": name, "backend": lm.backend, "detector": getattr(lm.detector, "name", det)}, lm))
    if files:
        bench_photos(rows, files, max_side, warmup)
    else:
        for row, lm in rows:
            row.update(bench_one(lm, img, box, faces, repeats, warmup))
    tracked: set[str] = set()
    for row, lm in rows:
        out["results"].append(row)
        log.info("%s", row)
        if track and row["name"] not in tracked:            # one tracking row per entry: its first pipeline
            tracked.add(row["name"])
            out["results"].append({**{k: row[k] for k in ("name", "backend", "detector")}, "mode": "track",
                                   **bench_track(lm, img, track_frames)})
    add_ratios(out, reference)
    return out


def format_table(result: dict[str, Any]) -> str:
    cols = ["name", "backend", "detector", "mode", *STAGES, "total", "per_face", "found", "fps", "total_vs_ref",
            "face_vs_ref"]
    result = {**result, "results": [{"mode": "image", **r} for r in result["results"]]}
    cols = [c for c in cols if c in ("name", "mode") or any(c in r for r in result["results"])]
    rows = [[str(r.get(c, result["detector"] if c == "detector" else "")) for c in cols] for r in result["results"]]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"
    skipped = [f"skipped {s['name']}: {s['reason']}" for s in result.get("skipped", [])]
    table = [line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)] if rows else []
    if "n_photos" in result:
        how = (f"photos rows: median wall-clock ms per photo over {result['n_photos']} photos (<= {result['max_side']} "
               f"px, one face each: lm(image, max_faces=1)), stages as medians; found = photos with a face")
    else:
        how = (f"median ms over {result['repeats']} runs; {result['faces']} face(s); detect = the row's detector on "
               f"the whole image")
    return "\n".join([*table, f"({how}; {result['hardware']}; track rows: mean ms per frame of a synthetic clip, "
                                f"detector runs included (MediaPipe: its own video mode); *_vs_ref: multiples of "
                                f"{result.get('reference', 'the first row')})", *skipped])


def save_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=1))
