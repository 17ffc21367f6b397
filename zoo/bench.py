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


def bench_track(lm, image: np.ndarray, n_frames: int = 60, warmup: int = 5) -> dict[str, Any]:
    """Tracking speed (zoo.track.Tracker, smoothing on) on a synthetic clip of the bench image's face moving
    along a smooth path: mean ms per frame over `n_frames` after `warmup`, detector runs included."""
    from .track import Tracker, moving_face_clip

    found = lm(image, max_faces=1)
    if not found:
        return {"error": "no face found in the bench image to make a clip of"}
    clip, _ = moving_face_clip(image, found[0].landmarks, n_frames + warmup, seed=0)
    tracker = Tracker(lm)
    ms = []
    for i, frame in enumerate(clip):
        t0 = time.perf_counter()
        tracker.update(frame)
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1000)
    mean = statistics.fmean(ms)
    return {"total": round(mean, 2), "median_frame": round(statistics.median(ms), 2), "fps": round(1000 / mean, 1),
            "frames": n_frames, "detector_runs": tracker.stats["detections"]}


def add_ratios(result: dict[str, Any], reference: str | None = None) -> None:
    """Each row's total and per-face time as a multiple of the reference row's ("NAME" or "NAME:BACKEND",
    image mode; default: the first row)."""
    rows = [r for r in result["results"] if r.get("mode", "image") == "image"]
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
            if r.get(key) and ref.get(key):
                r[col] = round(r[key] / ref[key], 2)


def run_bench(names: list[str], backends: list[str], threads: int | None, faces: int = 1, repeats: int = 20,
              warmup: int = 3, image: Path | None = None, detector: str = "auto",
              peer_paths: dict[str, Path] | None = None, detectors: list[str] | None = None, track: bool = False,
              track_frames: int = 60, reference: str | None = None) -> dict[str, Any]:
    """Median timings of zoo entries (once per backend and detector in `detectors`, default [`detector`]) and
    peers (zoo.peers names, their own runtime; dlib finds faces with its HOG detector, PFLD with `detector`);
    with `track`, also each entry's tracking speed (bench_track, first detector). Peers that cannot run here
    are listed under "skipped" with the reason. Ratios to the `reference` row (add_ratios)."""
    import zoo

    from .peers import is_peer

    if threads:
        configure(threads)
    img, box = bench_image(image)
    out: dict[str, Any] = {"hardware": f"{cpu_name()} ({simd_summary()}), {os.cpu_count()} cores, "
                                       f"torch threads {torch.get_num_threads()}", "image": list(img.shape), "faces": faces,
                           "repeats": repeats, "detector": detector, "results": [], "skipped": []}
    for name in names:
        if is_peer(name):
            peer, why = load_peer_for_bench(name, threads, detector, (peer_paths or {}).get(name))
            if peer is None:
                log.warning("bench: skipping peer %s: %s", name, why)
                out["skipped"].append({"name": name, "reason": why})
                continue
            res = bench_one(peer, img, box, faces, repeats, warmup)
            found = peer(img, max_faces=1)
            out["results"].append({"name": name, "backend": peer.backend,
                                   "detector": found[0].detector if found else None, **res})
            log.info("%s: %s", name, res)
            continue
        for backend in backends:
            tracked = False
            for det in detectors or [detector]:
                lm = zoo.load(name, backend=backend, detector=det, threads=threads)   # torch's budget for onnx too
                det_name = getattr(lm.detector, "name", det)
                res = bench_one(lm, img, box, faces, repeats, warmup)
                # lm.backend: "onnx" where the int8 graph was refused or could not be made (logged)
                out["results"].append({"name": name, "backend": lm.backend, "detector": det_name, **res})
                log.info("%s %s %s: %s", name, lm.backend, det_name, res)
                if track and not tracked:
                    res = bench_track(lm, img, track_frames)
                    out["results"].append({"name": name, "backend": lm.backend, "detector": det_name,
                                           "mode": "track", **res})
                    tracked = True
    add_ratios(out, reference)
    return out


def format_table(result: dict[str, Any]) -> str:
    cols = ["name", "backend", "detector", "mode", *STAGES, "total", "per_face", "fps", "total_vs_ref", "face_vs_ref"]
    result = {**result, "results": [{"mode": "image", **r} for r in result["results"]]}
    rows = [[str(r.get(c, result["detector"] if c == "detector" else "")) for c in cols] for r in result["results"]]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"
    skipped = [f"skipped {s['name']}: {s['reason']}" for s in result.get("skipped", [])]
    table = [line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)] if rows else []
    return "\n".join([*table, f"(median ms over {result['repeats']} runs; {result['hardware']}; "
                                f"{result['faces']} face(s); detect = the row's detector on the whole image; "
                                f"track rows: mean ms per frame of a synthetic clip, detector runs included; "
                                f"*_vs_ref: multiples of {result.get('reference', 'the first row')})",
                      *skipped])


def save_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=1))
