"""Self-training with a curriculum on unlabelled photos, for any zoo entry (PIPNet's semi-supervised setting).

    python -m train.selftrain pipnet_r18_wflw --data ../shared/data/wflw --init runs/wflw/r18_fewshot/final \
        --unlabeled ../shared/data/wflw/WFLW_annotations/unlabeled_images.txt --out runs/wflw/r18_st

Each round: detect faces in the unlabelled photos (once; YuNet by default), pseudo-label them with the current
model, score each label's reliability, keep the most reliable share the curriculum allows, and fine-tune on
the labelled data (the recipe's, partial labels included) plus the kept faces. The next round re-labels with
the new model.

The curriculum (ours, after the paper's coarse-to-fine idea): easy to hard twice over. Faces: round r keeps
the `keep[r]` most reliable share (50%, then 80%). Targets: in the first `coarse_rounds` rounds a pseudo-label
supervises only the score map (which 32-px cell holds each point), later rounds the offsets too.
Reliability: flip consistency, the mean distance between the predictions on the face and on its mirror
image, over the inter-ocular (or box) distance; the label is the average of the two.

Settings are chosen on the recipe's `val_split` (never the test split): every round is scored there and
`best.txt` names the round (0: the starting model) with the lowest validation NME. Test-split scores are
recorded for the report.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from zoo import crop
from zoo.images import image_files, load_image
from zoo.schemes import embed_points

from .datasets import Sample
from .loop import TrainData, Trainer, load_train_data
from .cache import build_crops
from .evaluate import load_landmarker
from .recipes import get_recipe

log = logging.getLogger("train.selftrain")


@dataclass(frozen=True)
class Curriculum:
    keep: tuple[float, ...] = (0.5, 0.8)      # share of reliable faces kept in each round; len = rounds
    coarse_rounds: int = 1                    # rounds whose pseudo-labels supervise the score map only
    max_disagreement: float = 0.1             # flip disagreement (fraction of inter-ocular) above: never kept
    min_face: int = 64                        # detector boxes smaller than this (px, shorter side) are skipped
    epochs: int = 2                           # per round
    lr: float = 3e-4                          # fine-tuning step (no warmup: the model is already trained)


def unlabeled_photos(source: Path) -> list[Path]:
    """Photos from a folder (recursively) or a list file of paths relative to the list's `../WFLW_images`,
    its own folder, or absolute."""
    if source.is_dir():
        return image_files(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such folder or list of photos")
    roots = [source.parent.parent / "WFLW_images", source.parent / "WFLW_images", source.parent]
    photos, missing = [], []
    for line in source.read_text().splitlines():
        if not line.strip():
            continue
        rel = Path(line.strip())
        found = rel if rel.is_absolute() else next((r / rel for r in roots if (r / rel).is_file()), None)
        (photos if found is not None and found.is_file() else missing).append(found or rel)
    if missing:
        log.warning("%s: %d listed photos not found (first: %s)", source, len(missing), missing[0])
    if not photos:
        raise ValueError(f"{source}: lists no photo that exists")
    return photos


def detect_faces(photos: list[Path], detector: str, min_face: int, cache: Path | None = None,
                 progress: bool = True) -> dict[str, list[list[float]]]:
    """Detector boxes of at least `min_face` px per photo (the model does not change them: cached in `cache`)."""
    if cache is not None and cache.is_file():
        return json.loads(cache.read_text())
    from zoo.detectors import load_detector

    det = load_detector(detector)
    found: dict[str, list[list[float]]] = {}
    for p in tqdm(photos, desc="detecting faces", disable=not progress, leave=False):
        try:
            boxes, _ = det(load_image(p))
        except Exception as e:          # one unreadable photo never stops the run
            log.warning("%s: skipped (%s)", p, e)
            continue
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
        found[str(p)] = [[round(float(v), 2) for v in b] for b in boxes[sides >= min_face]]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(found))
    return found


def flip_pair(lm, img: np.ndarray, crop_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,N,2) predictions on the crops and on their mirror images, the latter mapped back to the image."""
    w = img.shape[1]
    a = lm.predict_crops(img, crop_boxes)
    mirrored = crop_boxes.copy()
    mirrored[:, [0, 2]] = (w - 1) - crop_boxes[:, [2, 0]]          # pixel-index coordinates: x -> w - 1 - x
    b = lm.predict_crops(np.ascontiguousarray(img[:, ::-1]), mirrored)[:, lm.scheme.flip_perm]
    b[..., 0] = (w - 1) - b[..., 0]
    return a, b


def point_disagreement(lm, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The label (a + b) / 2 and (K,N) per-point distance |a - b| over the inter-ocular (or box) distance."""
    label = (a + b) / 2
    norm = np.maximum(lm.scheme.norm_distance(label), 1e-6)
    return label, np.linalg.norm(a - b, axis=-1) / norm[:, None]


def flip_consistent(lm, img: np.ndarray, crop_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,N,2) mean of the predictions on the crops and on their mirror images, and (K,) disagreement."""
    label, dis = point_disagreement(lm, *flip_pair(lm, img, crop_boxes))
    return label, dis.mean(-1)


def pseudo_label(lm, boxes: dict[str, list[list[float]]], detector: str, scale: float,
                 progress: bool = True) -> list[tuple[str, np.ndarray, float]]:
    """(photo, landmarks, disagreement) for every detected face: a first prediction from the detector's crop,
    then the flip-consistent label from the crop of that prediction's landmark box x `scale` (the training crop)."""
    rule = lm.rule_for(detector)
    out = []
    for photo, bs in tqdm(boxes.items(), desc="pseudo-labelling", disable=not progress, leave=False):
        if not bs:
            continue
        img = load_image(photo)
        first = lm.predict_crops(img, np.stack([crop.detector_crop_box(np.asarray(b), rule) for b in bs]))
        label, dis = flip_consistent(lm, img, crop.gt_crop_box(first, scale))
        out.extend((photo, lab, float(d)) for lab, d in zip(label, dis))
    return out


def select(labels: list[tuple[str, np.ndarray, float]], keep: float, max_disagreement: float
           ) -> list[tuple[str, np.ndarray, float]]:
    """The most reliable `keep` share of the faces under `max_disagreement`, most reliable first."""
    ok = sorted((x for x in labels if np.isfinite(x[2]) and x[2] <= max_disagreement), key=lambda x: x[2])
    return ok[:int(round(keep * len(ok)))]


def pseudo_data(kept: list[tuple[str, np.ndarray, float]], size: int, scale: float, coarse: bool,
                src_scheme: str, scheme: str, progress: bool = True) -> TrainData:
    """Training crops of the kept faces; labels of a smaller scheme (a 68-point round 0 for a 98-point model)
    supervise only the points they share."""
    samples = [Sample(Path(p), lab.astype(np.float32), None, "pseudo", {}) for p, lab, _ in kept]
    imgs, lms = build_crops(samples, size, scale, progress)      # not cached: labels change every round
    lms = embed_points(lms, src_scheme, scheme)
    n = len(samples)
    return TrainData(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(lms), n,
                     f"{n} pseudo-labelled faces ({'score map only' if coarse else 'all targets'})",
                     torch.full((n,), coarse, dtype=torch.bool))


def score_on(folder: Path, data: Path, spec: str, default_dataset: str) -> float:
    """NME of a model folder on "dataset/split" (or "split" of the recipe's dataset), its data found beside `data`."""
    from .datasets import sibling_root
    from .evaluate import evaluate_folder

    dataset, _, split = spec.rpartition("/")
    dataset = dataset or default_dataset
    root = data if dataset == default_dataset else sibling_root(data, dataset)
    return evaluate_folder(folder, root, dataset, split, progress=False)["nme"]


def run(name: str, data: Path, init: str, unlabeled: Path, out: Path, cur: Curriculum = Curriculum(),
        detector: str = "yunet", device: str = "cpu", progress: bool = True, command: str = "",
        limit: int | None = None, val: str | None = None, report: tuple[str, ...] = ()) -> list[dict]:
    """All rounds; returns (and writes to out/rounds.json) one record per round. `val` ("dataset/split",
    default the recipe's val_split) chooses the round; `report` splits are scored for the record only."""
    import zoo
    from .output import finish
    base = get_recipe(name)
    val = val or base.val_split
    pre, scheme = zoo.registry.get(name).preprocess, zoo.registry.get(name).scheme
    photos = unlabeled_photos(unlabeled)[:limit]
    boxes = detect_faces(photos, detector, cur.min_face, out / "detections.json", progress)
    log.info("%d faces of >= %d px in %d photos (%s)", sum(map(len, boxes.values())), cur.min_face, len(photos),
             detector)
    labelled = load_train_data(base, data, pre.input_size, pre.gt_box_scale, limit, progress=progress)
    records = json.loads((out / "rounds.json").read_text()) if (out / "rounds.json").is_file() else []
    current = records[-1]["folder"] if records else init
    for r in range(len(records), len(cur.keep)):
        t0 = time.perf_counter()
        lm = load_landmarker(current, detector=None)
        labels = pseudo_label(lm, boxes, detector, pre.gt_box_scale, progress)
        kept = select(labels, cur.keep[r], cur.max_disagreement)
        if not kept:
            raise ValueError(f"round {r + 1}: no pseudo-label passed the reliability filter "
                             f"({len(labels)} faces, max disagreement {cur.max_disagreement})")
        coarse = r < cur.coarse_rounds
        pseudo = pseudo_data(kept, pre.input_size, pre.gt_box_scale, coarse, lm.entry.scheme, scheme, progress)
        mix = TrainData.concat([labelled, pseudo])
        recipe = replace(base, init=str(current), epochs=cur.epochs, lr=cur.lr, warmup_epochs=0, seed=base.seed + r)
        folder = out / f"round{r + 1}"
        trainer = Trainer(recipe, mix, folder, device)
        trainer.load_checkpoint()                       # a round cut short resumes where it stopped
        trainer.fit(progress)
        trainer.extra = {"self_training": {"round": r + 1, "of": len(cur.keep), "curriculum": asdict(cur),
                                           "unlabeled": str(unlabeled), "photos": len(photos), "start": str(init),
                                           "labelled_faces": len(labels), "kept": len(kept)}}
        final = finish(trainer, folder, data, True, command, progress)
        rec = {"round": r + 1, "folder": str(final), "started_from": str(current), "faces": len(labels),
               "kept": len(kept), "keep_share": cur.keep[r], "coarse": coarse,
               "disagreement_median_kept": float(np.median([k[2] for k in kept])),
               "test_nme": json.loads((final / "metrics.json").read_text())["nme"],
               "minutes": round((time.perf_counter() - t0) / 60, 1)}
        if val:
            rec["val_nme"] = score_on(final, data, val, base.dataset)
        rec["report"] = {spec: score_on(final, data, spec, base.dataset) for spec in report}
        records.append(rec)
        (out / "rounds.json").write_text(json.dumps(records, indent=1))
        log.info("round %d: kept %d of %d faces, val NME %s", r + 1, len(kept), len(labels), rec.get("val_nme"))
        current = str(final)
    if val:                              # round 0 (the starting model) competes too: self-training may not help
        start = {"round": 0, "folder": str(init), "val_nme": score_on(Path(init), data, val, base.dataset)}
        (out / "round0.json").write_text(json.dumps(start, indent=1))
        best = min([start] + records, key=lambda x: x["val_nme"])
        (out / "best.txt").write_text(best["folder"] + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.selftrain", description=__doc__.splitlines()[0])
    p.add_argument("name", help="zoo entry whose recipe supplies the labelled data and settings")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--init", required=True, help="model folder or zoo entry to start from (round 0)")
    p.add_argument("--unlabeled", type=Path, required=True, help="folder of photos, or a list file of them")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rounds", type=float, nargs="+", help="share kept per round, e.g. 0.5 0.8")
    p.add_argument("--coarse-rounds", type=int)
    p.add_argument("--epochs", type=int, help="per round")
    p.add_argument("--lr", type=float)
    p.add_argument("--min-face", type=int)
    p.add_argument("--max-disagreement", type=float)
    p.add_argument("--val", help="dataset/split that chooses the round (default: the recipe's val_split)")
    p.add_argument("--report", nargs="+", default=[], help="more dataset/split to score each round on")
    p.add_argument("--detector", default="yunet")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--limit", type=int, help="first N photos and labelled faces (smoke tests)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if a.threads:
        torch.set_num_threads(a.threads)
    over = dict(keep=tuple(a.rounds) if a.rounds else None, coarse_rounds=a.coarse_rounds, epochs=a.epochs, lr=a.lr,
                min_face=a.min_face, max_disagreement=a.max_disagreement)
    cur = replace(Curriculum(), **{k: v for k, v in over.items() if v is not None})
    command = "python -m train.selftrain " + shlex.join(argv if argv is not None else sys.argv[1:])
    a.out.mkdir(parents=True, exist_ok=True)
    records = run(a.name, a.data, a.init, a.unlabeled, a.out, cur, a.detector, a.device, not a.quiet, command,
                  a.limit, a.val, tuple(a.report))
    print(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
