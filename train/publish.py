"""python -m train.publish NAME --run runs/NAME/final --data DIR

Bundles a trained folder into the zoo: fp16 safetensors in zoo/weights/NAME/, evaluated with the evaluate
command both before and after the fp16 cast (the change must stay under 0.01 NME points), then the
registry entry becomes "published" with the file's sha256, params and the measured metrics, and the model
card is written with them. `python -m zoo push zoo/weights/NAME ORG/NAME` then puts it on the Hub.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from zoo import entry_from_config, registry
from zoo.hub import BUNDLED_DIR, load_folder, render_card, save_folder, sha256_file

from .ablation import card_section
from .card import training_markdown
from .evaluate import evaluate_folder

log = logging.getLogger("train.publish")
MAX_FP16_CHANGE = 1e-4        # 0.01 NME points, as a fraction


def card_body(config: dict, metrics32: dict, metrics16: dict, registry_metrics: dict | None = None) -> str:
    lines = ["", "## Precision", "",
             f"Stored as fp16. NME on {metrics16['dataset']} {metrics16['split']} (n={metrics16['n']}): "
             f"fp32 {100 * metrics32['nme']:.4f}%, fp16 {100 * metrics16['nme']:.4f}% "
             f"(change {100 * abs(metrics16['nme'] - metrics32['nme']):.4f} points)."]
    m = registry_metrics or {}
    if m.get("nme_int8") is not None:
        lines += ["", f"int8 (`backend=\"onnx-int8\"`: static QDQ, per-channel, U8S8): NME "
                      f"{100 * m['nme_int8']:.4f}% on {m.get('split_int8', metrics16['split'])} "
                      f"({m['nme_int8_cost_points']:+.4f} points against the entry's NME; zoo.load refuses the int8 "
                      f"graph above +0.05), measured with `{m['nme_int8_command']}`."]
    return training_markdown(config) + "\n".join(lines + [""])


def refresh_card(name: str) -> Path:
    """Re-render a bundled entry's card from its stored evaluations (metrics.json written by publish) and the
    registry's current metrics (e.g. after `train.int8 --write`): nothing is measured here."""
    dest = BUNDLED_DIR / name
    config = json.loads((dest / "config.json").read_text())
    stored = json.loads((dest / "metrics.json").read_text())
    metrics = registry.get(name).metrics
    ablation = dest / "ablation.md"
    body = card_body(config, stored["fp32"], stored["fp16"], metrics) + \
        ("\n" + ablation.read_text() if ablation.is_file() else "")
    (dest / "README.md").write_text(render_card(config, metrics, body))
    return dest / "README.md"


def _starting_folders(config: dict):
    """(folder, config) of each model a self-training round started from, nearest first, while their folders
    still exist (a round may start from another round)."""
    seen: set[Path] = set()
    while (start := (config.get("training", {}).get("self_training") or {}).get("start")):
        folder = Path(start)
        if folder in seen or not (folder / "config.json").is_file():
            return
        seen.add(folder)
        config = json.loads((folder / "config.json").read_text())
        yield folder, config


def provenance(run: Path, config: dict) -> dict:
    """The commands that made the run, its starting models' first, written into the config so the card says
    how to reproduce it once the run folders are gone; a self-training round also records its round 0."""
    def command(folder: Path) -> str | None:
        f = folder / "train_command.txt"
        return f.read_text().strip() if f.is_file() else None

    t = config.setdefault("training", {})
    starts = list(_starting_folders(config))
    if starts:
        sc = starts[0][1].get("training", {})
        t["self_training"]["start_record"] = {"epochs": sc.get("epochs"), "init": starts[0][1].get("init"),
                                              "data": sc.get("data")}
    chain = [command(folder) for folder, _ in reversed(starts)] + [command(run)]
    t["commands"] = list(dict.fromkeys(c for c in _init_commands(config) + chain if c))
    return config


def _init_commands(config: dict) -> list[str]:
    """The commands that made the weights a run started from (`--init` a zoo entry or folder), read before a
    publish replaces them, so the card's chain reaches back to the first run."""
    init = (config.get("recipe") or {}).get("init")
    if not init:
        return []
    folder = Path(init) if Path(init).is_dir() else BUNDLED_DIR / init
    start = folder / "config.json"
    return list(json.loads(start.read_text()).get("training", {}).get("commands", [])) if start.is_file() else []


def publish(name: str, run: Path, data: Path, split: str | None = None, limit: int | None = None,
            ablation: Path | None = None, variant: str | None = None) -> dict:
    """Bundle `run` as entry `name`, or as its tagged variant `name.variant` (other weights, same recipe)."""
    config, state = load_folder(run)
    config = provenance(run, config)
    if config.get("name") != name:
        raise ValueError(f"{run} holds {config.get('name')!r}, not {name!r}")
    if variant:               # a variant keeps its own weights' preprocessing (e.g. a smaller input)
        name = registry.add_variant(name, variant).name
        config["name"] = name
        registry.update_entry(name, arch_args=config["arch_args"], preprocess=entry_from_config(config).preprocess)
    entry = registry.get(name)
    split = split or {"300w": "common"}.get(entry.dataset, "test")
    m32 = evaluate_folder(run, data, entry.dataset, split, limit=limit, progress=False)
    dest = BUNDLED_DIR / name
    save_folder(dest, state, config, "", fp16=True)
    sha = sha256_file(dest / "model.safetensors")
    # Evaluate exactly what users load: the registry entry, resolved to the bundled file and its pin.
    registry.update_entry(name, status="published", hub={"sha256": sha}, params=config.get("params"))
    m16 = evaluate_folder(name, data, entry.dataset, split, out_dir=dest, limit=limit, progress=False)
    change = abs(m16["nme"] - m32["nme"])
    if change >= MAX_FP16_CHANGE:
        log.warning("fp16 changes NME by %.5f (>= %.5f): consider shipping fp32", change, MAX_FP16_CHANGE)
    metrics = {k: m16[k] for k in ("nme", "fr", "auc", "n", "split", "dataset", "command") if k in m16}
    metrics["nme_fp32"] = m32["nme"]
    registry.update_entry(name, metrics=metrics)
    (dest / "metrics.json").write_text(json.dumps({"fp16": m16, "fp32": m32}, indent=1))
    if ablation:
        # kept beside the weights: refresh_card re-renders it
        (dest / "ablation.md").write_text(card_section(json.loads(ablation.read_text())))
    refresh_card(name)
    log.info("published %s: sha256 %s, NME %.3f%% (fp32 %.3f%%)", name, sha, 100 * m16["nme"], 100 * m32["nme"])
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.publish", description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--run", type=Path, required=True, help="a training run's final folder")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split")
    p.add_argument("--limit", type=int)
    p.add_argument("--ablation", type=Path, help="the --json of python -m train.ablation: its table on the card")
    p.add_argument("--variant", help="publish as the tagged variant NAME.VARIANT (e.g. st), leaving NAME as it is")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    print(json.dumps(publish(a.name, a.run, a.data, a.split, a.limit, a.ablation, a.variant), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
