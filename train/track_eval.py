"""python -m train.track_eval --data ../shared/data/300w [--model NAME] [--backend onnx-int8] [--json OUT]

Video tracking measured on clips whose truth is known per frame: 300-W common photos moved, scaled and
rotated along a smooth path with pixel noise (zoo.track.moving_face_clip), and the same photos held still
with the same noise. For each clip the tracker runs once without smoothing; the One Euro filter is then
applied to those raw landmarks for a grid of its parameters (motion: min_cutoff, beta; shape:
shape_min_cutoff, shape_beta), as the tracker's filter does online (the crops come from the raw landmarks
either way). Reported: jitter (frame-to-frame noise,
% of the inter-ocular distance, zoo.metrics.video_jitter), lag (frames, zoo.metrics.video_lag), NME, and
frames per second with tracking vs detecting every frame. The tracker's defaults are the grid point with the
least jitter whose lag on the moving clips stays at or below `--max-lag` frames.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

import zoo
from zoo.metrics import nme, video_jitter, video_lag
from zoo.track import FaceFilter, TrackConfig, Tracker, moving_face_clip

from .datasets import read_dataset

log = logging.getLogger("train.track_eval")
MIN_CUTOFFS = (0.25, 0.5, 1.0, 2.0, 4.0)              # the face's motion
BETAS = (1.0, 3.0, 10.0, 30.0)
SHAPE = ((None, 0.0), (0.1, 1.0), (0.3, 1.0), (1.0, 1.0), (1.0, 10.0))  # its shape: (shape_min_cutoff, shape_beta)


def nearest_face(faces: list, truth: np.ndarray) -> np.ndarray:
    """The landmarks of the face nearest the true face's centre (NaN when no face was found)."""
    if not faces:
        return np.full(truth.shape, np.nan, np.float32)
    c = truth.mean(0)
    return min(faces, key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - c))).landmarks


def run_clip(lm: Any, frames: list[np.ndarray], truth: np.ndarray, config: TrackConfig) -> dict[str, Any]:
    """Landmarks per frame from a Tracker with `config`, its per-frame ms and detector runs."""
    tracker = Tracker(lm, config)
    out, ms = [], []
    for frame, g in zip(frames, truth):
        t0 = time.perf_counter()
        faces = tracker.update(frame)
        ms.append((time.perf_counter() - t0) * 1000)
        out.append(nearest_face(faces, g))
    return {"landmarks": np.stack(out), "ms": ms, "detections": tracker.stats["detections"],
            "lost": tracker.stats["lost"]}


def smooth_offline(raw: np.ndarray, config: TrackConfig) -> np.ndarray:
    """The tracker's filter (zoo.track.FaceFilter, reference shape: the first frame's landmarks, as for a
    track that starts there) applied to recorded raw landmarks (T, N, 2) of one face."""
    f = FaceFilter(raw[0], config)
    return np.stack([f(p, i / config.fps) for i, p in enumerate(raw)])


def clip_metrics(pred: np.ndarray, truth: np.ndarray, scheme, moving: bool) -> dict[str, float]:
    return {"jitter_pct": round(100 * video_jitter(pred, truth, scheme), 4),
            "lag_frames": video_lag(pred, truth) if moving else None,
            "nme_pct": round(100 * float(np.nanmean(nme(pred, truth, scheme))), 4)}


def track_eval(data: Path, model: str = "pipnet_mbv2_300w", backend: str = "onnx-int8", detector: str = "auto",
               photos: int = 5, n_frames: int = 90, max_lag: float = 1.0, progress: bool = True) -> dict[str, Any]:
    lm = zoo.load(model, backend=backend, detector=detector)
    det_name = getattr(lm.detector, "name", str(detector))
    samples = read_dataset("300w", data, "common")
    picks = [samples[i] for i in np.linspace(0, len(samples) - 1, photos).round().astype(int)]
    base = TrackConfig()
    raw_cfg = replace(base, smooth=False)
    clips = []
    for k, s in enumerate(tqdm(picks, desc="clips", disable=not progress)):
        for moving in (True, False):
            frames, truth = moving_face_clip(s.load_image(), s.landmarks, n_frames, motion=1.0 if moving else 0.0,
                                             seed=k)
            run = run_clip(lm, frames, truth, raw_cfg)
            clips.append({"photo": s.name, "moving": moving, "truth": truth, **run})
    # Detecting in every frame, for the speed comparison (the first moving clip).
    first = next(c for c in clips if c["moving"])
    frames, _ = moving_face_clip(picks[0].load_image(), picks[0].landmarks, n_frames, seed=0)
    det_ms = []
    for frame in frames:
        t0 = time.perf_counter()
        lm(frame)
        det_ms.append((time.perf_counter() - t0) * 1000)

    def filtered(cfg: TrackConfig) -> dict[str, Any]:
        rows = [clip_metrics(smooth_offline(c["landmarks"], cfg), c["truth"], lm.scheme, c["moving"]) for c in clips]
        return {"min_cutoff": cfg.min_cutoff, "beta": cfg.beta, "shape_min_cutoff": cfg.shape_min_cutoff,
                "shape_beta": cfg.shape_beta, **summarise(rows, clips)}

    grid = [filtered(replace(base, min_cutoff=mc, beta=beta, shape_min_cutoff=smc, shape_beta=sb))
            for mc in MIN_CUTOFFS for beta in BETAS for smc, sb in SHAPE]
    raw = summarise([clip_metrics(c["landmarks"], c["truth"], lm.scheme, c["moving"]) for c in clips], clips)
    ok = [g for g in grid if g["lag_frames_moving"] <= max_lag]
    best = min(ok, key=lambda g: g["jitter_pct_still"] + g["jitter_pct_moving"]) if ok else None
    default = filtered(base)
    track_ms = [m for c in clips for m in c["ms"][1:]]          # after each clip's first (detecting) frame
    return {
        "model": model, "backend": lm.backend, "detector": det_name, "photos": [p.name for p in picks],
        "frames_per_clip": n_frames, "clip": "zoo.track.moving_face_clip (640x480, motion 1.0 / 0.0, noise 3)",
        "config": asdict(base), "raw": raw, "default": default, "best_within_lag": best, "max_lag": max_lag,
        "grid": grid,
        "speed": {"track_ms_median": round(statistics.median(track_ms), 2),
                  "track_fps": round(1000 / statistics.median(track_ms), 1),
                  "detect_every_frame_ms_median": round(statistics.median(det_ms[1:]), 2),
                  "detect_every_frame_fps": round(1000 / statistics.median(det_ms[1:]), 1),
                  "detector_runs": sum(c["detections"] for c in clips), "frames": sum(len(c["ms"]) for c in clips),
                  "lost": sum(c["lost"] for c in clips), "first_clip_detections": first["detections"]},
    }


def summarise(rows: list[dict[str, Any]], clips: list[dict[str, Any]]) -> dict[str, float]:
    mov = [r for r, c in zip(rows, clips) if c["moving"]]
    still = [r for r, c in zip(rows, clips) if not c["moving"]]
    med = lambda rs, k: round(float(statistics.median(r[k] for r in rs)), 4)
    return {"jitter_pct_moving": med(mov, "jitter_pct"), "jitter_pct_still": med(still, "jitter_pct"),
            "lag_frames_moving": med(mov, "lag_frames"), "nme_pct_moving": med(mov, "nme_pct"),
            "nme_pct_still": med(still, "nme_pct")}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m train.track_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="300-W root (its common test photos are used)")
    p.add_argument("--model", default="pipnet_mbv2_300w")
    p.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    p.add_argument("--detector", default="auto")
    p.add_argument("--photos", type=int, default=5)
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--max-lag", type=float, default=1.0, help="frames of lag allowed when choosing the defaults")
    p.add_argument("--json", type=Path)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    res = track_eval(a.data, a.model, a.backend, a.detector, a.photos, a.frames, a.max_lag, not a.no_progress)
    res["command"] = shlex.join(["python", "-m", "train.track_eval", *argv])
    summary = {k: res[k] for k in ("model", "backend", "detector", "raw", "default", "best_within_lag", "speed")}
    print(json.dumps(summary, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
