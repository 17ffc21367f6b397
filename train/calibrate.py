"""python -m train.calibrate DETECTOR --data DIR [--dataset 300w] [--split train] [--write]

Measures how a zoo detector's boxes relate to the crops the landmark models were trained on (landmark box
x1.1) and stores that rule with the detector's registry entry, so detector boxes are cropped the way each
detector needs rather than with one rule tuned for FaceBoxes.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zoo import crop, registry
from zoo.detectors import load_detector

from .datasets import read_dataset

log = logging.getLogger("train.calibrate")


def calibrate(detector_name: str, data: Path, dataset: str = "300w", split: str = "train", scale: float = 1.1,
              limit: int | None = None) -> dict:
    det = load_detector(detector_name)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("detector")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--dataset", default="300w")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int)
    p.add_argument("--write", action="store_true", help="store the rule in the detector's registry entry")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    res = calibrate(a.detector, a.data, a.dataset, a.split, limit=a.limit)
    print(json.dumps(res, indent=1))
    if a.write:
        e = registry.get(a.detector)
        registry.update_entry(a.detector, arch_args={**e.arch_args, "crop_rule": res["rule"], "crop_rule_fit": {
            k: res[k] for k in ("matched", "faces", "iou_with_rule", "iou_with_pipnet_rule", "command")}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
