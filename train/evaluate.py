"""Evaluate a landmarker (zoo entry, model folder or peer) on a dataset split under a named protocol.

    python -m train.evaluate pipnet_r18_300w --data ../shared/data/300w --split common \
        --json runs/eval.json --csv runs/eval.csv --ced runs/ced.png
    python -m train.evaluate pipnet_r18_300w --data ../shared/data/300w --protocol detector --detector faceboxes_v2
    python -m train.evaluate dlib --data ../shared/data/300w                # peers: dlib, dlib_givenbox, pfld_ghostone
    python -m train.evaluate pipnet_r18_300w --data ../shared/data/wflw --dataset wflw --points 68   # WFLW-68
    python -m train.evaluate pipnet_r18_300w --data ../shared/data/300w --robustness all --seed 0

Protocols (train/protocols.py): "gt" crops each face from its ground-truth landmark box x the entry's
`gt_box_scale` (1.1; PIPNet's protocol); "detector" runs the named detector on the whole image as a user's
`zoo.load(name)(image)` does, matches detections to faces by IoU, and counts missed faces as failures.
NME is normalised per the landmark scheme (inter-ocular, or the face box for AFLW). A model whose scheme
differs from the data's is scored in the scheme both map to (zoo.schemes.convert_points: WFLW-68 for a
68-point model on WFLW, or a 98-point model on 300-W). Beside the headline NME/FR/AUC the result holds NME per
face region, per attribute subset (WFLW) or folder (300-W), per yaw bin (train/pose.py: yaw from a
scaled-orthographic fit of six ground-truth landmarks to a generic 3-D face) and, with --robustness, the
change in NME under blur, JPEG 30, 1/4 downscale, low light and an occluder (train/perturb.py, seeded).
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

from zoo.metrics import nme, plot_ced
from zoo.schemes import Scheme, convert_points, get_scheme

from .breakdown import SubsetMetrics, group_metrics, point_errors, pose_metrics, region_nme, subset_masks, yaw_of
from .datasets import DATASETS, DEFAULT_SPLITS, Sample, read_dataset
from .perturb import PERTURBATIONS, perturb
from .protocols import PROTOCOLS, CachedDetector, EvalProtocol, boxes_from, predict_image

log = logging.getLogger(__name__)


class Landmarker(Protocol):
    scheme: Scheme
    entry: Any          # .preprocess.gt_box_scale, .preprocess.box_rule

    def predict_crops(self, image_rgb: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray: ...


@dataclass
class EvalResult:
    errors: np.ndarray              # (n,) per-face NME, fractions; NaN for faces the detector missed
    names: list[str]
    nme: float
    fr: float
    auc: float
    n: int
    threshold: float = 0.1
    missed: int = 0                 # faces no detection matched (detector protocol): NaN errors, failures
    # WFLW attribute subsets (pose, ..., blur), AFLW frontal, and per-folder results (300-W helen/testset)
    subsets: dict[str, SubsetMetrics] = field(default_factory=dict)
    points: str = ""                # the scheme scored in ("68" for WFLW-68)
    protocol: str = "gt"
    boxes: str = "ground truth"     # where the face boxes came from
    regions: dict[str, float] = field(default_factory=dict)        # NME per face region
    pose: dict[str, SubsetMetrics] = field(default_factory=dict)   # per |yaw| bin
    robustness: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as fractions, with the breakdowns (JSON-ready)."""
        return {"nme": self.nme, "fr": self.fr, "auc": self.auc, "n": self.n, "threshold": self.threshold,
                "missed": self.missed, "points": self.points, "protocol": self.protocol, "boxes": self.boxes,
                "subsets": {k: asdict(v) for k, v in self.subsets.items()}, "regions": self.regions,
                "pose": {k: asdict(v) for k, v in self.pose.items()}, "robustness": self.robustness}


def _group_by_image(samples: Sequence[Sample]) -> list[list[int]]:
    """Sample indices grouped per image (WFLW lists several faces of one image), in first-seen order."""
    groups: dict[Any, list[int]] = {}
    for i, s in enumerate(samples):
        key = str(s.image_path) if s.image_path is not None else ("embedded", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def scoring_scheme(model_scheme: Scheme, data_scheme: Scheme, points: str | Scheme | None = None) -> Scheme:
    """The scheme predictions are scored in: `points` if given, else the data's when the model's points map
    onto it (98 -> 68), else the model's when the data's map onto it (WFLW-68); ValueError otherwise."""
    def maps(src: Scheme, dst: Scheme) -> bool:
        try:
            convert_points(np.zeros((src.num_points, 2)), src.name, dst.name)
            return True
        except Exception:
            return False

    if points is not None:
        target = points if isinstance(points, Scheme) else get_scheme(points)
        candidates = [target]
    else:
        candidates = [data_scheme, model_scheme]
    for target in candidates:
        if maps(model_scheme, target) and maps(data_scheme, target):
            return target
    want = candidates[0]
    raise ValueError(f"cannot score a {model_scheme.num_points}-point model ({model_scheme.name}) on "
                     f"{data_scheme.num_points}-point annotations in scheme {want.name} ({want.num_points} points): "
                     "no point map between them; pick a model trained on this dataset")


def predict(model: Landmarker, samples: Sequence[Sample], protocol: EvalProtocol = EvalProtocol(),
            detector: Any = None, perturbation: str | None = None, seed: int = 0, batch: int = 16,
            progress: bool = True) -> np.ndarray:
    """(n, N, 2) predictions in the model's scheme, image pixels; NaN rows for missed faces. Images are decoded
    (and perturbed) `batch` ahead in parallel while the model runs; all faces of one image go together."""
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to evaluate")
    if protocol.name == "detector" and detector is None:
        from zoo.detectors import load_detector
        detector = load_detector(protocol.detector)
        if protocol.pipnet_rule:
            detector.crop_rule = None
    preds = np.zeros((len(samples), model.scheme.num_points, 2), dtype=np.float64)
    groups = _group_by_image(samples)
    batch = max(1, int(batch))

    def load(group: list[int]) -> np.ndarray:
        image = samples[group[0]].load_image()
        if perturbation:
            image = perturb(perturbation, image, [samples[i].landmarks for i in group], seed, samples[group[0]].name)
        return image

    from tqdm import tqdm

    desc = f"{getattr(model, 'name', 'model')} {protocol.key}" + (f" {perturbation}" if perturbation else "")
    with ThreadPoolExecutor(max_workers=min(batch, 8)) as pool, \
            tqdm(total=len(samples), disable=not progress, unit="face", desc=desc, leave=False) as bar:
        chunks = [groups[i:i + batch] for i in range(0, len(groups), batch)]
        pending = [pool.submit(load, g) for g in chunks[0]]
        for c, chunk in enumerate(chunks):
            current = pending
            # Decode the next chunk while this one runs through the model.
            pending = [pool.submit(load, g) for g in chunks[c + 1]] if c + 1 < len(chunks) else []
            for group, fut in zip(chunk, current):
                out = predict_image(model, fut.result(), [samples[i].landmarks for i in group], protocol, detector)
                if out.shape != (len(group), model.scheme.num_points, 2):
                    raise ValueError(f"the model returned shape {out.shape}, expected "
                                     f"({len(group)}, {model.scheme.num_points}, 2)")
                preds[group] = out
                bar.update(len(group))
    return preds


def score(preds: np.ndarray, samples: Sequence[Sample], model_scheme: Scheme, points: str | Scheme | None = None,
          threshold: float = 0.1) -> EvalResult:
    """NME / FR / AUC and the breakdowns of `preds` (model scheme) against the samples' ground truth."""
    samples = list(samples)
    counts = {s.landmarks.shape[0] for s in samples}
    if len(counts) != 1:
        raise ValueError(f"the samples mix annotations of {sorted(counts)} points")
    data_scheme = get_scheme(counts.pop())
    scheme = scoring_scheme(model_scheme, data_scheme, points)
    pred = convert_points(preds, model_scheme.name, scheme.name)
    gt = convert_points(np.stack([s.landmarks for s in samples]).astype(np.float64), data_scheme.name, scheme.name)
    boxes = None
    if scheme.norm_points is None:
        # The dataset's face box where it has one (AFLW: box_size square), else the landmark box.
        boxes = np.stack([s.box if s.box is not None else
                          np.concatenate([s.landmarks.min(0), s.landmarks.max(0)]) for s in samples])
    errors = nme(pred, gt, scheme, boxes)

    names = [s.name for s in samples]
    for group in _group_by_image(samples):
        if len(group) > 1:       # several faces in one image: tell them apart in the CSV
            for j, i in enumerate(group):
                names[i] = f"{names[i]}#{j}"
    head = group_metrics(errors, threshold)
    subsets = {k: group_metrics(errors[m], threshold) for k, m in subset_masks(samples).items()}
    yaw = yaw_of(samples, data_scheme.name)
    return EvalResult(errors, names, head.nme, head.fr, head.auc, head.n, threshold, int(np.isnan(errors).sum()),
                      subsets, points=scheme.name, regions=region_nme(point_errors(pred, gt, scheme, boxes), scheme),
                      pose=pose_metrics(errors, yaw, threshold) if yaw is not None else {})


def evaluate(landmarker: Landmarker, samples: Sequence[Sample], scheme: Scheme | str | None = None,
             batch: int = 16, progress: bool = True, threshold: float = 0.1, detector: Any = None,
             protocol: EvalProtocol | str | None = None, perturbation: str | None = None,
             seed: int = 0) -> EvalResult:
    """Evaluate `landmarker` on `samples` under `protocol` ("gt", or an EvalProtocol("detector", "haar"));
    a `detector` object alone means the detector protocol with it. `scheme` is the scheme to score in (default:
    see scoring_scheme)."""
    if isinstance(protocol, str):
        protocol = EvalProtocol(protocol)
    if protocol is None:
        protocol = EvalProtocol("detector", getattr(detector, "name", "detector")) if detector else EvalProtocol()
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to evaluate")
    scoring_scheme(landmarker.scheme, get_scheme(samples[0].landmarks.shape[0]), scheme)    # fail before running
    preds = predict(landmarker, samples, protocol, detector, perturbation, seed, batch, progress)
    result = score(preds, samples, landmarker.scheme, scheme, threshold)
    result.protocol, result.boxes = protocol.key, boxes_from(landmarker, protocol)
    return result


def robustness(model: Landmarker, samples: Sequence[Sample], clean: EvalResult | dict[str, EvalResult],
               protocol: EvalProtocol = EvalProtocol(), detector: Any = None, names: Sequence[str] = tuple(PERTURBATIONS),
               seed: int = 0, batch: int = 16, progress: bool = True) -> None:
    """Run each perturbation and store, in each clean result's `robustness`, its NME/FR/AUC and the change
    against clean (`clean` may map several scoring schemes to results of the same predictions: one run each)."""
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {unknown}; choose from {list(PERTURBATIONS)}")
    cleans = clean if isinstance(clean, dict) else {clean.points: clean}
    for name in names:
        preds = predict(model, samples, protocol, detector, name, seed, batch, progress)
        for points, c in cleans.items():
            c.robustness[name] = robustness_entry(score(preds, samples, model.scheme, points, c.threshold),
                                                  c.nme, c.fr, seed)


def robustness_entry(perturbed: EvalResult, clean_nme: float, clean_fr: float, seed: int) -> dict[str, float]:
    """The stored form of one perturbation's result: its NME/FR/AUC and the change against clean."""
    r = perturbed
    return {"nme": r.nme, "fr": r.fr, "auc": r.auc, "missed": r.missed, "n": r.n,
            "d_nme": r.nme - clean_nme, "d_fr": r.fr - clean_fr, "seed": seed}


def load_landmarker(name: str, backend: str = "torch", path: str | Path | None = None,
                    detector: Any = "auto") -> Landmarker:
    """A peer (dlib, dlib_givenbox, pfld_ghostone; `path`: its model file; its own detector), a folder with
    config.json + model.safetensors, or a zoo entry name."""
    from zoo import peers

    if peers.is_peer(name.lower()):
        return peers.load_peer(name.lower(), path)
    import zoo

    if Path(name).is_dir():
        return zoo.load_folder(Path(name), backend=backend, detector=detector)
    return zoo.load(name, backend=backend, detector=detector, int8_guard=False)    # measure what was asked for


def format_table(result: EvalResult, model: str, dataset: str, split: str) -> str:
    t = int(round(result.threshold * 100))
    rows = [("subset", "n", "NME%", f"FR@{t}%", f"AUC@{t}%"),
            (f"{dataset}/{split}", str(result.n), f"{result.nme * 100:.3f}", f"{result.fr * 100:.2f}",
             f"{result.auc * 100:.2f}")]
    for k, v in (*result.subsets.items(), *result.pose.items()):
        rows.append((f"  {k}", str(v.n), f"{v.nme * 100:.3f}", f"{v.fr * 100:.2f}", f"{v.auc * 100:.2f}"))
    for k, v in result.robustness.items():
        rows.append((f"  {k} ({v['d_nme'] * 100:+.2f})", str(v["n"]), f"{v['nme'] * 100:.3f}",
                     f"{v['fr'] * 100:.2f}", f"{v['auc'] * 100:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"model: {model}  points: {result.points}  boxes: {result.boxes}"
             + (f"  ({result.missed} face(s) missed by the detector)" if result.missed else "")]
    for r in rows:
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    if result.regions:
        lines.append("regions NME%: " + ", ".join(f"{k} {v * 100:.2f}" for k, v in result.regions.items()))
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
    p.add_argument("model", metavar="NAME_OR_FOLDER",
                   help="zoo entry name, model folder, or a peer (dlib, dlib_givenbox, pfld_ghostone)")
    p.add_argument("--data", required=True, type=Path, help="dataset root folder")
    p.add_argument("--dataset", choices=DATASETS, help="dataset format (default: the model's dataset)")
    p.add_argument("--format", choices=["pts"], help="same as --dataset pts: any folder of images + .pts")
    p.add_argument("--split", help="300w: common|challenging|full|train; wflw: test|fewshot_train|train|pose|...|blur; "
                                   "cofw: test|train; aflw: test|frontal|train")
    p.add_argument("--points", help="score in this scheme, e.g. 68 for WFLW-68 (default: the data's, mapped)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="gt",
                   help="gt: crops from the ground-truth landmark box x1.1 (PIPNet's protocol); detector: the "
                        "--detector on the whole image, matched by IoU, misses fail")
    p.add_argument("--detector", default="faceboxes_v2", help="detector for --protocol detector (haar, faceboxes_v2)")
    p.add_argument("--boxes", help=argparse.SUPPRESS)      # older spelling: --boxes DETECTOR = --protocol detector
    p.add_argument("--pipnet-rule", action="store_true",
                   help="with a detector: crop by PIPNet demo's rule instead of the detector's measured one")
    p.add_argument("--robustness", nargs="*", metavar="NAME",
                   help=f"also run perturbations ({', '.join(PERTURBATIONS)}; none listed = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    p.add_argument("--weights", type=Path, help="a peer's model file (pfld_ghostone's .onnx)")
    p.add_argument("--json", type=Path, help="write metrics (fractions) and breakdowns as JSON")
    p.add_argument("--csv", type=Path, help="write per-image NME as CSV")
    p.add_argument("--ced", type=Path, help="write the CED curve as PNG")
    p.add_argument("--batch", type=int, default=16, help="images decoded ahead in parallel")
    p.add_argument("--limit", type=int, help="only the first N faces")
    p.add_argument("--threshold", type=float, default=0.1, help="failure / AUC threshold (fraction)")
    p.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default="torch",
                   help="onnx-int8 measures the int8 graph even where zoo.load's NME guard would refuse it")
    p.add_argument("--no-progress", action="store_true")
    return p


def metrics_doc(result: EvalResult, model: str, dataset: str, split: str, scheme: Scheme,
                command: str) -> dict[str, Any]:
    """The registry / model-card form: headline fractions, breakdowns, and what was measured how."""
    s = get_scheme(result.points) if result.points else scheme
    return {**result.summary(), "split": split, "dataset": dataset, "model": model, "scheme": scheme.name,
            "norm": s.norm_desc, "command": command}


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
    result = evaluate(lm, samples, progress=progress)
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
        if args.boxes and args.boxes != "gt":
            args.protocol, args.detector = "detector", args.boxes
        protocol = EvalProtocol(args.protocol, args.detector if args.protocol == "detector" else None,
                                args.pipnet_rule and args.protocol == "detector")
        lm = load_landmarker(args.model, args.backend, args.weights) if args.weights else \
            load_landmarker(args.model, args.backend)
        dataset = "pts" if args.format == "pts" else args.dataset or getattr(lm.entry, "dataset", None)
        if dataset not in DATASETS:
            raise ValueError(f"model {args.model!r} names no dataset: pass --dataset ({'|'.join(DATASETS)})")
        split = args.split or DEFAULT_SPLITS[dataset]
        samples = read_dataset(dataset, args.data, split)
        if args.limit:
            samples = samples[:args.limit]
        detector = None
        if protocol.name == "detector":
            from zoo.detectors import load_detector
            detector = CachedDetector(load_detector(protocol.detector))
            if protocol.pipnet_rule:
                detector.crop_rule = None       # falls back to the weight's box_rule: PIPNet demo's
        result = evaluate(lm, samples, args.points, batch=args.batch, progress=not args.no_progress,
                          threshold=args.threshold, detector=detector, protocol=protocol)
        if args.robustness is not None:
            robustness(lm, samples, result, protocol, detector, args.robustness or tuple(PERTURBATIONS),
                       args.seed, args.batch, not args.no_progress)
    except (ZooError, ValueError, FileNotFoundError, ImportError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print(format_table(result, args.model, dataset, split))
    doc = metrics_doc(result, args.model, dataset, split, lm.scheme,
                      shlex.join(["python", "-m", "train.evaluate", *argv]))
    write_outputs(doc, result, args.json, args.csv, args.ced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
