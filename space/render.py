"""Pictures for the Space: one overlay of every model in its own colour with a legend, a zoom on each face,
a photo x model grid, the timing chart, the live-view caption, model cards, and a synthetic face (drawn at
runtime, so no dataset image is ever committed).

Colours: model i of the visitor's choice gets MODEL_COLORS[i] in every picture, the table and the chart.
Text is drawn with a TrueType font through Pillow (OpenCV's Hershey fonts print "?" for anything but ASCII).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from zoo import draw as zdraw
from zoo import registry
from zoo.draw import fit_width
from zoo.landmarker import Face
from zoo.schemes import Scheme

DISPLAY_WIDTH = 640
# Okabe-Ito colours: told apart by colour-blind visitors too, and readable on photos.
MODEL_COLORS = [(230, 159, 0), (0, 114, 178), (0, 158, 115), (204, 121, 167), (213, 94, 0), (86, 180, 233)]
BOX_COLOR = (255, 255, 255)
INK = (33, 37, 41)


def model_color(i: int) -> tuple[int, int, int]:
    return MODEL_COLORS[i % len(MODEL_COLORS)]


def hex_color(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass
class Layer:
    """One model's faces on one photo, drawn in its colour."""
    name: str
    faces: Sequence[Face]
    scheme: Scheme
    color: tuple[int, int, int]
    note: str = ""                 # shown in the legend (e.g. "12.3 ms")


# ------------------------------------------------------------------------------------------------ text
@lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans when the system has it, else Pillow's own scalable default font."""
    for name in (("DejaVuSans-Bold.ttf",) if bold else ()) + ("DejaVuSans.ttf",):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def text_width(text: str, size: int, bold: bool = False) -> int:
    return int(math.ceil(font(size, bold).getlength(text)))


def _strip(width: int, height: int, color=(255, 255, 255)) -> Image.Image:
    return Image.new("RGB", (max(1, width), max(1, height)), color)


def legend(layers: Sequence[Layer], width: int, title: str = "") -> np.ndarray:
    """A white strip: optional title, then a colour swatch + name (+ note) per model, wrapped to `width`."""
    size = max(13, min(28, width // 34))
    pad, sw = size // 2, size
    items = [(ly.color, ly.name + (f"  {ly.note}" if ly.note else "")) for ly in layers]
    rows: list[list[tuple[tuple[int, int, int], str, int]]] = [[]]
    x = pad
    for color, text in items:
        w = sw + 6 + text_width(text, size) + 2 * pad
        if rows[-1] and x + w > width:
            rows.append([])
            x = pad
        rows[-1].append((color, text, x))
        x += w
    line = int(size * 1.6)
    top = int(size * 1.7) if title else pad // 2
    img = _strip(width, top + line * len(rows) + pad // 2)
    d = ImageDraw.Draw(img)
    if title:
        d.text((pad, pad // 2), title, fill=INK, font=font(size, bold=True))
    for r, row in enumerate(rows):
        y = top + r * line
        for color, text, x0 in row:
            d.rounded_rectangle([x0, y + 3, x0 + sw, y + 3 + sw], radius=3, fill=color)
            d.text((x0 + sw + 6, y + 1), text, fill=INK, font=font(size))
    return np.asarray(img)


def wrap_text(text: str, size: int, width: int) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` pixels at font `size`."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        cand = f"{line} {word}" if line else word
        if line and text_width(cand, size) > width:
            lines.append(line)
            line = word
        else:
            line = cand
    return lines + [line]


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """`text` on a dark band under the picture (the live view: nothing drawn where the panel's label sits),
    wrapped onto as many lines as the picture's width needs: nothing is cut off."""
    size = max(14, min(24, image.shape[1] // 30))
    lines = wrap_text(text, size, image.shape[1] - 16)
    step = int(size * 1.35)
    band = _strip(image.shape[1], step * len(lines) + int(size * 0.6), (20, 20, 20))
    d = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        d.text((8, int(size * 0.3) + i * step), line, fill=(255, 255, 255), font=font(size))
    return np.concatenate([np.ascontiguousarray(image[..., :3]), np.asarray(band)], axis=0)


def label_strip(image: np.ndarray, text: str, color=INK, size: int | None = None) -> np.ndarray:
    """The image with a white title strip on top (text in `color`)."""
    size = size or max(13, min(20, image.shape[1] // 24))
    strip = _strip(image.shape[1], int(size * 1.7))
    d = ImageDraw.Draw(strip)
    while len(text) > 4 and text_width(text, size, True) > image.shape[1] - 10:
        text = text[:-2].rstrip("…") + "…"
    d.text((6, int(size * 0.3)), text, fill=color, font=font(size, bold=True))
    return np.concatenate([np.asarray(strip), image], axis=0)


# ------------------------------------------------------------------------------------------------ drawing
def _draw_layer(out: np.ndarray, faces: Sequence[Face], scheme: Scheme, color, scale: float, offset=(0.0, 0.0),
                radius: int | None = None, thickness: int = 1) -> None:
    """Thin contours and small points: several models stay readable on one face."""
    off = np.asarray(offset, np.float32)
    for f in faces:
        pts = (np.asarray(f.landmarks, np.float32) - off) * np.float32(scale)
        zdraw.draw_landmarks(out, pts, scheme, color, radius=radius, thickness=thickness, scores=f.scores)


def _draw_boxes(out: np.ndarray, boxes: np.ndarray, scale: float, offset=(0.0, 0.0)) -> None:
    for b in np.asarray(boxes, np.float32).reshape(-1, 4):
        x0, y0, x1, y1 = ((b - np.float32([*offset, *offset])) * np.float32(scale)).round().astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 0), 3, cv2.LINE_AA)
        cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOR, 1, cv2.LINE_AA)


def overlay(image: np.ndarray, layers: Sequence[Layer], boxes: np.ndarray | None = None,
            width: int = DISPLAY_WIDTH) -> np.ndarray:
    """Every model's landmarks on one copy of the photo, each in its colour; the shared face boxes in white."""
    small, s = fit_width(image, width)
    out = np.ascontiguousarray(small).copy()
    if boxes is not None:
        _draw_boxes(out, boxes, s)
    radius = max(1, round(width / 450))
    for ly in layers:
        _draw_layer(out, ly.faces, ly.scheme, ly.color, s, radius=radius, thickness=max(1, round(width / 700)))
    return out


def face_crop_box(box: np.ndarray, w: int, h: int, margin: float = 1.35) -> tuple[int, int, int, int]:
    """A square around a face box, `margin` times its larger side, clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * margin
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    return a, b, int(min(w, max(a + 2, cx + side / 2))), int(min(h, max(b + 2, cy + side / 2)))


def zooms(image: np.ndarray, layers: Sequence[Layer], boxes: np.ndarray, tile: int = 240,
          max_tiles: int = 6) -> list[np.ndarray]:
    """One square close-up per face box (the first `max_tiles`), every model drawn in its colour."""
    h, w = image.shape[:2]
    out = []
    for i, box in enumerate(np.asarray(boxes, np.float32).reshape(-1, 4)[:max_tiles]):
        x0, y0, x1, y1 = face_crop_box(box, w, h)
        crop = image[y0:y1, x0:x1]
        s = tile / max(crop.shape[:2])
        big = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                         interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
        big = np.ascontiguousarray(big).copy()
        for ly in layers:
            _draw_layer(big, ly.faces, ly.scheme, ly.color, s, offset=(x0, y0), radius=2, thickness=1)
        out.append(label_strip(_pad_to(big, tile, tile), f"face {i + 1}", size=18))
    return out


def _pad_to(img: np.ndarray, w: int, h: int) -> np.ndarray:
    out = np.full((max(h, img.shape[0]), max(w, img.shape[1]), 3), 255, np.uint8)
    out[:img.shape[0], :img.shape[1]] = img
    return out


def hstack(tiles: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    parts: list[np.ndarray] = []
    for t in tiles:
        parts += [_pad_to(t, t.shape[1], h), np.full((h, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def vstack(parts: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    w = max(p.shape[1] for p in parts)
    out: list[np.ndarray] = []
    for p in parts:
        out += [_pad_to(p, w, p.shape[0]), np.full((gap, w, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=0)


def wrap_tiles(tiles: Sequence[np.ndarray], width: int, gap: int = 8) -> np.ndarray:
    """Tiles in rows no wider than `width`."""
    rows: list[list[np.ndarray]] = [[]]
    x = 0
    for t in tiles:
        if rows[-1] and x + t.shape[1] > width:
            rows.append([])
            x = 0
        rows[-1].append(t)
        x += t.shape[1] + gap
    return vstack([hstack(r, gap) for r in rows], gap)


def comparison_panel(image: np.ndarray, layers: Sequence[Layer], boxes: np.ndarray | None, title: str,
                     width: int = 900, max_height: int = 640) -> np.ndarray:
    """Legend + overlay of every model + a zoom per face: the picture a visitor shares. Tall photos are drawn
    narrower (at most `max_height` px high) so the legend and the zooms stay in view."""
    h, w = image.shape[:2]
    pic = overlay(image, layers, boxes, max(64, min(width, round(w * max_height / h))))
    parts = [legend(layers, width, title), _centre(pic, width)]
    if boxes is not None and len(boxes):
        tiles = zooms(image, layers, boxes, tile=(width - 16) // 3)
        parts.append(wrap_tiles(tiles, width))
        if len(boxes) > len(tiles):
            parts.append(label_strip(np.full((1, width, 3), 255, np.uint8),
                                     f"+ {len(boxes) - len(tiles)} more face(s) in the overlay", size=18))
    return _border(vstack(parts))


def _centre(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] >= width:
        return img
    out = np.full((img.shape[0], width, 3), 255, np.uint8)
    x = (width - img.shape[1]) // 2
    out[:, x:x + img.shape[1]] = img
    return out


def _border(img: np.ndarray, px: int = 8) -> np.ndarray:
    return cv2.copyMakeBorder(img, px, px, px, px, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def faces_region(image: np.ndarray, layers: Sequence[Layer], pad: float = 0.25) -> tuple[int, int, int, int]:
    """The part of the photo that holds every model's faces (x0, y0, x1, y1), padded: grid cells show that,
    not the whole photo, so the landmarks stay visible in a small cell."""
    h, w = image.shape[:2]
    pts = [np.asarray(f.landmarks, np.float32) for ly in layers for f in ly.faces if len(f.landmarks)]
    if not pts:
        return 0, 0, w, h
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(1)]
    if not len(allp):
        return 0, 0, w, h
    lo, hi = allp.min(0), allp.max(0)
    m = pad * max(hi - lo)
    x0, y0 = (max(0, int(v)) for v in lo - m)
    x1, y1 = min(w, int(hi[0] + m) + 1), min(h, int(hi[1] + m) + 1)
    return (x0, y0, x1, y1) if x1 - x0 > 8 and y1 - y0 > 8 else (0, 0, w, h)


def grid(rows: Sequence[tuple[str, np.ndarray, Sequence[Layer]]], cell: int = 360) -> np.ndarray:
    """Photos down, models across: each cell one model alone on the faces of one photo, in the model's colour."""
    if not rows:
        return np.full((cell, cell, 3), 255, np.uint8)
    out = []
    for name, image, layers in rows:
        cells = []
        x0, y0, x1, y1 = faces_region(image, layers)
        part = image[y0:y1, x0:x1]
        for ly in layers:
            small, s = fit_width(part, cell)
            c = np.ascontiguousarray(small).copy()
            _draw_layer(c, ly.faces, ly.scheme, ly.color, s, offset=(x0, y0), radius=2 if s >= 0.5 else 1,
                        thickness=1)
            cells.append(label_strip(c, ly.name, ly.color, size=14))
        out.append(label_strip(hstack(cells), name, size=15))
    return _border(vstack(out, gap=14))


# ------------------------------------------------------------------------------------------------ chart
def timing_chart(rows: Sequence[dict[str, Any]], width_px: int = 640) -> np.ndarray:
    """Horizontal bars: each model's landmark time per photo (median of the timed repeats, whiskers from the
    fastest to the slowest repeat), in the model's colour; the shared face detection as a grey bar apart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bars = [(r["label"], r["ms"], r.get("lo"), r.get("hi"), r["color"]) for r in rows]
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, 0.6 * len(bars) + 1.4), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    y = np.arange(len(bars))[::-1]
    vals = [b[1] for b in bars]
    err = np.array([[max(0.0, b[1] - (b[2] if b[2] is not None else b[1])) for b in bars],
                    [max(0.0, (b[3] if b[3] is not None else b[1]) - b[1]) for b in bars]])
    ax.barh(y, vals, color=[np.asarray(b[4]) / 255.0 for b in bars], height=0.62)
    ax.errorbar(vals, y, xerr=err, fmt="none", ecolor="#222222", capsize=4, lw=1.2)
    ax.set_yticks(y, [b[0] for b in bars], fontsize=12)
    ax.set_xlabel("ms per photo: median; whiskers fastest to slowest run", fontsize=11)
    ends = [v + e for v, e in zip(vals, err[1])]
    top = max(ends + [1.0])
    for yi, v, end in zip(y, vals, ends):
        ax.text(end + top * 0.015, yi, f"{v:.1f} ms", va="center", fontsize=11)
    ax.set_xlim(0, top * 1.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="x", labelsize=11)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


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


def draw_errors(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: Scheme) -> np.ndarray:
    return zdraw.draw_errors(image, pred, gt, scheme)


def save_png(image: np.ndarray, path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2BGR))
    return path


# --------------------------------------------------------------------------------------------- cards
def _fmt_params(n: int | None) -> str:
    return f"{n / 1e6:.2f} M" if n else "—"


def _fmt_bytes(n: int | None) -> str:
    return f"{n / 2**20:.1f} MB" if n else "—"


def peer_card(name: str, entry: Any, note: str) -> str:
    """A peer's card from its entry (zoo.peers)."""
    lic = getattr(entry, "license", "other")
    notes = getattr(entry, "notes", "")
    return (f"### {name} (peer)\n- **Points:** {entry.scheme} · **Trained on:** {getattr(entry, 'dataset', None) or '—'}"
            f"\n- {note}\n- **Licence:** {lic}{f' — {notes}' if notes else ''}\n")


def card_markdown(name: str, params: int | None = None, weights: Path | None = None) -> str:
    """One model's card from its registry entry: accuracy with the command that measured it, size, licence."""
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
