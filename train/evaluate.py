"""Evaluate a landmarker on a dataset split with ground-truth crops (PIPNet's protocol).

    python -m train.evaluate pipnet_r18_300w --data ../shared/data/300w --split common \
        --json runs/eval.json --csv runs/eval.csv --ced runs/ced.png
    python -m train.evaluate runs/my_model/ --data ../shared/data/300w     # a folder: config.json + weights
    python -m train.evaluate dlib --data ../shared/data/300w                # dlib's 68-point predictor

Each face is cropped by the landmark box scaled by the entry's `gt_box_scale` (1.1), so detector misses
play no part; NME is normalised per the landmark scheme (inter-ocular, or the face box for AFLW).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from zoo.crop import gt_crop_box
from zoo.schemes import Scheme

from .datasets import DATASETS, DEFAULT_SPLITS, SUBSET_FLAGS, Sample, read_dataset
from zoo.metrics import auc, failure_rate, nme, plot_ced

log = logging.getLogger(__name__)


class Landmarker(Protocol):
    scheme: Scheme
    entry: Any          # .preprocess.gt_box_scale

    def predict_crops(self, image_rgb: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray: ...


@dataclass
class SubsetMetrics:
    nme: float
    fr: float
    auc: float
    n: int


@dataclass
class EvalResult:
    errors: np.ndarray              # (n,) per-face NME, fractions
    names: list[str]
    nme: float
    fr: float
    auc: float
    n: int
    threshold: float = 0.1
    missed: int = 0                 # faces the detector did not find (--boxes DETECTOR): NaN errors, failures
    # WFLW attribute subsets (pose, ..., blur), AFLW frontal, and per-folder results (300-W helen/testset)
    subsets: dict[str, SubsetMetrics] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as fractions (JSON-ready)."""
        return {"nme": self.nme, "fr": self.fr, "auc": self.auc, "n": self.n, "threshold": self.threshold,
                "missed": self.missed,
                "subsets": {k: asdict(v) for k, v in self.subsets.items()}}


def _metrics(errors: np.ndarray, threshold: float) -> SubsetMetrics:
    """NME over the faces that have a prediction; FR and AUC count missed faces (NaN) as failures."""
    found = errors[np.isfinite(errors)]
    return SubsetMetrics(float(np.mean(found)) if len(found) else float("nan"), failure_rate(errors, threshold),
                         auc(errors, threshold), int(len(errors)))


def detector_crops(detector: Any, image: np.ndarray, landmarks: Sequence[np.ndarray], rule: Any) -> list:
    """Each face's crop box from the detection that matches it (the real-use protocol), or None if missed."""
    from zoo.crop import detector_crop_box, match_face

    boxes, _ = detector(image)
    rule = getattr(detector, "crop_rule", None) or rule
    picks = [match_face(boxes, lm) for lm in landmarks]
    return [None if j is None else detector_crop_box(boxes[j], rule) for j in picks]


def _subset_masks(samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    masks: dict[str, np.ndarray] = {}
    for flag in SUBSET_FLAGS:
        m = np.array([s.attributes.get(flag, 0) == 1 for s in samples])
        if m.any():
            masks[flag] = m
    folders = sorted({s.subset for s in samples})
    if len(folders) > 1:
        for f in folders:
            masks[f] = np.array([s.subset == f for s in samples])
    return masks


def _group_by_image(samples: Sequence[Sample]) -> list[list[int]]:
    """Sample indices grouped per image (WFLW lists several faces of one image), in first-seen order."""
    groups: dict[Any, list[int]] = {}
    for i, s in enumerate(samples):
        key = str(s.image_path) if s.image_path is not None else ("embedded", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def evaluate(landmarker: Landmarker, samples: Sequence[Sample], scheme: Scheme | None = None, batch: int = 16,
             progress: bool = True, threshold: float = 0.1, detector: Any = None) -> EvalResult:
    """NME / FR / AUC of `landmarker` on `samples` with ground-truth crops, or, given a `detector`, with the
    crops its matched detections give (faces it misses count as failures).

    `batch` images are decoded ahead in parallel while the model runs; all faces of one image go to
    `predict_crops` together. `scheme` defaults to the landmarker's.
    """
    scheme = scheme or landmarker.scheme
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to evaluate")
    if landmarker.scheme.num_points != scheme.num_points:
        raise ValueError(f"the model predicts {landmarker.scheme.num_points} points, the scheme "
                         f"{scheme.name} has {scheme.num_points}")
    counts = {s.landmarks.shape[0] for s in samples}
    if counts != {scheme.num_points}:
        raise ValueError(f"the dataset has {sorted(counts)}-point annotations but the model predicts "
                         f"{scheme.num_points} points ({scheme.name}): pick a model trained on this dataset")
    scale = float(landmarker.entry.preprocess.gt_box_scale)
    preds = np.zeros((len(samples), scheme.num_points, 2), dtype=np.float64)
    groups = _group_by_image(samples)
    batch = max(1, int(batch))

    def load(group: list[int]) -> np.ndarray:
        return samples[group[0]].load_image()

    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=min(batch, 8)) as pool, \
            tqdm(total=len(samples), disable=not progress, unit="face", desc="evaluate") as bar:
        chunks = [groups[i:i + batch] for i in range(0, len(groups), batch)]
        pending = [pool.submit(load, g) for g in chunks[0]] if chunks else []
        for c, chunk in enumerate(chunks):
            current = pending
            # Decode the next chunk while this one runs through the model.
            pending = [pool.submit(load, g) for g in chunks[c + 1]] if c + 1 < len(chunks) else []
            for group, fut in zip(chunk, current):
                image = fut.result()
                if detector is None:
                    crops = [gt_crop_box(samples[i].landmarks, scale) for i in group]
                else:
                    crops = detector_crops(detector, image, [samples[i].landmarks for i in group],
                                           landmarker.entry.preprocess.box_rule)
                found = [i for i, c in zip(group, crops) if c is not None]
                preds[[i for i in group if i not in found]] = np.nan
                if found:
                    out = np.asarray(landmarker.predict_crops(image, np.stack([c for c in crops if c is not None])),
                                     dtype=np.float64)
                    if out.shape != (len(found), scheme.num_points, 2):
                        raise ValueError(f"predict_crops returned shape {out.shape}, expected "
                                         f"({len(found)}, {scheme.num_points}, 2)")
                    preds[found] = out
                bar.update(len(group))

    gt = np.stack([s.landmarks for s in samples]).astype(np.float64)
    boxes = None
    if scheme.norm_points is None:
        # The dataset's face box where it has one (AFLW: box_size square), else the landmark box.
        boxes = np.stack([s.box if s.box is not None else
                          np.concatenate([s.landmarks.min(0), s.landmarks.max(0)]) for s in samples])
    errors = nme(preds, gt, scheme, boxes)

    names = [s.name for s in samples]
    for group in groups:
        if len(group) > 1:       # several faces in one image: tell them apart in the CSV
            for j, i in enumerate(group):
                names[i] = f"{names[i]}#{j}"
    head = _metrics(errors, threshold)
    subsets = {k: _metrics(errors[m], threshold) for k, m in _subset_masks(samples).items()}
    missed = int(np.isnan(errors).sum())
    return EvalResult(errors, names, head.nme, head.fr, head.auc, head.n, threshold, missed, subsets)


def load_landmarker(name: str, backend: str = "torch") -> Landmarker:
    """A peer (`dlib`, `dlib_givenbox`, `pfld_ghostone`), a folder with config.json + model.safetensors, or a
    zoo entry name."""
    from zoo.peers import is_peer, load_peer

    if is_peer(name.lower()):
        return load_peer(name.lower())
    import zoo

    if Path(name).is_dir():
        return zoo.load_folder(Path(name), backend=backend)
    return zoo.load(name, backend=backend)


def format_table(result: EvalResult, model: str, dataset: str, split: str) -> str:
    t = int(round(result.threshold * 100))
    rows = [("subset", "n", "NME%", f"FR@{t}%", f"AUC@{t}%"),
            (f"{dataset}/{split}", str(result.n), f"{result.nme * 100:.3f}", f"{result.fr * 100:.2f}",
             f"{result.auc * 100:.2f}")]
    for k, v in result.subsets.items():
        rows.append((f"  {k}", str(v.n), f"{v.nme * 100:.3f}", f"{v.fr * 100:.2f}", f"{v.auc * 100:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"model: {model}" + (f"  ({result.missed} face(s) missed by the detector)" if result.missed else "")]
    for r in rows:
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(lines)


def write_csv(path: Path, result: EvalResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "nme"])
        for name, e in zip(result.names, result.errors):
            w.writerow([name, f"{e:.6f}"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="NAME_OR_FOLDER", help="zoo entry name, model folder, or a peer: dlib (own HOG "
                   "detector), dlib_givenbox, pfld_ghostone ($ZOO_HOME/pfld_ghostone/)")
    p.add_argument("--data", required=True, type=Path, help="dataset root folder")
    p.add_argument("--dataset", choices=DATASETS, help="dataset format (default: the model's dataset)")
    p.add_argument("--format", choices=["pts"], help="same as --dataset pts: any folder of images + .pts")
    p.add_argument("--split", help="300w: common|challenging|full|train; wflw: test|train|pose|...|blur; "
                                   "cofw: test|train; aflw: test|frontal|train")
    p.add_argument("--json", type=Path, help="write headline metrics (fractions) as JSON")
    p.add_argument("--csv", type=Path, help="write per-image NME as CSV")
    p.add_argument("--ced", type=Path, help="write the CED curve as PNG")
    p.add_argument("--batch", type=int, default=16, help="images decoded ahead in parallel")
    p.add_argument("--limit", type=int, help="only the first N faces")
    p.add_argument("--threshold", type=float, default=0.1, help="failure / AUC threshold (fraction)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    p.add_argument("--boxes", default="gt", help="crops from: 'gt' (landmark box x1.1, PIPNet's protocol) or a "
                                                 "zoo detector (haar, faceboxes_v2) as in real use; missed faces fail")
    p.add_argument("--pipnet-rule", action="store_true",
                   help="with a detector: crop by PIPNet demo's rule instead of the detector's measured one")
    p.add_argument("--no-progress", action="store_true")
    return p


def metrics_doc(result: EvalResult, model: str, dataset: str, split: str, scheme: Scheme,
                command: str) -> dict[str, Any]:
    """The registry / model-card form: headline fractions, subsets, and what was measured how."""
    return {**result.summary(), "split": split, "dataset": dataset, "model": model, "scheme": scheme.name,
            "norm": scheme.norm_desc, "command": command}


def write_outputs(doc: dict[str, Any], result: EvalResult, json_path: Path | None = None,
                  csv_path: Path | None = None, ced_path: Path | None = None) -> None:
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1) + "\n")
    if csv_path:
        write_csv(csv_path, result)
    if ced_path:
        plot_ced({doc["model"]: result.errors}, ced_path, result.threshold,
                 title=f"CED, {doc['dataset']} {doc['split']} (n={result.n})")


def evaluate_folder(folder: str | Path, data_dir: str | Path, dataset: str, split: str | None = None,
                    out_dir: str | Path | None = None, backend: str = "torch", progress: bool = True,
                    limit: int | None = None) -> dict[str, Any]:
    """Evaluate a model folder (config.json + model.safetensors, e.g. a training run's output) and return
    the metrics dict; with `out_dir`, also write metrics.json, per_image_nme.csv and ced.png there."""
    split = split or DEFAULT_SPLITS[dataset]
    lm = load_landmarker(str(folder), backend)
    samples = read_dataset(dataset, Path(data_dir), split)
    if limit:
        samples = samples[:limit]
    result = evaluate(lm, samples, lm.scheme, progress=progress)
    argv = [str(folder), "--data", str(data_dir), "--dataset", dataset, "--split", split]
    if limit:
        argv += ["--limit", str(limit)]
    doc = metrics_doc(result, str(folder), dataset, split, lm.scheme,
                      shlex.join(["python", "-m", "train.evaluate", *argv]))
    if out_dir is not None:
        out = Path(out_dir)
        write_outputs(doc, result, out / "metrics.json", out / "per_image_nme.csv", out / "ced.png")
    log.info("%s on %s %s: NME %.3f%%, FR %.2f%%, AUC %.4f (n=%d)", folder, dataset, split,
             result.nme * 100, result.fr * 100, result.auc, result.n)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from zoo.registry import ZooError

    try:
        lm = load_landmarker(args.model, args.backend)
        dataset = "pts" if args.format == "pts" else args.dataset or getattr(lm.entry, "dataset", None)
        if dataset not in DATASETS:
            raise ValueError(f"model {args.model!r} names no dataset: pass --dataset ({'|'.join(DATASETS)})")
        split = args.split or DEFAULT_SPLITS[dataset]
        samples = read_dataset(dataset, args.data, split)
        if args.limit:
            samples = samples[:args.limit]
        detector = None
        if args.boxes != "gt":
            from zoo.detectors import load_detector
            detector = load_detector(args.boxes)
            if args.pipnet_rule:
                detector.crop_rule = None       # falls back to the weight's box_rule: PIPNet demo's
        result = evaluate(lm, samples, lm.scheme, batch=args.batch, progress=not args.no_progress,
                          threshold=args.threshold, detector=detector)
    except (ZooError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print(format_table(result, args.model, dataset, split))
    doc = metrics_doc(result, args.model, dataset, split, lm.scheme,
                      shlex.join(["python", "-m", "train.evaluate", *argv]))
    doc["boxes"] = args.boxes + (" (PIPNet rule)" if args.pipnet_rule and args.boxes != "gt" else "")
    write_outputs(doc, result, args.json, args.csv, args.ced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
