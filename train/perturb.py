"""Image perturbations for robustness evaluation: the same faces, degraded, with the same ground truth.

Each perturbation maps (RGB uint8 image, the landmarks of the faces in it, a seeded generator) to a new image
of the same size. All are deterministic for a given seed. Sizes scale with the face (the larger side of its
landmark box), so a 100-px WFLW face and a 240-px 300-W face are degraded alike.

- blur: Gaussian blur, sigma = 2% of the face size (about 5 px on a 240-px face);
- jpeg30: JPEG re-encoding at quality 30 (OpenCV's encoder);
- downscale4: down to 1/4 of the size (area averaging), then back up (bilinear): a face 4x farther away;
- lowlight: gamma 2 and 40% brightness (x -> 0.4 * 255 * (x / 255) ** 2), plus seeded sensor noise (sigma 2);
- occluder: per face, a box of 40% x 40% of the landmark box at a seeded place inside it, filled with a seeded
  flat grey (a hand, a phone, a mask).
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import cv2
import numpy as np

Perturbation = Callable[[np.ndarray, Sequence[np.ndarray], np.random.Generator], np.ndarray]


def _face_size(faces: Sequence[np.ndarray]) -> float:
    """Median larger side of the faces' landmark boxes (pixels)."""
    sides = [float(np.max(f.max(0) - f.min(0))) for f in faces]
    return float(np.median(sides)) if sides else 100.0


def blur(image: np.ndarray, faces: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    sigma = max(0.5, 0.02 * _face_size(faces))
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def jpeg30(image: np.ndarray, faces: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def downscale4(image: np.ndarray, faces: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w / 4)), max(1, round(h / 4))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def lowlight(image: np.ndarray, faces: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    dark = 0.4 * 255.0 * x ** 2 + rng.normal(0.0, 2.0, image.shape)
    return np.clip(np.round(dark), 0, 255).astype(np.uint8)


def occluder(image: np.ndarray, faces: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    h, w = image.shape[:2]
    for lm in faces:
        lo, hi = lm.min(0), lm.max(0)
        size = 0.4 * (hi - lo)
        x0, y0 = lo + rng.uniform(0.0, 1.0, 2) * (hi - lo - size)
        x1, y1 = x0 + size[0], y0 + size[1]
        xs = slice(int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w)))
        ys = slice(int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h)))
        out[ys, xs] = int(rng.integers(20, 236))
    return out


PERTURBATIONS: dict[str, Perturbation] = {
    "blur": blur, "jpeg30": jpeg30, "downscale4": downscale4, "lowlight": lowlight, "occluder": occluder,
}


def perturb(name: str, image: np.ndarray, faces: Sequence[np.ndarray], seed: int, key: str = "") -> np.ndarray:
    """`image` under perturbation `name`; the generator is seeded by (seed, name, key), so each image (key: its
    path) gets its own stream whatever order the images come in."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {list(PERTURBATIONS)}")
    digest = hashlib.sha256(f"{name}|{key}".encode()).digest()
    rng = np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])
    return PERTURBATIONS[name](image, faces, rng)
