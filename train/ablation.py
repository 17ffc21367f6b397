"""An ablation table: training runs (or entries, or peers) scored on the same faces with ground-truth crops.

    python -m train.ablation --rows docs/teachers68_rows.json --data ../shared/data \
        --columns 300w/val wflw/fewshot_val 300w/common wflw/test:68 wflw/test_pose:68 \
        --json docs/results/teachers68_ablation.json --readme README.md --marker teachers68

`--rows`: a JSON list of {"label", "model" (zoo entry, run folder or peer), "data", optional "command", optional
"arm" (rows sharing an arm differ only by seed: the table adds their mean)}. A
column is `dataset/split[:points]`, scored in that scheme (a 98-point model on 300-W in the 68 shared points).
Held-out columns (val, fewshot_val) are the ones that choose; test columns only report. A row whose model is
missing (a run folder deleted), or whose weights have the sha256 they had when scored, keeps the scores the JSON
already holds for it. The table goes to --json and, with --readme, between `<!-- MARKER:start -->` and
`<!-- MARKER:end -->`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from zoo import registry
from zoo.files import sha256_file

from .datasets import read_dataset, sibling_root
from .evaluate import evaluate, load_landmarker
from .report import write_block

log = logging.getLogger("train.ablation")


def column_faces(data: Path, columns: list[str]) -> dict[str, list]:
    """Each column's faces, read once for every row."""
    out = {}
    for col in columns:
        name, split = col.partition(":")[0].split("/")
        out[col] = read_dataset(name, sibling_root(data, name), split)
    return out


def score(model: str, faces: dict[str, list]) -> dict[str, float]:
    lm = load_landmarker(model)
    return {col: evaluate(lm, samples, scheme=col.partition(":")[2] or None, progress=False).nme
            for col, samples in faces.items()}


def weights_id(model: str) -> str | None:
    """The sha256 of a run folder's or zoo entry's weights (None for a peer): stored scores stand while it holds."""
    if Path(model, "model.safetensors").is_file():
        return sha256_file(Path(model, "model.safetensors"))
    if model in registry.list_models():
        return registry.get(model).hub.sha256
    return None


def arm_means(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    """One row per `arm` (rows that differ only by seed): the mean of each column over its seeds."""
    arms: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "arm" in r:
            arms.setdefault(r["arm"], []).append(r)
    return [{"label": f"**{arm}**, mean of {len(rs)} seeds", "data": rs[0]["data"],
             "scores": {c: sum(r["scores"][c] for r in rs) / len(rs) for c in columns
                        if all(c in r.get("scores", {}) for r in rs)}}
            for arm, rs in arms.items()]


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "| row | trained on | " + " | ".join(c.replace(":", ", ") + " pts" if ":" in c else c for c in columns)
    out = [head + " |", "|---|---|" + "---|" * len(columns)]
    for r in rows + arm_means(rows, columns):
        cells = [f"{100 * r['scores'][c]:.2f}" if c in r.get("scores", {}) else "–" for c in columns]
        label, data = (str(r[k]).replace("|", "\\|") for k in ("label", "data"))     # a bare | splits the cell
        out.append(f"| {label} | {data} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def card_section(result: dict[str, Any]) -> str:
    """A model card's ablation section from what `python -m train.ablation` wrote (its --json)."""
    return ("## Ablation\n\nNME % with ground-truth crops; the held-out columns (val, fewshot_val) chose, the test "
            "columns only report. Each row's model was scored on the same faces by\n`" + result["command"] +
            "`.\n\n" + table(result["rows"], result["columns"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.ablation", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="folder holding the datasets (300w/, wflw/)")
    p.add_argument("--columns", nargs="+", required=True, help="dataset/split[:points], e.g. wflw/test:68")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--readme", type=Path)
    p.add_argument("--marker", default="ablation")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    old = {r["label"]: r for r in json.loads(a.json.read_text())["rows"]} if a.json.is_file() else {}
    faces = column_faces(a.data, a.columns)
    rows = []
    for r in json.loads(a.rows.read_text()):
        model = r["model"]
        if "/" in model and not Path(model).exists():
            log.warning("%s: %s is gone; keeping the stored scores", r["label"], model)
            rows.append({**r, "scores": old.get(r["label"], {}).get("scores", {})})
            continue
        sha, kept = weights_id(model), old.get(r["label"], {})
        if sha and kept.get("weights_sha256") == sha and set(a.columns) <= set(kept.get("scores", {})):
            log.info("%s: same weights as when scored; keeping its scores", r["label"])
            rows.append({**r, "scores": {c: kept["scores"][c] for c in a.columns}, "weights_sha256": sha})
            continue
        log.info("scoring %s (%s)", r["label"], model)
        rows.append({**r, "scores": score(model, faces), **({"weights_sha256": sha} if sha else {})})
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"columns": a.columns, "rows": rows,
                                  "command": "python -m train.ablation " + " ".join(argv or sys.argv[1:])}, indent=1))
    md = table(rows, a.columns)
    print(md)
    if a.readme:
        write_block(a.readme, a.marker, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
