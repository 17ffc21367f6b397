"""python -m train.int8 NAME --data DIR [--split common] [--write]

Measures an entry's int8 graph (`zoo.load(NAME, backend="onnx-int8")`, see zoo.onnx_backend) the way its
fp32 metrics were measured (ground-truth crops, train.evaluate) and, with --write, stores `nme_int8`,
`fr_int8`, `auc_int8` and the command in its registry metrics beside the fp32 `nme`. zoo.load refuses the
int8 graph of an entry whose `nme_int8` is more than 0.05 points above its `nme`.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from zoo import registry
from zoo.hub import BUNDLED_DIR

from .datasets import DEFAULT_SPLITS, read_dataset
from .evaluate import evaluate, load_landmarker
from .publish import refresh_card

log = logging.getLogger("train.int8")


def measure_int8(name: str, data: Path, split: str | None = None, limit: int | None = None,
                 progress: bool = True) -> dict[str, Any]:
    entry = registry.get(name)
    split = split or DEFAULT_SPLITS[entry.dataset]
    lm = load_landmarker(name, "onnx-int8")          # the guard is off here: this is its measurement
    if lm.backend != "onnx-int8":
        raise ValueError(f"{name}: no int8 graph could be made (see the warning above)")
    samples = read_dataset(entry.dataset, data, split)[:limit]
    r = evaluate(lm, samples, progress=progress)
    argv = ["python", "-m", "train.int8", name, "--data", str(data), "--split", split,
            *(["--limit", str(limit)] if limit else [])]
    fp32 = entry.metrics.get("nme")
    return {"nme_int8": r.nme, "fr_int8": r.fr, "auc_int8": r.auc, "n_int8": r.n, "split_int8": split,
            "nme_int8_cost_points": None if fp32 is None else round(100 * (r.nme - fp32), 4),
            "nme_int8_command": shlex.join(argv)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.int8", description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", help="default: the dataset's test split (300-W: common)")
    p.add_argument("--limit", type=int)
    p.add_argument("--write", action="store_true", help="store the int8 metrics in the registry entry")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        res = measure_int8(a.name, a.data, a.split, a.limit, not a.no_progress)
    except (registry.ZooError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1))
    if a.write:
        if a.limit:
            print("error: --write stores full-split metrics only; drop --limit", file=sys.stderr)
            return 2
        e = registry.get(a.name)
        registry.update_entry(a.name, metrics={**e.metrics, **res})
        if (BUNDLED_DIR / a.name / "metrics.json").is_file():
            print(f"card: {refresh_card(a.name)}")            # int8 beside fp32 on the bundled card
    return 0


if __name__ == "__main__":
    sys.exit(main())
