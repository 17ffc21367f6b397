"""One leaderboard from stored evaluations: run what is missing, then write the tables and plots.

    python -m train.leaderboard --data300w ../shared/data/300w --wflw ../shared/data/wflw --out docs/ \
        --readme README.md --bench

Rows: the published zoo entries (`zoo.list_models(published=True)`) and the peers usable here (dlib on its own
HOG detector, dlib on a given box, PFLD-GhostOne). Columns: 300-W common, WFLW test in 98 points and WFLW test
as WFLW-68, each under the ground-truth-crop protocol and the detector protocol (--detector, FaceBoxesV2 by
default). Each (model, column, protocol) is one JSON in OUT/results/, written by train.evaluate's functions
and reused while its key (model weights, faces, protocol) is unchanged (--rerun forces it); perturbations it
lacks are added to it, one pass each.
Robustness runs on ground-truth crops. ms/face comes from `python -m zoo bench ... --json OUT/results/bench.json`
(--bench runs it). Then OUT/leaderboard.md, its PNGs and, with --readme, the README's table between
`<!-- leaderboard:start -->` and `<!-- leaderboard:end -->` are rebuilt from those files alone.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.schemes import get_scheme

from . import report
from .datasets import read_dataset
from .evaluate import load_landmarker, predict, robustness_entry, score, scoring_scheme
from .perturb import PERTURBATIONS
from .protocols import CachedDetector, EvalProtocol, boxes_from, own_detector

log = logging.getLogger(__name__)

SCHEMA = 1               # bump when the stored JSON changes meaning: every cached result is re-run
PEER_LABELS = {"dlib": "dlib (own detector)", "dlib_givenbox": "dlib (given box)", "pfld_ghostone": "PFLD-GhostOne",
               "mediapipe": "MediaPipe Face Mesh (own detector, 68-pt map)",
               "mediapipe_98": "MediaPipe Face Mesh (own detector, 98-pt map)"}
START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def _model_id(model: Any) -> str:
    """What identifies the model's weights in a cache key: the registry sha256, else the peer's notes."""
    hub = getattr(model.entry, "hub", None)
    return getattr(hub, "sha256", None) or f"{model.entry.name}: {getattr(model.entry, 'notes', '')}"


def _faces_id(samples: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(s.name.encode())
        h.update(np.round(s.landmarks, 2).tobytes())
    return h.hexdigest()[:16]


def _params(model: Any) -> int | None:
    p = getattr(model.entry, "params", None)
    if not p and hasattr(model, "model"):
        p = sum(t.numel() for t in model.model.parameters())
    return int(p) if p else None


def columns_for(model: Any, dataset: str, samples: Sequence[Any]) -> list[report.Column]:
    """The columns of `dataset` this model can be scored in (a 68-point model has no WFLW 98-point column)."""
    data = get_scheme(samples[0].landmarks.shape[0])
    out = []
    for c in report.COLUMNS:
        if c.dataset != dataset:
            continue
        try:
            scoring_scheme(model.scheme, data, c.points)
            out.append(c)
        except ValueError:
            pass
    return out


def evaluate_command(name: str, data: Path, c: report.Column, protocol: EvalProtocol, robust: Sequence[str],
                     seed: int, backend: str) -> str:
    argv = ["python", "-m", "train.evaluate", name, "--data", str(data), "--dataset", c.dataset, "--split", c.split,
            "--points", c.points, "--protocol", protocol.name]
    if protocol.name == "detector":
        argv += ["--detector", str(protocol.detector)]
    if robust:
        argv += ["--robustness", *robust, "--seed", str(seed)]
    if backend != "torch":
        argv += ["--backend", backend]
    return shlex.join(argv)


def run_one(model: Any, samples: Sequence[Any], data: Path, dataset: str, protocol: EvalProtocol, detector: Any,
            results: Path, robust: Sequence[str], seed: int, backend: str, rerun: bool, command: str,
            progress: bool) -> list[Path]:
    """Evaluate `model` on one dataset under one protocol (one prediction pass, scored in every column it
    fills) unless its JSON files are stored under the same key; then add the perturbations in `robust` that
    they lack (one pass each, saved after each). Returns the JSON paths."""
    cols = columns_for(model, dataset, samples)
    name = model.entry.name
    key = {"schema": SCHEMA, "model": name, "weights": _model_id(model), "dataset": dataset,
           "split": cols[0].split if cols else "", "faces": _faces_id(samples), "protocol": protocol.key}
    paths = {c.key: results / f"{name}__{c.key}__{protocol.key}.json" for c in cols}
    docs = {c: json.loads(p.read_text()) for c, p in paths.items() if p.is_file()}
    if rerun or len(docs) < len(cols) or any(d.get("key") != key for d in docs.values()):
        preds = predict(model, samples, protocol, detector, progress=progress)
        docs = {}
        for c in cols:
            res = score(preds, samples, model.scheme, c.points)
            res.protocol, res.boxes = protocol.key, boxes_from(model, protocol)
            docs[c.key] = {"model": name, "label": PEER_LABELS.get(name, f"`{name}`"),
                           "kind": "peer" if name in PEER_LABELS else "zoo", "column": c.key, "dataset": c.dataset,
                           "split": c.split, **res.summary(), "params": _params(model),
                           "backend": getattr(model, "backend", backend),
                           "errors": [None if not np.isfinite(e) else round(float(e), 6) for e in res.errors],
                           "command": command, "key": key}
            log.info("%s %s %s: NME %.3f%% FR %.2f%% missed %d", name, c.key, protocol.key, res.nme * 100,
                     res.fr * 100, res.missed)
        _save(docs, paths, data, cols, protocol, seed, backend)
    else:
        log.info("%s %s %s: stored results reused", name, dataset, protocol.key)
    todo = [r for r in robust if any(d["robustness"].get(r, {}).get("seed") != seed for d in docs.values())]
    for pert in todo:
        noisy = predict(model, samples, protocol, detector, pert, seed, progress=progress)
        for c in cols:
            d = docs[c.key]
            e = d["robustness"][pert] = robustness_entry(score(noisy, samples, model.scheme, c.points),
                                                         d["nme"], d["fr"], seed)
            log.info("%s %s %s %s: NME %.3f%% (%+.3f)", name, c.key, protocol.key, pert, e["nme"] * 100,
                     e["d_nme"] * 100)
        _save(docs, paths, data, cols, protocol, seed, backend)
    return list(paths.values())


def _save(docs: dict[str, dict], paths: dict[str, Path], data: Path, cols: Sequence[report.Column],
          protocol: EvalProtocol, seed: int, backend: str) -> None:
    for c in cols:
        d = docs[c.key]
        d["evaluate_command"] = evaluate_command(d["model"], data, c, protocol, list(d["robustness"]), seed, backend)
        paths[c.key].parent.mkdir(parents=True, exist_ok=True)
        paths[c.key].write_text(json.dumps(d, indent=1) + "\n")


def run_bench(names: Sequence[str], path: Path, threads: int = 1, repeats: int = 30) -> None:
    """`python -m zoo bench` as a subprocess, so the stored JSON is exactly what that command writes."""
    argv = [sys.executable, "-m", "zoo", "bench", *names, "--backend", "torch", "onnx", "--threads", str(threads),
            "--repeats", str(repeats), "--json", str(path)]
    if subprocess.run(argv).returncode != 0:
        raise ValueError(f"the benchmark failed: {shlex.join(argv)}")
    doc = json.loads(path.read_text())
    doc["command"] = shlex.join(["python", *argv[1:]])
    path.write_text(json.dumps(doc, indent=1) + "\n")


def load_docs(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*__*__*.json"))]


def write_readme(readme: Path, table: str) -> None:
    report.write_block(readme, "leaderboard", table)


def build(out: Path, protocols: Sequence[str], command: str, readme: Path | None = None) -> Path:
    """leaderboard.md, its plots and the README table, from OUT/results/*.json alone."""
    docs = load_docs(out / "results")
    if not docs:
        raise ValueError(f"{out / 'results'}: no stored results to build a leaderboard from")
    bench_path = out / "results" / "bench.json"
    bench = json.loads(bench_path.read_text()) if bench_path.is_file() else None
    images = report.plots(docs, out)
    md = out / "leaderboard.md"
    md.write_text(report.leaderboard_markdown(docs, protocols, bench, command, images, out))
    if readme is not None:
        write_readme(readme, report.main_table(docs, protocols, bench))
    return md


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.leaderboard", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data300w", type=Path, help="300-W root (common split)")
    p.add_argument("--wflw", type=Path, help="WFLW root (test split)")
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--models", nargs="*", help="default: the published zoo entries and the available peers")
    p.add_argument("--pfld", type=Path, help="PFLD-GhostOne .onnx (default: $ZOO_HOME/pfld_ghostone/)")
    p.add_argument("--detector", default="faceboxes_v2", help="detector of the detector protocol")
    p.add_argument("--protocols", nargs="+", choices=["gt", "detector"], default=["gt", "detector"],
                   help="protocols to run and show")
    p.add_argument("--robustness", nargs="*", default=list(PERTURBATIONS), help="perturbations (none: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["torch", "onnx"], default="onnx", help="for zoo entries")
    p.add_argument("--rerun", action="store_true", help="evaluate again even where stored results match")
    p.add_argument("--build-only", action="store_true", help="only rebuild the markdown and plots from stored JSON")
    p.add_argument("--bench", action="store_true", help="run `python -m zoo bench` into OUT/results/bench.json")
    p.add_argument("--readme", type=Path, help="rewrite the table between the leaderboard markers of this file")
    p.add_argument("--limit", type=int, help="only the first N faces of each dataset (a quick check)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on a shared CPU more threads spin-wait and run many times slower)")
    p.add_argument("--no-progress", action="store_true")
    return p


def default_models() -> list[str]:
    import zoo
    from zoo.peers import available_peers

    zoo_names = [n for n in zoo.list_models(published=True) if zoo.card(n).kind == "landmarker"]
    return zoo_names + list(available_peers())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = shlex.join(["python", "-m", "train.leaderboard", *argv])
    protocols = [EvalProtocol() if p == "gt" else EvalProtocol("detector", a.detector) for p in a.protocols]
    protocols = [p.key for p in protocols]
    results = a.out / "results"
    from zoo.registry import ZooError

    try:
        if not a.build_only:
            import torch

            torch.set_num_threads(max(1, a.threads))
            datasets = [(d, root, read_dataset(d, root, s)[:a.limit]) for d, root, s in
                        (("300w", a.data300w, "common"), ("wflw", a.wflw, "test")) if root is not None]
            from zoo.detectors import load_detector
            detector = CachedDetector(load_detector(a.detector))    # boxes shared by every model per image
            names = a.models or default_models()
            if a.pfld is None and "pfld_ghostone" not in names and not a.models:
                log.warning("pfld_ghostone is not available (put it under $ZOO_HOME/pfld_ghostone/ or pass --pfld)")
            if a.pfld is not None and "pfld_ghostone" not in names and not a.models:
                names.append("pfld_ghostone")
            from tqdm import tqdm

            # Clean results first (the main table), then robustness.
            plan = [(n, d, p, ()) for p in protocols for n in names for d in datasets]
            plan += [(n, d, "gt", tuple(a.robustness)) for n in names for d in datasets
                     if a.robustness and "gt" in protocols]
            models: dict[str, Any] = {}
            done: set[tuple[str, str, str]] = set()     # --rerun evaluates each clean result once
            for name, (dataset, root, samples), pkey, robust in tqdm(plan, desc="leaderboard", disable=a.no_progress):
                if name not in models:
                    models.clear()      # one model in memory at a time
                    models[name] = load_landmarker(name, a.backend, a.pfld if name == "pfld_ghostone" else None)
                model = models[name]
                if pkey != "gt" and own_detector(model):
                    continue        # its own detector under both protocols: the ground-truth run is that measurement
                protocol = EvalProtocol() if pkey == "gt" else EvalProtocol("detector", a.detector)
                run_one(model, samples, root, dataset, protocol, detector, results, robust, a.seed,
                        a.backend, a.rerun and (name, dataset, pkey) not in done, command, not a.no_progress)
                done.add((name, dataset, pkey))
            if a.bench:
                run_bench(names, results / "bench.json", a.threads)
        made_by = results / "command.txt"      # the runs that measured the stored results (--build-only adds none)
        runs = made_by.read_text().splitlines() if made_by.is_file() else []
        if not a.build_only and command not in runs:
            runs.append(command)
            made_by.write_text("\n".join(runs) + "\n")
        if runs:
            command = "`, then `".join(runs)
        md = build(a.out, protocols, command, a.readme)
    except (ZooError, ValueError, FileNotFoundError, ImportError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
