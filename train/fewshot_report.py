"""The WFLW few-shot / self-training ablation: every stage scored on the same faces, one table.

    python -m train.fewshot_report --wflw ../shared/data/wflw --stages docs/wflw_stages.json \
        --json docs/results/wflw_ablation.json --readme README.md

`--stages` lists the rows: {"label": ..., "model": zoo entry, model folder or peer, "data": what it was
trained on, optional "path": a peer's model file, relative to the stages file}. Each is scored on the WFLW test faces (ground-truth crops) in 98 points where it has them and as
WFLW-68 (every model can be), and on the few-shot validation faces that chose the settings (fewshot_val;
all of fewshot_train for a model that never trained on it). The table goes to the JSON and, with --readme,
between `<!-- wflw-ablation:start -->` and `<!-- wflw-ablation:end -->`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .datasets import read_dataset
from .evaluate import evaluate, load_landmarker
from .report import write_block

log = logging.getLogger(__name__)


def score_stage(model: str, wflw: Path, val_split: str, path: str | None = None) -> dict[str, Any]:
    lm = load_landmarker(model, path=path) if path else load_landmarker(model)
    test = read_dataset("wflw", wflw, "test")
    row: dict[str, Any] = {"points": lm.scheme.num_points}
    if lm.scheme.num_points == 98:
        row["nme98"] = evaluate(lm, test, progress=False).nme
    row["nme68"] = evaluate(lm, test, scheme="68", progress=False).nme
    row["val_split"] = val_split
    row["val_nme"] = evaluate(lm, read_dataset("wflw", wflw, val_split), progress=False).nme
    return row


def table(rows: list[dict[str, Any]]) -> str:
    def pct(v: float | None) -> str:
        return f"{100 * v:.2f}" if v is not None else "–"

    out = ["| stage | trained on | WFLW test, 98 pts | WFLW test, WFLW-68 | validation (split) |",
           "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['data']} | {pct(r.get('nme98'))} | {pct(r.get('nme68'))} | "
                   f"{pct(r.get('val_nme'))} ({r['val_split']}) |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.fewshot_report", description=__doc__.splitlines()[0])
    p.add_argument("--wflw", type=Path, required=True)
    p.add_argument("--stages", type=Path, required=True, help="JSON list of {label, model, data[, val_split]}")
    p.add_argument("--json", type=Path)
    p.add_argument("--readme", type=Path)
    p.add_argument("--cards", nargs="+", default=[], help="bundled entries whose model card gets the table")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rows = []
    for st in json.loads(a.stages.read_text()):
        path = str((a.stages.parent / st["path"]).resolve()) if st.get("path") else None
        row = {**st, **score_stage(st["model"], a.wflw, st.get("val_split", "fewshot_val"), path)}
        log.info("%s: %s", st["label"], {k: v for k, v in row.items() if "nme" in k})
        rows.append(row)
    text = table(rows)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))
    if a.readme:
        write_block(a.readme, "wflw-ablation", text)
    for name in a.cards:
        from zoo.hub import BUNDLED_DIR
        from .publish import refresh_card

        cmd = "python -m train.fewshot_report " + " ".join(argv if argv is not None else sys.argv[1:])
        (BUNDLED_DIR / name / "ablation.md").write_text(
            "## Ablation: what each stage adds (WFLW test faces, ground-truth crops, NME %)\n\n" + text +
            f"\nMeasured with `{cmd}`; the settings were chosen on the validation column only.\n")
        refresh_card(name)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
