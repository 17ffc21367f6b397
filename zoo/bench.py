"""Latency benchmarks: median ms per stage and per face, warm-up first; table and JSON."""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .landmarker import STAGES

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model, for saying where timings come from."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} CPU"


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


def run_bench(names: list[str], backends: list[str], threads: int | None, faces: int = 1, repeats: int = 20,
              warmup: int = 3, image: Path | None = None, detector: str = "haar") -> dict[str, Any]:
    import zoo

    if threads:
        torch.set_num_threads(threads)
    img, box = bench_image(image)
    out: dict[str, Any] = {"hardware": f"{cpu_name()}, {os.cpu_count()} cores, torch threads "
                                       f"{torch.get_num_threads()}", "image": list(img.shape), "faces": faces,
                           "repeats": repeats, "detector": detector, "results": []}
    for name in names:
        for backend in backends:
            lm = zoo.load(name, backend=backend, detector=detector)
            if backend == "onnx" and threads:
                from .onnx_backend import OnnxRunner
                lm.runner = OnnxRunner(lm.runner.path, threads=threads)  # same thread budget as torch
            res = bench_one(lm, img, box, faces, repeats, warmup)
            out["results"].append({"name": name, "backend": backend, **res})
            log.info("%s %s: %s", name, backend, res)
    return out


def format_table(result: dict[str, Any]) -> str:
    cols = ["name", "backend", *STAGES, "total", "per_face", "fps"]
    rows = [[str(r[c]) for c in cols] for r in result["results"]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"
    return "\n".join([line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows),
                      f"(median ms over {result['repeats']} runs; {result['hardware']}; {result['faces']} face(s); "
                      f"detector {result['detector']})"])


def save_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=1))
