"""Landmark accuracy: per-image NME, failure rate, CED curve and its AUC, and a CED plot.

Errors are fractions of the scheme's normaliser (0.05 = 5 % of the inter-ocular distance); reports turn
them into percent. A non-finite error (NaN prediction) always counts as a failure.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from zoo.schemes import Scheme

log = logging.getLogger(__name__)


def nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme, boxes: np.ndarray | None = None) -> np.ndarray:
    """Per-image normalised mean error, (K,): mean point-to-point distance / the scheme's normaliser.

    pred, gt: (K, N, 2) or (N, 2) pixels. boxes: (K, 4) x0 y0 x1 y1 face boxes, used by box-normalised
    schemes (AFLW: sqrt(w*h)); without them those schemes fall back to the ground-truth landmark box.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
        boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(1, 4)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be (K, N, 2)")
    if pred.shape[1] != scheme.num_points:
        raise ValueError(f"{pred.shape[1]} points given, scheme {scheme.name} has {scheme.num_points}")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape != (len(gt), 4):
            raise ValueError(f"boxes must be ({len(gt)}, 4), got {boxes.shape}")
    norm = scheme.norm_distance(gt, boxes if scheme.norm_points is None else None)
    dist = np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = dist / norm
    bad = ~(norm > 0)
    if bad.any():
        log.warning("%d faces have a zero normaliser (%s); their NME is NaN", int(bad.sum()), scheme.norm_desc)
        out[bad] = np.nan
    return out


def _errors(errors) -> np.ndarray:
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if e.size == 0:
        raise ValueError("no errors given")
    return e


def failure_rate(errors: np.ndarray, threshold: float = 0.1) -> float:
    """Fraction of images whose NME is above `threshold` (non-finite errors fail)."""
    e = _errors(errors)
    return float(np.mean(~(e <= threshold)))


def ced(errors: np.ndarray, threshold: float = 0.1, steps: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: `steps + 1` thresholds in [0, threshold] and the fraction of images
    with NME <= each."""
    e = np.sort(_errors(errors))
    e = np.where(np.isfinite(e), e, np.inf)
    xs = np.linspace(0.0, threshold, steps + 1)
    return xs, np.searchsorted(e, xs, side="right") / e.size


def auc(errors: np.ndarray, threshold: float = 0.1) -> float:
    """Area under the CED curve up to `threshold`, divided by `threshold` (1 = every error is 0).

    Exact: the CED is a step function, and each image adds max(0, threshold - e) to its integral.
    """
    e = _errors(errors)
    e = np.where(np.isfinite(e), e, np.inf)
    return float(np.mean(np.clip(1.0 - e / threshold, 0.0, 1.0)))


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, threshold: float = 0.1,
             title: str = "Cumulative error distribution") -> Path:
    """Write a PNG of the CED curves of several methods; `curves` maps a label to its per-image errors."""
    # Figure + Agg canvas directly: no pyplot, so no global backend state and no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, errors in curves.items():
        xs, ys = ced(errors, threshold)
        e = _errors(errors)
        ax.plot(xs * 100, ys * 100, lw=1.8,
                label=f"{label}: NME {np.nanmean(e) * 100:.2f}%, AUC {auc(e, threshold):.3f}")
    ax.set_xlim(0, threshold * 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("Images (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def video_jitter(pred: np.ndarray, truth: np.ndarray, scheme: Scheme) -> float:
    """Frame-to-frame landmark noise on a clip, as a fraction of the normaliser: the RMS over frames and points
    of the change of the error from one frame to the next, |(p_t - g_t) - (p_t-1 - g_t-1)| / norm_t. Motion
    the truth has too is not noise. pred, truth: (T, N, 2) pixels of one face."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    err = pred - truth
    step = np.linalg.norm(np.diff(err, axis=0), axis=-1) / scheme.norm_distance(truth[1:])[:, None]
    return float(np.sqrt(np.nanmean(step ** 2)))


def video_lag(pred: np.ndarray, truth: np.ndarray, max_frames: float = 5.0, step: float = 0.05) -> float:
    """How many frames (fractional) the predictions trail the truth: the delay d that minimises the mean
    distance between pred_t and the truth at t - d (linearly interpolated). Meaningful on moving clips."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    t = np.arange(len(truth))
    start = int(np.ceil(max_frames))
    best, best_d = np.inf, 0.0
    for d in np.arange(0.0, max_frames + 1e-9, step):
        src = t[start:] - d
        i0 = np.floor(src).astype(int)
        w = (src - i0)[:, None, None]
        shifted = truth[i0] * (1 - w) + truth[np.minimum(i0 + 1, len(truth) - 1)] * w
        cost = float(np.nanmean(np.linalg.norm(pred[start:] - shifted, axis=-1)))
        if cost < best:
            best, best_d = cost, float(d)
    return round(best_d, 2)
