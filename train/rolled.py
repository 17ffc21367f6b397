"""Rolled faces through the default pipeline: each photo turned by an angle (canvas grown so nothing is cut,
the landmarks turned with it), then `lm(image)` as a user calls it (detector + crop + model), matched to the
truth by box. NME upright and rolled, side by side, on the same faces.

    python -m train.rolled pipnet_mbv2_300w --data ../shared/data/300w --split common --angle 45 --backend onnx
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from zoo import crop
from zoo.schemes import convert_points, get_scheme

from .datasets import read_dataset
from .evaluate import load_landmarker, scoring_scheme

log = logging.getLogger(__name__)


def roll_photo(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo turned by `degrees` (counter-clockwise on screen) about its centre on a canvas that holds
    all of it (black corners), and the points turned with it."""
    m, size = crop.turn_matrix(image.shape[1], image.shape[0], degrees)
    out = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out, (np.c_[points, np.ones(len(points))] @ m.T).astype(np.float32)


def face_errors(lm, samples, degrees: float, progress: bool = True) -> np.ndarray:
    """Per-face NME (fraction; NaN where no detection matches the face) after rolling each photo."""
    from tqdm import tqdm

    data_scheme = get_scheme(samples[0].landmarks.shape[0])
    scheme = scoring_scheme(lm.scheme, data_scheme)
    errs = []
    for smp in tqdm(samples, disable=not progress, unit="face", desc=f"{lm.name} roll {degrees:g}", leave=False):
        img, gt = roll_photo(smp.load_image(), smp.landmarks, degrees) if degrees else \
            (smp.load_image(), smp.landmarks.astype(np.float32))
        faces = lm(img)
        j = crop.match_face(np.array([f.box for f in faces]).reshape(-1, 4), gt) if faces else None
        if j is None:
            errs.append(np.nan)
            continue
        pred = convert_points(faces[j].landmarks[None].astype(np.float64), lm.scheme.name, scheme.name)[0]
        truth = convert_points(gt[None].astype(np.float64), data_scheme.name, scheme.name)[0]
        errs.append(float(np.linalg.norm(pred - truth, axis=-1).mean() / scheme.norm_distance(truth)))
    return np.asarray(errs)


def summary(errs: np.ndarray) -> dict[str, float | int]:
    found = errs[np.isfinite(errs)]
    return {"nme_pct": round(100 * float(found.mean()), 3) if len(found) else None, "missed": int(np.isnan(errs).sum()),
            "fr_pct": round(100 * float(np.mean(np.where(np.isfinite(errs), errs, 1.0) >= 0.1)), 2), "n": len(errs)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.rolled", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="zoo entry or model folder")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--dataset", default="300w")
    p.add_argument("--split", default="common")
    p.add_argument("--angle", type=float, nargs="+", default=[45.0], help="degrees (several: one row each)")
    p.add_argument("--backend", default="onnx", choices=["torch", "onnx", "onnx-int8"])
    p.add_argument("--detector", default="auto")
    p.add_argument("--no-upright", action="store_true", help="axis-aligned crops only (the pipeline before)")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", type=Path)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    lm = load_landmarker(a.name, backend=a.backend, detector=a.detector)
    if a.no_upright:
        lm.upright_from_deg = None
    samples = read_dataset(a.dataset, a.data, a.split)[:a.limit]
    rows = {"0": summary(face_errors(lm, samples, 0.0, not a.no_progress))}
    for deg in a.angle:
        rows[f"{deg:g}"] = summary(face_errors(lm, samples, deg, not a.no_progress))
    command = "python -m train.rolled " + shlex.join([str(v) for v in (argv if argv is not None else sys.argv[1:])])
    out = {"model": a.name, "detector": getattr(lm.detector, "name", a.detector), "upright": not a.no_upright,
           "split": f"{a.dataset}/{a.split}", "by_angle": rows, "command": command}
    for deg, r in rows.items():
        log.info("%s roll %s deg: NME %s%%, %d missed, FR %.2f%% (%d faces)", a.name, deg, r["nme_pct"],
                 r["missed"], r["fr_pct"], r["n"])
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
