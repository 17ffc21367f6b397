"""Peers as teachers: pseudo-labels for unlabelled faces from several landmarkers, combined per point.

    python -m train.teachers 98 --data ../shared/data --teachers pfld_ghostone mediapipe_98 \
        --unlabeled ../shared/data/wflw/WFLW_annotations/unlabeled_images.txt --complete 300w/train \
        --out runs/teachers/wflw98

Faces: YuNet's faces of at least `min_face` px in the unlabelled photos, and (`--complete`) the labelled faces of
another scheme, whose missing points the teachers fill (300-W's faces lack 30 of WFLW's 98 points; their own 68
labels are kept). Each teacher predicts every face twice, on it and on its mirror image, from the crop of its
first prediction (as selftrain does). Per point, teacher t's prediction gets the weight 1 / (e_t^2 + d_t^2):
e_t its error on that region measured on held-out labelled faces (--val, never the test split), d_t its own
mirror disagreement on this face. The label is the weighted mean; its uncertainty is the weighted spread of the
teachers around it plus the mirror disagreement. Points more uncertain than `max_uncertainty` (fraction of the
inter-ocular distance) are left unlabelled (NaN: the partial-label loss skips them); faces with fewer than
`min_points` of their points labelled are dropped.

The same pipeline run on the held-out faces themselves (--val), whose labels it never sees, measures each teacher
and the combination against ground truth: `val_report.json`. Outputs: `pool.npz` (photo paths, landmarks with
NaN, uncertainty) and `summary.json` (the counts, the weights and the command).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from zoo import crop
from zoo.images import load_image
from zoo.schemes import Scheme, get_scheme, to_scheme

from .datasets import read_dataset, sibling_root
from .evaluate import load_landmarker
from .selftrain import detect_faces, flip_pair, point_disagreement, unlabeled_photos

log = logging.getLogger("train.teachers")


@dataclass(frozen=True)
class PoolSettings:
    min_face: int = 64                    # px, the detector box's shorter side
    max_uncertainty: float = 0.08         # fraction of the inter-ocular distance
    min_points: float = 0.7               # share of a face's points that must keep a label
    scale: float = 1.1                    # the training crop: the label's landmark box x scale


def teacher_points(teacher: Any, scheme: Scheme, img: np.ndarray, boxes: np.ndarray, first: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(K,N,2) flip-averaged predictions of `teacher` in `scheme` and (K,N) per-point mirror disagreement
    over the inter-ocular distance. `boxes`: detector boxes (first=True: a first pass finds the landmark box)
    or landmark-box crops."""
    if first:
        rough = teacher(img, boxes=boxes)
        crops = crop.gt_crop_box(np.stack([f.landmarks for f in rough]), 1.1) if rough else boxes
    else:
        crops = boxes
    label, dis = point_disagreement(teacher, *flip_pair(teacher, img, crops))
    label = to_scheme(label, teacher.scheme.name, scheme.name)
    dis = to_scheme(np.repeat(dis[..., None], 2, -1), teacher.scheme.name, scheme.name)[..., 0]
    return label.astype(np.float32), dis.astype(np.float32)


def labels_in(sample: Any, scheme: Scheme) -> np.ndarray:
    """A labelled face's own landmarks in `scheme`'s layout (NaN where its dataset has no such point)."""
    return to_scheme(sample.landmarks[None], get_scheme(len(sample.landmarks)).name, scheme.name)[0]


def combine(preds: np.ndarray, flips: np.ndarray, prior: np.ndarray, scheme: Scheme
            ) -> tuple[np.ndarray, np.ndarray]:
    """preds (T,K,N,2), flips (T,K,N), prior (T,N) per-teacher error -> label (K,N,2), uncertainty (K,N)."""
    w = 1.0 / (prior[:, None, :] ** 2 + flips ** 2 + 1e-4)
    w = np.where(np.isnan(preds[..., 0]) | np.isnan(flips), 0.0, w)
    total = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        label = np.nansum(np.nan_to_num(preds) * w[..., None], 0) / total[..., None]
        label[total == 0] = np.nan
        norm = np.maximum(scheme.norm_distance(np.nan_to_num(label)), 1e-6)
        spread = np.sqrt((w * (np.linalg.norm(np.nan_to_num(preds) - label, axis=-1) / norm[None, :, None]) ** 2
                          ).sum(0) / total)
        flip = (w * np.nan_to_num(flips)).sum(0) / total
    return label, np.sqrt(spread ** 2 + flip ** 2)


def run_teachers(teachers: dict[str, Any], scheme: Scheme, faces: list[tuple[Path, np.ndarray, bool]],
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every teacher on every face: (T,F,N,2) predictions and (T,F,N) disagreements; NaN where one found none."""
    t_n, f_n = len(teachers), len(faces)
    preds = np.full((t_n, f_n, scheme.num_points, 2), np.nan, np.float32)
    flips = np.full((t_n, f_n, scheme.num_points), np.nan, np.float32)
    by_photo: dict[Path, list[int]] = {}
    for i, (photo, _, _) in enumerate(faces):
        by_photo.setdefault(photo, []).append(i)
    for photo, idx in tqdm(by_photo.items(), desc="teachers", disable=not progress, leave=False):
        try:
            img = load_image(photo)
        except Exception as e:        # one unreadable photo never stops the run
            log.warning("%s: skipped (%s)", photo, e)
            continue
        for first in (True, False):
            sel = [i for i in idx if faces[i][2] == first]
            if not sel:
                continue
            boxes = np.stack([faces[i][1] for i in sel])
            for t, teacher in enumerate(teachers.values()):
                p, d = teacher_points(teacher, scheme, img, boxes, first)
                preds[t, sel], flips[t, sel] = p, d
    return preds, flips


def priors(teachers: dict[str, Any], scheme: Scheme, val: list[Any], progress: bool) -> tuple[np.ndarray, dict]:
    """(T,N) per-teacher error per point's region on held-out labelled faces (their own labels only), and a
    report: each teacher's NME there, and the combination's (which never sees those labels)."""
    faces = [(s.image_path, crop.gt_crop_box(s.landmarks, 1.1), False) for s in val]
    preds, flips = run_teachers(teachers, scheme, faces, progress)
    gt = np.stack([labels_in(s, scheme) for s in val])
    norm = np.maximum(scheme.norm_distance(np.nan_to_num(gt)), 1e-6)
    err = np.linalg.norm(preds - gt[None], axis=-1) / norm[None, :, None]        # (T,F,N)
    prior = np.full((len(teachers), scheme.num_points), 0.1, np.float32)
    for idx in scheme.regions.values():
        for t in range(len(teachers)):
            e = err[t][:, list(idx)]
            if np.isfinite(e).any():
                prior[t, list(idx)] = np.nanmean(e)
    label, unc = combine(preds, flips, prior, scheme)
    comb = np.linalg.norm(label - gt, axis=-1) / norm[:, None]
    report = {"faces": len(val), "nme": {n: float(np.nanmean(err[t])) for t, n in enumerate(teachers)}}
    report["nme"]["combined"] = float(np.nanmean(comb))
    for cut in (0.05, 0.08, 0.12):
        keep = unc <= cut
        report[f"combined_kept_points_unc<={cut}"] = {"share": float(np.mean(keep)),
                                                       "nme": float(np.nanmean(np.where(keep, comb, np.nan)))}
    report["prior_by_region"] = {n: {r: round(float(prior[t, list(idx)[0]]), 4) for r, idx in scheme.regions.items()}
                                 for t, n in enumerate(teachers)}
    return prior, report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.teachers", description=__doc__.splitlines()[0])
    p.add_argument("scheme", help="the pseudo-labels' scheme (68 or 98)")
    p.add_argument("--data", type=Path, required=True, help="folder holding the datasets (300w/, wflw/)")
    p.add_argument("--teachers", nargs="+", required=True, help="peers or zoo entries/folders")
    p.add_argument("--unlabeled", type=Path, help="folder of photos or a list file (WFLW's unlabeled_images.txt)")
    p.add_argument("--complete", nargs="*", default=[], help="dataset/split whose labelled faces the teachers "
                                                              "complete with the points their scheme lacks")
    p.add_argument("--val", nargs="+", default=["wflw/fewshot_val", "300w/val"],
                   help="held-out labelled faces that weigh the teachers (never a test split)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-uncertainty", type=float, default=PoolSettings.max_uncertainty)
    p.add_argument("--min-points", type=float, default=PoolSettings.min_points)
    p.add_argument("--limit", type=int, help="first N photos / faces of each source (smoke tests)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = PoolSettings(max_uncertainty=a.max_uncertainty, min_points=a.min_points)
    scheme = get_scheme(a.scheme)
    progress = not a.quiet
    teachers = {n: load_landmarker(n, detector=None) for n in a.teachers}
    a.out.mkdir(parents=True, exist_ok=True)
    val = [s for spec in a.val for s in read_dataset(spec.split("/")[0], sibling_root(a.data, spec.split("/")[0]),
                                                      spec.split("/")[1])[:a.limit]]
    if any("test" in spec for spec in a.val):
        raise SystemExit("--val must be held-out training faces, never a test split")
    prior, report = priors(teachers, scheme, val, progress)
    (a.out / "val_report.json").write_text(json.dumps(report, indent=1))
    log.info("held-out NME: %s", {k: round(100 * v, 2) for k, v in report["nme"].items()})

    faces: list[tuple[Path, np.ndarray, bool]] = []
    known: list[np.ndarray | None] = []
    if a.unlabeled:
        photos = unlabeled_photos(a.unlabeled)[:a.limit]
        boxes = detect_faces(photos, "yunet", cfg.min_face, a.out / "detections.json", progress)
        for photo, bs in boxes.items():
            faces += [(Path(photo), np.asarray(b, np.float32), True) for b in bs]
            known += [None] * len(bs)
    for spec in a.complete:
        name, split = spec.split("/")
        for s in read_dataset(name, sibling_root(a.data, name), split)[:a.limit]:
            faces.append((s.image_path, crop.gt_crop_box(s.landmarks, 1.1), False))
            known.append(labels_in(s, scheme))
    preds, flips = run_teachers(teachers, scheme, faces, progress)
    label, unc = combine(preds, flips, prior, scheme)
    for i, k in enumerate(known):            # real labels stay: teachers fill only the missing points
        if k is not None:
            have = ~np.isnan(k[:, 0])
            label[i, have], unc[i, have] = k[have], 0.0
    label[unc > cfg.max_uncertainty] = np.nan
    keep = (~np.isnan(label[..., 0])).mean(1) >= cfg.min_points
    np.savez_compressed(a.out / "pool.npz", photos=np.array([str(f[0]) for f in faces])[keep],
                        landmarks=label[keep], uncertainty=unc[keep],
                        completed=np.array([k is not None for k in known])[keep])
    summary = {"scheme": scheme.name, "teachers": list(teachers), "settings": asdict(cfg), "faces": len(faces),
               "kept": int(keep.sum()), "kept_unlabelled": int((keep & np.array([k is None for k in known])).sum()),
               "labelled_points_share": float(np.mean(~np.isnan(label[keep][..., 0]))) if keep.any() else 0.0,
               "val_nme": report["nme"], "val": a.val,
               "command": "python -m train.teachers " + shlex.join(list(argv if argv is not None else sys.argv[1:]))}
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
