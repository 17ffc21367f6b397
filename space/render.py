"""Pictures and text for the Space: annotated images at a readable size, side-by-side PNGs, model cards, and
a synthetic example face (drawn at runtime, so no dataset image is ever committed)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from zoo import draw as zdraw
from zoo import registry
from zoo.draw import PALETTE, fit_width
from zoo.landmarker import Face
from zoo.schemes import Scheme

DISPLAY_WIDTH = 640


def draw_faces(image: np.ndarray, faces: Sequence[Face], scheme: Scheme) -> np.ndarray:
    return zdraw.draw_faces(image, faces, scheme)


def draw_errors(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: Scheme) -> np.ndarray:
    return zdraw.draw_errors(image, pred, gt, scheme)


# --------------------------------------------------------------------------------------- a drawn face
def schematic_face_68() -> np.ndarray:
    """A plausible 68-point (iBUG) frontal face in [0, 1] crop coordinates, left-right symmetric.

    Used as the mean face of random-init test weights and to draw the synthetic example.
    """
    t = np.linspace(0.0, 1.0, 17)
    ang = math.pi * (1.0 - t)                                    # jaw: lower half-ellipse, ear to ear
    jaw = np.stack([0.5 + 0.40 * np.cos(ang), 0.40 + 0.52 * np.sin(ang)], 1)
    u = np.linspace(0.0, 1.0, 5)
    brow_r = np.stack([0.18 + 0.24 * u, 0.33 - 0.04 * np.sin(math.pi * u)], 1)
    brow_l = np.stack([1.0 - brow_r[::-1, 0], brow_r[::-1, 1]], 1)
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.42, 0.58, 4)], 1)
    nostrils = np.array([[0.42, 0.63], [0.46, 0.645], [0.5, 0.65], [0.54, 0.645], [0.58, 0.63]])
    eye_r = np.array([[0.23, 0.44], [0.29, 0.415], [0.35, 0.415], [0.41, 0.44], [0.35, 0.46], [0.29, 0.46]])
    eye_l = np.array([[0.59, 0.44], [0.65, 0.415], [0.71, 0.415], [0.77, 0.44], [0.71, 0.46], [0.65, 0.46]])
    mouth_out = np.array([[0.36, 0.76], [0.41, 0.73], [0.46, 0.715], [0.5, 0.72], [0.54, 0.715], [0.59, 0.73],
                          [0.64, 0.76], [0.59, 0.80], [0.54, 0.82], [0.5, 0.825], [0.46, 0.82], [0.41, 0.80]])
    mouth_in = np.array([[0.38, 0.76], [0.45, 0.745], [0.5, 0.75], [0.55, 0.745], [0.62, 0.76], [0.55, 0.78],
                         [0.5, 0.785], [0.45, 0.78]])
    pts = np.concatenate([jaw, brow_r, brow_l, bridge, nostrils, eye_r, eye_l, mouth_out, mouth_in])
    assert pts.shape == (68, 2)
    return pts.astype(np.float32)


def synthetic_face(size: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, its 68 landmarks in pixels): a cartoon face filling most of the frame."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (70, 90, 120)
    img = np.clip(img.astype(np.int16) + rng.integers(-12, 12, img.shape), 0, 255).astype(np.uint8)
    pts = schematic_face_68() * np.float32(size * 0.8) + np.float32(size * 0.1)
    s = 16                                                        # subpixel drawing
    p = np.round(pts * s).astype(np.int32)
    centre = (int(size / 2 * s), int(size * 0.46 * s))
    axes = (int(size * 0.34 * s), int(size * 0.45 * s))
    cv2.ellipse(img, centre, axes, 0, 0, 360, (224, 186, 160), -1, cv2.LINE_AA, shift=4)
    for a, b in ((17, 22), (22, 27)):
        cv2.polylines(img, [p[a:b]], False, (90, 60, 40), max(2, size // 90), cv2.LINE_AA, shift=4)
    for a, b in ((36, 42), (42, 48)):
        cv2.fillPoly(img, [p[a:b]], (250, 250, 250), cv2.LINE_AA, shift=4)
        c = pts[a:b].mean(0)
        cv2.circle(img, (int(c[0] * s), int(c[1] * s)), int(size * 0.018 * s), (60, 40, 30), -1, cv2.LINE_AA, shift=4)
    cv2.polylines(img, [p[27:31]], False, (170, 120, 100), max(1, size // 150), cv2.LINE_AA, shift=4)
    cv2.polylines(img, [p[31:36]], False, (150, 100, 90), max(1, size // 150), cv2.LINE_AA, shift=4)
    cv2.fillPoly(img, [p[48:60]], (180, 70, 80), cv2.LINE_AA, shift=4)
    cv2.fillPoly(img, [p[60:68]], (110, 30, 40), cv2.LINE_AA, shift=4)
    return img, pts


# --------------------------------------------------------------------------------------- annotations
def scale_faces(faces: Sequence[Face], s: float) -> list[Face]:
    return [Face(np.asarray(f.box, np.float32) * s, np.asarray(f.landmarks, np.float32) * s, f.score) for f in faces]


def annotate(image: np.ndarray, faces: Sequence[Face], scheme: Scheme, width: int = DISPLAY_WIDTH) -> np.ndarray:
    """The image at `width` px with each face's box, landmarks and contours drawn at that size."""
    small, s = fit_width(image, width)
    return draw_faces(small, scale_faces(faces, s), scheme)


def label_strip(image: np.ndarray, text: str, color=(30, 30, 30)) -> np.ndarray:
    """The image with a white title strip on top."""
    h = max(24, image.shape[1] // 22)
    strip = np.full((h, image.shape[1], 3), 255, np.uint8)
    scale = h / 40
    cv2.putText(strip, text, (6, int(h * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale, color, max(1, h // 20), cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def side_by_side(panels: Sequence[tuple[str, np.ndarray]], width: int = 480) -> np.ndarray:
    """Labelled panels in one row, each `width` px wide, padded to one height."""
    tiles = [label_strip(fit_width(img, width)[0], title, PALETTE[i % len(PALETTE)])
             for i, (title, img) in enumerate(panels)]
    h = max(t.shape[0] for t in tiles)
    gap = np.full((h, 8, 3), 255, np.uint8)
    row: list[np.ndarray] = []
    for t in tiles:
        pad = np.full((h - t.shape[0], t.shape[1], 3), 255, np.uint8)
        row += [np.concatenate([t, pad], axis=0), gap]
    return np.concatenate(row[:-1], axis=1)


def put_text(image: np.ndarray, text: str) -> np.ndarray:
    """`text` in the top-left corner on a dark band (live view)."""
    out = image.copy()
    scale = max(0.5, image.shape[1] / 900)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 12, th + 14), (0, 0, 0), -1)
    cv2.putText(out, text, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def save_png(image: np.ndarray, path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


# --------------------------------------------------------------------------------------------- cards
def _fmt_params(n: int | None) -> str:
    return f"{n / 1e6:.2f} M" if n else "—"


def _fmt_bytes(n: int | None) -> str:
    return f"{n / 2**20:.1f} MB" if n else "—"


def card_markdown(name: str, params: int | None = None, weights: Path | None = None) -> str:
    """One model's card from its registry entry: accuracy with the command that measured it, size, licence."""
    from .models import PEER_NAME

    if name == PEER_NAME:
        return (f"### {name} (peer)\n"
                "dlib's 68-point ERT shape predictor (Kazemi & Sullivan 2014), from `face-recognition-models`; "
                "run on the same face boxes as the zoo models.\n\n"
                "- **Input:** dlib face square · **Points:** 68 (300-W)\n"
                "- **Licence:** trained on iBUG 300-W (non-commercial research use); it has seen the 300-W "
                "training images, so it is not a fair test-set peer.\n")
    e = registry.get(name)
    lines = [f"### {name}"]
    status = "published" if e.published else \
        f"**{e.status}** — local weights, not published: outputs may be meaningless"
    backbone = e.arch_args.get("backbone", "mobilenet_v2" if e.arch == "mobilefan" else "")
    lines.append(f"- **Architecture:** {e.arch}{f' / {backbone}' if backbone else ''} · **Points:** {e.scheme} "
                 f"· **Trained on:** {e.dataset or '—'} · **Status:** {status}")
    size = weights.stat().st_size if weights is not None and weights.is_file() else None
    lines.append(f"- **Params:** {_fmt_params(e.params or params)} · **Weights:** {_fmt_bytes(size)} · "
                 f"**Input:** {e.preprocess.input_size}×{e.preprocess.input_size} px")
    m = e.metrics or {}
    if "nme" in m:
        split = m.get("split", "test")
        extra = ", ".join(f"{k.upper()} {100 * float(m[k]):.2f}%" for k in ("fr", "auc") if k in m)
        faces = f" ({m['n']} faces)" if "n" in m else ""
        lines.append(f"- **Measured:** NME {100 * float(m['nme']):.2f}% on {m.get('dataset', e.dataset)} {split}"
                     f"{faces}{'; ' + extra if extra else ''}")
        if m.get("command"):
            lines.append(f"  - measured with: `{m['command']}`")
    else:
        lines.append("- **Measured:** no accuracy measured for these weights yet")
    if e.paper:
        figs = ", ".join(f"{k} {v}%" for k, v in e.paper.items() if k != "source" and isinstance(v, (int, float)))
        lines.append(f"- **Paper:** {figs} ({e.paper.get('source', 'paper')})")
    lines.append(f"- **Licence:** {e.license}{f' — {e.notes}' if e.notes else ''}")
    return "\n".join(lines) + "\n"


def cards_markdown(names: Sequence[str], info: dict[str, dict[str, Any]] | None = None) -> str:
    info = info or {}
    if not names:
        return "_Pick models to see their cards._"
    return "\n".join(card_markdown(n, **info.get(n, {})) for n in names)
