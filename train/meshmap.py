"""Fit the linear map from MediaPipe's 468-point mesh to a landmark scheme, on training faces only.

    python -m train.meshmap 68 --data ../shared/data      # 300-W fit split; K chosen on 300-W val
    python -m train.meshmap 98 --data ../shared/data      # WFLW fewshot_fit + 300-W fit (the 68 shared points)

Each target point is a weighted sum of the K mesh points nearest to it on the mean face, weights summing to 1
(so the map commutes with moving, turning and scaling the face), fitted by ridge least squares on
inter-ocular-normalised coordinates. K is chosen by NME on held-out training faces (300-W val, WFLW
fewshot_val), never on test faces. The mesh comes from the peer run as on the leaderboard (MediaPipe's own
detector in a region about the ground-truth crop). Writes zoo/weights/mediapipe_facemesh/map_<scheme>.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zoo import crop, files
from zoo.images import load_image
from zoo.peers import MEDIAPIPE_FOLDER, MediaPipePeer
from zoo.schemes import embed_points, get_scheme

from .datasets import read_dataset, sibling_root

log = logging.getLogger("train.meshmap")
K_CHOICES = (1, 2, 4, 8, 16, 32)
RIDGE = 1e-3
# The faces a map is fitted on and chosen with, per target scheme: (dataset, fit split, held-out split).
SOURCES = {"68": [("300w", "fit", "val")], "98": [("wflw", "fewshot_fit", "fewshot_val"), ("300w", "fit", "val")]}


def meshes(samples, peer: MediaPipePeer, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(F,468,2) meshes and a mask of the faces MediaPipe found (the others are NaN)."""
    out = np.full((len(samples), 468, 2), np.nan, np.float32)
    for i, s in enumerate(tqdm(samples, desc="mediapipe", disable=not progress, leave=False)):
        out[i] = peer.predict_crops(load_image(s.image_path), crop.gt_crop_box(s.landmarks, 1.1)[None])[0]
    return out, ~np.isnan(out[:, 0, 0])


def collect(scheme: str, data: Path, split_of: int, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Meshes, targets (NaN where a face does not label a point) and inter-ocular distances."""
    peer = MediaPipePeer(scheme=None)
    sch = get_scheme(scheme)
    ms, ts, iods = [], [], []
    for name, *splits in SOURCES[scheme]:
        samples = read_dataset(name, sibling_root(data, name), splits[split_of])
        m, ok = meshes(samples, peer, progress)
        t = np.stack([s.landmarks for s in samples]).astype(np.float32)
        t = embed_points(t, get_scheme(t.shape[1]).name, scheme) if t.shape[1] != sch.num_points else t
        src = get_scheme(samples[0].landmarks.shape[0])
        iod = src.norm_distance(np.stack([s.landmarks for s in samples]))
        log.info("%s/%s: MediaPipe found %d of %d faces", name, splits[split_of], ok.sum(), len(ok))
        ms.append(m[ok]), ts.append(t[ok]), iods.append(iod[ok])
    return np.concatenate(ms), np.concatenate(ts), np.concatenate(iods)


def fit(mesh: np.ndarray, target: np.ndarray, iod: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,k) indices and weights (rows sum to 1)."""
    centre = mesh.mean(1, keepdims=True)
    m, t = (mesh - centre) / iod[:, None, None], (target - centre) / iod[:, None, None]
    mean_m, mean_t = m.mean(0), np.nanmean(t, 0)
    n = target.shape[1]
    idx, w = np.zeros((n, k), np.int64), np.zeros((n, k), np.float32)
    for j in range(n):
        near = np.argsort(np.linalg.norm(mean_m - mean_t[j], axis=1))[:k]
        has = ~np.isnan(t[:, j, 0])
        a = m[has][:, near, :].transpose(0, 2, 1).reshape(-1, k)      # (2F, k): x rows then y rows per face
        b = t[has, j, :].reshape(-1)
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = 2 * (a.T @ a + RIDGE * len(b) * np.eye(k))
        kkt[:k, k] = kkt[k, :k] = 1.0
        sol = np.linalg.solve(kkt, np.concatenate([2 * a.T @ b, [1.0]]))
        idx[j], w[j] = near, sol[:k]
    return idx, w


def score(mesh, target, iod, idx, w) -> float:
    pred = np.einsum("fnkd,nk->fnd", mesh[:, idx, :], w)
    err = np.linalg.norm(pred - target, axis=-1) / iod[:, None]
    return float(np.nanmean(err))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.meshmap", description=__doc__.splitlines()[0])
    p.add_argument("scheme", choices=sorted(SOURCES))
    p.add_argument("--data", type=Path, required=True, help="the folder holding 300w/ (and wflw/)")
    p.add_argument("--out", type=Path, help=f"default: zoo/weights/{MEDIAPIPE_FOLDER}/map_<scheme>.json")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fit_set = collect(a.scheme, a.data, 0, not a.quiet)
    val_set = collect(a.scheme, a.data, 1, not a.quiet)
    trials = {k: score(*val_set, *fit(*fit_set, k)) for k in K_CHOICES}
    best = min(trials, key=trials.get)
    log.info("held-out NME by K: %s; chose K=%d", {k: round(100 * v, 3) for k, v in trials.items()}, best)
    idx, w = fit(*fit_set, best)
    sources = ", ".join(f"{d}/{s}" for d, s, _ in SOURCES[a.scheme])
    held = ", ".join(f"{d}/{v}" for d, _, v in SOURCES[a.scheme])
    out = a.out or files.BUNDLED_DIR / MEDIAPIPE_FOLDER / f"map_{a.scheme}.json"
    record = {"scheme": a.scheme, "k": best, "indices": idx.tolist(), "weights": np.round(w, 6).tolist(),
              "fitted_on": f"{sources} ({len(fit_set[0])} faces MediaPipe found; K chosen on {held})",
              "heldout_nme_by_k": {str(k): round(v, 5) for k, v in trials.items()},
              "command": "python -m train.meshmap " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))}
    out.write_text(json.dumps(record) + "\n")
    print(f"{out}: K={best}, held-out NME {100 * trials[best]:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
