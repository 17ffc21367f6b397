"""Calibrate Face.scores for a zoo entry: fit a logistic regression of each point's raw evidence from the decode
(the score-map peak; for PIPNet also the scatter of its neighbour candidates) to whether the point lands within `tolerance` x the NME normaliser (inter-ocular distance) of the truth, on faces
the weight never trained on; then measure on test faces how well the score tells good points from bad (AUC),
how well calibrated it is (ECE), and draw the reliability diagram.

    python -m train.confidence pipnet_mbv2_300w --data ../shared/data --fit 300w/val \
        --test wflw/test --test wflw/test_occlusion --test 300w/common --plot docs/confidence --write

Ground-truth crops (the weight's gt_box_scale), as the leaderboard's accuracy columns.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from zoo import crop, registry
from zoo.registry import Confidence
from zoo.schemes import convert_points, get_scheme

from .breakdown import point_errors
from .datasets import Sample, read_dataset, sibling_root
from .evaluate import load_landmarker, scoring_scheme

log = logging.getLogger(__name__)
TOLERANCE = 0.1           # a point is good within 10% of the inter-ocular distance (WFLW's failure threshold)


def evidence_and_errors(lm, samples: Sequence[Sample], progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each point's raw evidence (K, N', F) and its error over the normaliser (K, N'), in the scheme the model
    and the data share (a 98-point model on 300-W: its 68 points)."""
    from tqdm import tqdm

    data_scheme = get_scheme(samples[0].landmarks.shape[0])
    scheme = scoring_scheme(lm.scheme, data_scheme)
    evidence, errs = [], []
    for s in tqdm(samples, disable=not progress, unit="face", desc=f"{lm.name} confidence", leave=False):
        box = crop.gt_crop_box(s.landmarks, lm.preprocess.gt_box_scale)[None]
        pts, ev = lm.predict_crops(s.load_image(), box, evidence=True)
        gt = convert_points(s.landmarks[None].astype(np.float64), data_scheme.name, scheme.name)
        pred = convert_points(pts.astype(np.float64), lm.scheme.name, scheme.name)
        # convert_points maps (..., N, 2) arrays: carry each feature as a point
        per = [convert_points(np.repeat(ev[..., f:f + 1], 2, axis=-1), lm.scheme.name, scheme.name)[..., 0]
               for f in range(ev.shape[-1])]
        evidence.append(np.stack(per, axis=-1))
        errs.append(point_errors(pred, gt, scheme))
    return np.concatenate(evidence), np.concatenate(errs)


def fit_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50, l2: float = 1e-4) -> tuple[tuple[float, ...], float]:
    """Logistic regression of y (0/1) on features x (M, F) by Newton's method: (weights, bias)."""
    X = np.concatenate([np.asarray(x, np.float64).reshape(len(y), -1), np.ones((len(y), 1))], axis=1)
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-X @ w))
        grad = X.T @ (p - y) + l2 * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return tuple(float(v) for v in w[:-1]), float(w[-1])


def roc_auc(score: np.ndarray, good: np.ndarray) -> float:
    """P(score of a random good point > score of a random bad one), ties counted half (Mann-Whitney)."""
    from scipy.stats import rankdata

    pos, n_pos = good.astype(bool), int(good.sum())
    n_neg = len(good) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability(prob: np.ndarray, good: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Per bin of predicted probability: its mean prediction, the observed rate of good points, the count."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges) - 1, 0, bins - 1)
    out: dict[str, list[float]] = {"predicted": [], "observed": [], "count": []}
    for b in range(bins):
        m = which == b
        if m.any():
            out["predicted"].append(round(float(prob[m].mean()), 4))
            out["observed"].append(round(float(good[m].mean()), 4))
            out["count"].append(int(m.sum()))
    return out


def measure(conf: Confidence, evidence: np.ndarray, errs: np.ndarray) -> dict[str, float | dict]:
    ok = np.isfinite(errs)
    prob, good = conf(evidence[ok]), (errs[ok] < conf.tolerance).astype(np.float64)
    rel = reliability(prob, good)
    ece = sum(c * abs(p - o) for p, o, c in zip(rel["predicted"], rel["observed"], rel["count"])) / max(1, len(good))
    return {"points": int(len(good)), "good_rate": round(float(good.mean()), 4), "auc": round(roc_auc(prob, good), 4),
            "ece": round(float(ece), 4), "reliability": rel}


def plot(name: str, results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    for label, r in results.items():
        rel = r["reliability"]
        ax.plot(rel["predicted"], rel["observed"], marker="o", ms=3,
                label=f"{label}: AUC {r['auc']:.2f}, ECE {r['ece']:.3f}")
    ax.set_xlabel("Face.scores (predicted chance the point is good)")
    ax.set_ylabel(f"observed rate of points within {TOLERANCE:g} x inter-ocular")
    ax.set_title(f"{name}: per-point confidence", fontsize=10)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def read_split(data: Path, spec: str) -> list[Sample]:
    """"300w/val" -> that split's samples, the dataset found at data/<name> or beside it."""
    name, _, split = spec.partition("/")
    return read_dataset(name, sibling_root(data, name), split or None)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.confidence", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="zoo entry")
    p.add_argument("--data", type=Path, required=True, help="folder holding the datasets (../shared/data)")
    p.add_argument("--fit", action="append", required=True,
                   help="DATASET/SPLIT the weight never trained on (repeatable), e.g. 300w/val")
    p.add_argument("--test", action="append", default=[], help="DATASET/SPLIT to measure on (repeatable)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE)
    p.add_argument("--plot", type=Path, help="folder for NAME.png, the reliability diagram")
    p.add_argument("--write", action="store_true", help="store the calibration in the registry entry")
    p.add_argument("--peak-only", action="store_true",
                   help="ablation: fit on the score-map peak alone (PIPNet's scatter left out); not with --write")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    entry = registry.get(a.name)
    if not entry.hub.sha256:
        p.error(f"{a.name} has no published weights to calibrate")
    if a.peak_only and a.write:
        p.error("--peak-only is an ablation: the zoo's decode gives every feature, so it cannot be written")
    lm = load_landmarker(a.name)
    keep = 1 if a.peak_only else None                 # the peak is always the first feature

    def gather(spec: str) -> tuple[np.ndarray, np.ndarray]:
        ev, err = evidence_and_errors(lm, read_split(a.data, spec), not a.no_progress)
        return ev[..., :keep], err

    fit = [gather(s) for s in a.fit]
    x, e = (np.concatenate([f[i].reshape(-1, *f[i].shape[2:]) for f in fit]) for i in (0, 1))
    ok = np.isfinite(e)
    weights, bias = fit_logistic(x[ok], (e[ok] < a.tolerance).astype(np.float64))
    command = "python -m train.confidence " + shlex.join([str(v) for v in (argv if argv is not None else sys.argv[1:])])
    conf = Confidence(tuple(round(v, 5) for v in weights), round(bias, 5), a.tolerance, entry.hub.sha256,
                      lm.model.EVIDENCE[:keep], " + ".join(a.fit), command)
    results = {"fit: " + " + ".join(a.fit): measure(conf, x, e)}
    for spec in a.test:
        results[spec] = measure(conf, *gather(spec))
    for label, r in results.items():
        log.info("%s %s: %d points, %.1f%% good, AUC %.3f, ECE %.3f", a.name, label, r["points"],
                 100 * r["good_rate"], r["auc"], r["ece"])
    conf = replace(conf, measured={k: {m: v for m, v in r.items() if m != "reliability"} for k, r in results.items()})
    if a.plot and not a.peak_only:
        plot(a.name, results, a.plot / f"{a.name}.png")
        (a.plot / f"{a.name}.json").write_text(json.dumps({"confidence": asdict(conf), "results": results}, indent=1))
    if a.write:
        registry.update_entry(a.name, confidence=conf)
    print(json.dumps(asdict(conf), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
