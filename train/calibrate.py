"""python -m train.calibrate DETECTOR --data DIR [--dataset 300w] [--split train] [--write] [--stats]

Measures how a zoo detector's boxes relate to the crops the landmark models were trained on (landmark box
x1.1) and stores that rule with the detector's registry entry, so detector boxes are cropped the way each
detector needs rather than with one rule tuned for FaceBoxes.

--stats measures the detector instead (recall, false positives, ms per image), with `--param KEY=VALUE`
overriding its settings (e.g. Haar's max_side, min_face, min_score) to compare them.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from zoo import crop, registry
from zoo.detectors import load_detector
from zoo.images import load_image

from .datasets import read_dataset

log = logging.getLogger("train.calibrate")


def calibrate(detector_name: str, data: Path, dataset: str = "300w", split: str = "train", scale: float = 1.1,
              limit: int | None = None, params: dict[str, Any] | None = None) -> dict:
    det = load_detector(detector_name, **(params or {}))
    samples = read_dataset(dataset, data, split)[:limit]
    dets, crops = [], []
    for s in tqdm(samples, desc=f"calibrating {detector_name}", leave=False):
        boxes, _ = det(s.load_image())
        i = crop.match_face(boxes, s.landmarks)
        if i is not None:
            dets.append(boxes[i])
            crops.append(crop.gt_crop_box(s.landmarks, scale))
    if len(dets) < 10:
        raise ValueError(f"{detector_name} matched only {len(dets)} of {len(samples)} faces: too few to calibrate")
    dets, crops = np.array(dets), np.array(crops)
    rule = crop.fit_crop_rule(dets, crops)

    return {"detector": detector_name, "rule": list(rule), "matched": len(dets), "faces": len(samples),
            "iou_with_rule": round(float(np.median(crop.box_iou(crop.detector_crop_box(dets, rule), crops))), 4),
            "iou_with_pipnet_rule": round(float(np.median(crop.box_iou(crop.detector_crop_box(dets), crops))), 4),
            "command": f"python -m train.calibrate {detector_name} --data {data} --dataset {dataset} --split {split}"}


def detection_stats(detector_name: str, data: Path, dataset: str = "300w", split: str = "common",
                    limit: int | None = None, params: dict[str, Any] | None = None) -> dict:
    """Recall (annotated faces matched by a detection, zoo.crop.match_face), false positives (detections that
    match no annotated face; unannotated real faces in the photo count too) and median ms per image."""
    det = load_detector(detector_name, **(params or {}))
    samples = read_dataset(dataset, data, split)[:limit]
    by_image: dict[str, list] = {}
    for s in samples:
        by_image.setdefault(str(s.image_path), []).append(s)
    found = fp = 0
    ms = []
    for group in tqdm(by_image.values(), desc=f"detecting with {detector_name}", leave=False):
        image = group[0].load_image()
        t0 = time.perf_counter()
        boxes, _ = det(image)
        ms.append((time.perf_counter() - t0) * 1000)
        used = {i for i in (crop.match_face(boxes, s.landmarks) for s in group) if i is not None}
        found += len(used)
        fp += len(boxes) - len(used)
    argv = ["python", "-m", "train.calibrate", detector_name, "--data", str(data), "--dataset", dataset,
            "--split", split, "--stats", *(x for k, v in (params or {}).items() for x in ("--param", f"{k}={v}"))]
    return {"detector": detector_name, "params": params or {}, "faces": len(samples), "images": len(by_image),
            "found": found, "recall": round(found / max(len(samples), 1), 4), "false_positives": fp,
            "ms_per_image_median": round(float(np.median(ms)), 2) if ms else None, "command": shlex.join(argv)}


def unlabelled_stats(detector_name: str, images: list[Path], reference: str = "yunet",
                     params: dict[str, Any] | None = None) -> dict[str, Any]:
    """On photos without labels: detections that overlap no `reference` detection (IoU < 0.3) count as false
    positives, reference faces no detection overlaps as misses. An estimate: the reference errs too."""
    det = load_detector(detector_name, **(params or {}))
    ref = load_detector(reference)
    fp = missed = n_ref = n_det = 0
    worst: list[tuple[int, str]] = []
    for path in tqdm(images, desc=f"{detector_name} vs {reference}", leave=False):
        image = load_image(path)
        boxes, _ = det(image)
        rboxes, _ = ref(image)
        iou = crop.box_iou(boxes[:, None], rboxes[None]) if len(boxes) and len(rboxes) else np.zeros((len(boxes), len(rboxes)))
        extra = int((iou.max(1, initial=0) < 0.3).sum()) if len(boxes) else 0
        fp += extra
        missed += int((iou.max(0, initial=0) < 0.3).sum()) if len(rboxes) else 0
        n_ref, n_det = n_ref + len(rboxes), n_det + len(boxes)
        if extra:
            worst.append((extra, str(path)))
    return {"detector": detector_name, "params": params or {}, "reference": reference, "images": len(images),
            "detections": n_det, "reference_faces": n_ref, "false_positives_vs_reference": fp,
            "reference_faces_missed": missed, "photos_with_false_positives": len(worst),
            "worst": [p for _, p in sorted(worst, reverse=True)[:5]]}


def parse_params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param takes KEY=VALUE, not {item!r}")
        out[key] = json.loads(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("detector")
    p.add_argument("--data", type=Path, help="labelled dataset root (not needed with --photos)")
    p.add_argument("--dataset", default="300w")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int)
    p.add_argument("--write", action="store_true", help="store the rule in the detector's registry entry")
    p.add_argument("--stats", action="store_true", help="measure recall, false positives and ms per image")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a detector setting, e.g. max_side=320")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--photos", type=Path, help="unlabelled photos instead of --stats' labels: a folder, or a list "
                   "file of paths relative to its folder's WFLW_images/ (WFLW's unlabeled_images.txt)")
    p.add_argument("--reference", default="yunet", help="with --photos: the detector whose faces count as real")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = parse_params(a.param)
    if a.photos:
        from .selftrain import unlabeled_photos

        res = unlabelled_stats(a.detector, unlabeled_photos(a.photos)[:a.limit], a.reference, params)
        res["command"] = shlex.join(["python", "-m", "train.calibrate", *(argv if argv is not None else sys.argv[1:])])
        print(json.dumps(res, indent=1))
        if a.json:
            a.json.write_text(json.dumps(res, indent=1) + "\n")
        return 0
    if a.stats:
        res = detection_stats(a.detector, a.data, a.dataset, a.split, a.limit, params)
        print(json.dumps(res, indent=1))
        if a.json:
            a.json.write_text(json.dumps(res, indent=1) + "\n")
        return 0
    res = calibrate(a.detector, a.data, a.dataset, a.split, limit=a.limit, params=params)
    print(json.dumps(res, indent=1))
    if a.write:
        e = registry.get(a.detector)
        registry.update_entry(a.detector, arch_args={**e.arch_args, "crop_rule": res["rule"], "crop_rule_fit": {
            k: res[k] for k in ("matched", "faces", "iou_with_rule", "iou_with_pipnet_rule", "command")}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
