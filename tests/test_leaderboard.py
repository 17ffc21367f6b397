"""The leaderboard builder on small stored result files, and the run/reuse step with a fake landmarker."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import fixtures_datasets as fx
from train import leaderboard as lb
from train import report
from train.datasets import read_dataset
from train.protocols import EvalProtocol
from zoo.crop import gt_crop_box
from zoo.registry import Preprocess
from zoo.schemes import get_scheme

PROTOCOLS = ["gt", "det-faceboxes_v2"]


def _doc(model: str, column: str, protocol: str, nme: float, missed: int = 0, kind: str = "zoo", **extra) -> dict:
    extra.setdefault("boxes", "ground truth" if protocol == "gt" else "faceboxes_v2")
    errors = [nme - 0.01, nme, nme + 0.01] + [None] * missed
    return {"model": model, "label": f"`{model}`" if kind == "zoo" else model + " (peer)", "kind": kind,
            "column": column, "protocol": protocol, "dataset": column.split("_")[0], "split": "test",
            "nme": nme, "fr": missed / len(errors), "auc": 0.5, "n": len(errors), "missed": missed,
            "errors": errors, "params": 12_000_000,
            "regions": {"jaw": nme * 2, "eyes": nme / 2}, "subsets": {"blur": {"nme": nme, "fr": 0, "auc": 0.5, "n": 2}},
            "pose": {"|yaw| 0-15°": {"nme": nme, "fr": 0, "auc": 0.5, "n": 3}}, "robustness": {}, **extra}


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    out = tmp_path / "docs"
    results = out / "results"
    results.mkdir(parents=True)
    docs = [_doc("m1", "300w_common", "gt", 0.0341, points="68", regions={"jaw": 0.05, "eyes": 0.02, "mouth": 0.04},
                 robustness={"blur": {"nme": 0.0452, "d_nme": 0.0111, "fr": 0, "auc": 0.4, "missed": 0, "n": 3}}),
            _doc("m1", "300w_common", "det-faceboxes_v2", 0.0362, missed=2),
            _doc("peer", "300w_common", "gt", 0.0287, kind="peer"),
            _doc("peer", "wflw_test", "gt", 0.0555, kind="peer"),
            _doc("dlibish", "300w_common", "gt", 0.0270, missed=1, kind="peer", boxes="own detector (dlib HOG)")]
    for d in docs:
        (results / f"{d['model']}__{d['column']}__{d['protocol']}.json").write_text(json.dumps(d))
    (results / "bench.json").write_text(json.dumps({"hardware": "test CPU", "repeats": 3, "faces": 1, "detector": "haar",
                                                    "command": "python -m zoo bench m1",
                                                    "results": [{"name": "m1", "backend": "torch", "per_face": 40.0},
                                                                {"name": "m1", "backend": "onnx", "per_face": 19.5}]}))
    return out


def test_build_writes_tables_plots_and_readme_from_stored_json(stored: Path, tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{lb.START}\nold table\n{lb.END}\nafter\n")
    md = lb.build(stored, PROTOCOLS, "python -m train.leaderboard --build-only", readme)
    text = md.read_text()
    # Every cell is the stored number: m1's detector cell carries its misses; peer rows come after zoo rows.
    # Inner points (no jaw): the point-weighted mean of the stored non-jaw regions, (12 x 2.0 + 20 x 4.0) / 32.
    assert "| `m1` | 3.41 | 3.62 (2 missed) | - | 3.25 | - | - | 12.00 M | 19.5 (onnx) |" in text
    assert "| peer (peer) | 2.87 | - | 5.55 | - | - | - | 12.00 M | - |" in text
    assert "300-W common, inner points (no jaw), GT crop" in text
    assert text.index("`m1`") < text.index("peer (peer)")
    # A peer on its own detector has one measurement, shown under both protocols.
    assert "| dlibish (peer) | 2.70 (1 missed) | 2.70 (1 missed) | - |" in text
    assert "4.52 (+1.11)" in text                          # robustness: perturbed NME and change
    assert "blur (n=2)" in text and "|yaw| 0-15° (n=3)" in text
    assert "python -m train.leaderboard --build-only" in text
    for name in ("ced_300w_common_gt.png", "ced_300w_common_det-faceboxes_v2.png", "ced_wflw_test_gt.png",
                 "regions_300w_common.png", "robustness_300w_common.png"):
        assert (stored / name).read_bytes()[:4] == b"\x89PNG", name
        assert f"]({name})" in text
    r = readme.read_text()
    assert r.startswith("# x\n\nbefore\n" + lb.START) and r.endswith(lb.END + "\nafter\n") and "old table" not in r
    assert report.main_table(lb.load_docs(stored / "results"), PROTOCOLS, json.loads(
        (stored / "results" / "bench.json").read_text())) in r
    # Rebuilding is stable: the same files give the same page.
    assert lb.build(stored, PROTOCOLS, "python -m train.leaderboard --build-only", readme).read_text() == text


def test_readme_without_markers_is_an_error(stored: Path, tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        lb.build(stored, PROTOCOLS, "cmd", readme)
    assert lb.main(["--build-only", "--out", str(tmp_path / "empty")]) == 2


class Fake:
    """A 68-point 'model' that returns the ground truth shifted by 5% of the inter-ocular distance."""

    def __init__(self, samples):
        self.scheme = get_scheme("68")
        self.entry = SimpleNamespace(name="fake", preprocess=Preprocess(), params=1000, notes="fake v1")
        self.calls = 0
        self._table = {}
        for s in samples:
            shift = 0.05 * float(self.scheme.norm_distance(s.landmarks))
            self._table[tuple(np.round(gt_crop_box(s.landmarks, 1.1), 2))] = s.landmarks + np.float32([shift, 0])

    def predict_crops(self, image, crop_boxes):
        self.calls += 1
        return np.stack([self._table[tuple(np.round(b, 2))] for b in crop_boxes])


@pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")
def test_run_one_stores_then_reuses_and_adds_missing_perturbations(tmp_path: Path):
    root = fx.write_300w(tmp_path, per_folder=1)
    samples = read_dataset("300w", root, "common")
    model = Fake(samples)
    results = tmp_path / "results"
    args = dict(data=root, dataset="300w", protocol=EvalProtocol(), detector=None, results=results, seed=0,
                backend="torch", command="cmd", progress=False)
    [path] = lb.run_one(model, samples, robust=(), rerun=False, **args)
    doc = json.loads(path.read_text())
    assert path.name == "fake__300w_common__gt.json" and doc["nme"] == pytest.approx(0.05, abs=1e-5)
    assert doc["params"] == 1000 and doc["n"] == 2 and len(doc["errors"]) == 2 and doc["robustness"] == {}
    assert "--points 68 --protocol gt" in doc["evaluate_command"]
    calls = model.calls
    lb.run_one(model, samples, robust=(), rerun=False, **args)
    assert model.calls == calls                                   # stored, same key: not run again
    lb.run_one(model, samples, robust=("occluder",), rerun=False, **args)
    assert model.calls == calls + 2                               # one pass for the missing perturbation only
    doc = json.loads(path.read_text())
    assert set(doc["robustness"]) == {"occluder"} and "--robustness occluder" in doc["evaluate_command"]
    lb.run_one(model, samples, robust=("occluder",), rerun=True, **args)
    assert model.calls == calls + 6                               # --rerun: clean and perturbed again


def test_int8_cell_reads_the_registry(monkeypatch):
    """The leaderboard's int8 column shows what `train.int8 --write` stored; peers have none."""
    from dataclasses import replace

    from train import report
    from zoo import registry

    e = registry.get("pipnet_r18_300w")
    fake = replace(e, metrics={**e.metrics, "nme_int8": 0.0345, "split_int8": "common"})
    monkeypatch.setattr(registry, "get", lambda n: fake if n == e.name else registry.entries()[n] if n in
                        registry.entries() else (_ for _ in ()).throw(registry.ZooError(n)))
    assert report.int8_of("pipnet_r18_300w") == "3.45 (common)"
    assert report.int8_of("dlib") == "-"
