"""Metrics on hand-made predictions with known answers, and the evaluation pipeline end to end with a fake
landmarker (ground truth plus a known offset), so no trained weights are needed."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import fixtures_datasets as fx
from train import evaluate as ev
from train.datasets import Sample, read_dataset
from zoo.metrics import auc, ced, failure_rate, nme, plot_ced
from zoo.crop import gt_crop_box
from zoo.registry import Preprocess
from zoo.schemes import Scheme, get_scheme

REPO = Path(__file__).resolve().parents[1]
S68, S19 = get_scheme("68"), get_scheme("19")


def face68(rng: np.random.Generator) -> np.ndarray:
    """Random 68 points whose outer eye corners (36, 45) are exactly 100 px apart."""
    pts = rng.uniform(50, 250, (68, 2))
    pts[36], pts[45] = (100, 120), (200, 120)
    return pts


# ---------------------------------------------------------------- NME

def test_nme_inter_ocular_offsets():
    rng = np.random.default_rng(0)
    gt = np.stack([face68(rng) for _ in range(3)])
    pred = gt.copy()
    pred[0] += (5, 0)                 # 5 px = 0.05 x 100 px inter-ocular
    pred[1] += (3, 4)                 # also 5 px
    pred[2, :34] += (10, 0)           # half the points 10 px off, half exact: mean 5 px
    np.testing.assert_allclose(nme(pred, gt, S68), [0.05, 0.05, 0.05], atol=1e-12)
    np.testing.assert_allclose(nme(gt[0] + (0, 20), gt[0], S68), [0.2])     # a single (N, 2) face
    assert nme(gt, gt, S68).tolist() == [0, 0, 0]


def test_nme_box_normalised():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 50, (2, 19, 2))
    boxes = np.array([[0, 0, 200, 50], [10, 10, 110, 110]], dtype=np.float64)   # sqrt(w h) = 100, 100
    np.testing.assert_allclose(nme(gt + (0, 5), gt, S19, boxes), [0.05, 0.05])
    # Without boxes the landmark box is the normaliser.
    lb = np.concatenate([gt.min(1), gt.max(1)], axis=1)
    expect = 5 / np.sqrt((lb[:, 2] - lb[:, 0]) * (lb[:, 3] - lb[:, 1]))
    np.testing.assert_allclose(nme(gt + (0, 5), gt, S19), expect)


def test_nme_shape_errors():
    gt = np.zeros((2, 68, 2))
    with pytest.raises(ValueError, match="must both be"):
        nme(gt[:, :10], gt, S68)
    with pytest.raises(ValueError, match="scheme 19 has 19"):
        nme(gt, gt, S19)


# ---------------------------------------------------------------- FR / AUC / CED

def test_failure_rate():
    e = np.array([0.05, 0.1, 0.15, np.nan])
    assert failure_rate(e, 0.1) == 0.5          # 0.1 itself is not a failure; NaN is
    assert failure_rate(e, 0.08) == 0.75
    assert failure_rate(np.zeros(7)) == 0.0
    with pytest.raises(ValueError):
        failure_rate([])


@pytest.mark.parametrize("errors, expect", [
    ([0.0, 0.0, 0.0], 1.0),
    ([0.1, 0.3], 0.0),
    ([0.05], 0.5),
    ([0.0, 0.05], 0.75),
    ([0.025, 0.2], 0.375),
    ([0.02, np.nan], 0.4),
])
def test_auc_by_hand(errors, expect):
    assert auc(np.array(errors), 0.1) == pytest.approx(expect, abs=1e-12)


def test_auc_matches_fine_grid_integral():
    e = np.random.default_rng(2).gamma(2.0, 0.02, 500)
    xs, ys = ced(e, 0.1, steps=100_000)
    grid = float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs)) / 0.1)
    assert auc(e, 0.1) == pytest.approx(grid, abs=1e-4)
    assert auc(e, 0.08) < auc(e, 0.1)


def test_ced_values():
    xs, ys = ced(np.array([0.0, 0.02, 0.05, 0.2]), 0.1, steps=10)
    assert len(xs) == 11 and xs[0] == 0 and xs[-1] == pytest.approx(0.1)
    assert ys[0] == 0.25 and ys[2] == 0.5 and ys[5] == 0.75 and ys[-1] == 0.75
    assert (np.diff(ys) >= 0).all()


def test_plot_ced(tmp_path: Path):
    rng = np.random.default_rng(3)
    out = plot_ced({"a": rng.gamma(2, 0.02, 50), "b": rng.gamma(2, 0.03, 50)}, tmp_path / "sub" / "ced.png",
                   title="test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


# ---------------------------------------------------------------- evaluation with a fake landmarker

class FakeLandmarker:
    """Knows the ground truth of `samples` (looked up by the evaluation crop box) and returns it moved
    right by `offset` x the face's NME normaliser, so every face's NME is exactly `offset`; faces whose
    position is in `bad` are moved by `bad_offset` instead."""

    def __init__(self, samples: list[Sample], scheme: Scheme, offset: float = 0.05, bad: tuple[int, ...] = (),
                 bad_offset: float = 0.15, dataset: str | None = None) -> None:
        self.scheme = scheme
        self.entry = SimpleNamespace(preprocess=Preprocess(), dataset=dataset, name="fake")
        self.calls = 0
        self._table = {}
        for i, s in enumerate(samples):
            norm = float(scheme.norm_distance(s.landmarks, s.box if scheme.norm_points is None else None))
            shift = (bad_offset if i in bad else offset) * norm
            self._table[self._key(gt_crop_box(s.landmarks, 1.1))] = s.landmarks + np.float32([shift, 0])

    @staticmethod
    def _key(box: np.ndarray) -> tuple:
        return tuple(np.round(np.asarray(box, dtype=np.float64), 2))

    def predict_crops(self, image_rgb: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
        assert image_rgb.ndim == 3 and image_rgb.shape[2] == 3 and image_rgb.dtype == np.uint8
        self.calls += 1
        return np.stack([self._table[self._key(b)] for b in crop_boxes]).astype(np.float32)


@pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")
def test_evaluate_300w(tmp_path: Path):
    root = fx.write_300w(tmp_path, per_folder=2)
    samples = read_dataset("300w", root, "common")
    lm = FakeLandmarker(samples, S68, bad=(1,))
    r = ev.evaluate(lm, samples, S68, batch=3, progress=False)
    assert r.n == 4 and lm.calls == 4 and len(r.names) == 4
    np.testing.assert_allclose(r.errors, [0.05, 0.15, 0.05, 0.05], atol=1e-5)
    assert r.nme == pytest.approx(0.075, abs=1e-5)
    assert r.fr == 0.25
    assert r.auc == pytest.approx(0.375, abs=1e-4)
    assert set(r.subsets) == {"helen/testset", "lfpw/testset"}
    assert r.subsets["helen/testset"].nme == pytest.approx(0.1, abs=1e-5)
    with pytest.raises(ValueError, match="98 points"):
        ev.evaluate(FakeLandmarker([], get_scheme("98")), samples, get_scheme("98"))


@pytest.mark.skipif(not fx.have_samples("wflw"), reason="shared WFLW samples not present")
def test_evaluate_wflw_attribute_subsets(tmp_path: Path):
    root, _ = fx.write_wflw(tmp_path)
    samples = read_dataset("wflw", root, "test")
    lm = FakeLandmarker(samples, get_scheme("98"), bad=(0,))
    r = ev.evaluate(lm, samples, lm.scheme, progress=False)
    assert lm.calls == 2                          # 4 faces in 2 images: one predict_crops call per image
    assert {k: v.n for k, v in r.subsets.items()} == {"pose": 2, "expression": 1, "illumination": 1,
                                                     "makeup": 1, "occlusion": 1, "blur": 1}
    assert r.subsets["pose"].nme == pytest.approx(0.1, abs=1e-5)
    assert r.subsets["blur"].fr == 0.0 and r.subsets["pose"].fr == 0.5
    assert sum("#" in n for n in r.names) == 3     # three faces share one image


@pytest.mark.skipif(not fx.have_samples("aflw"), reason="shared AFLW samples not present")
def test_evaluate_aflw_box_normaliser(tmp_path: Path):
    root, faces = fx.write_aflw(tmp_path)
    samples = read_dataset("aflw", root, "test")
    lm = FakeLandmarker(samples, S19)
    r = ev.evaluate(lm, samples, S19, progress=False)
    np.testing.assert_allclose(r.errors, [0.05, 0.05], atol=1e-5)
    # The shift was 0.05 x box_size: the dataset box, not the landmark box, normalises.
    assert abs(float(S19.norm_distance(samples[0].landmarks)) - faces[0].extra["box_size"]) > 1
    assert r.subsets["frontal"].n == 1


@pytest.mark.skipif(not fx.have_samples("cofw"), reason="shared COFW samples not present")
def test_evaluate_cofw_embedded_images(tmp_path: Path):
    root, _ = fx.write_cofw(tmp_path, "v5")
    samples = read_dataset("cofw", root, "test")
    r = ev.evaluate(FakeLandmarker(samples, get_scheme("29")), samples, get_scheme("29"), progress=False)
    assert r.names == ["test#0000", "test#0001"] and r.nme == pytest.approx(0.05, abs=1e-5)


@pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")
def test_cli_end_to_end(tmp_path: Path, monkeypatch, capsys):
    root = fx.write_300w(tmp_path, per_folder=2)

    def fake_loader(name: str, backend: str = "torch"):
        assert name == "fake" and backend == "onnx"
        return FakeLandmarker(read_dataset("300w", root, "common"), S68, bad=(1,), dataset="300w")

    monkeypatch.setattr(ev, "load_landmarker", fake_loader)
    out = tmp_path / "out"
    argv = ["fake", "--data", str(root), "--split", "common", "--backend", "onnx", "--batch", "2",
            "--json", str(out / "m.json"), "--csv", str(out / "m.csv"), "--ced", str(out / "ced.png")]
    assert ev.main(argv) == 0
    doc = json.loads((out / "m.json").read_text())
    assert doc["nme"] == pytest.approx(0.075, abs=1e-5) and doc["fr"] == 0.25 and doc["n"] == 4
    assert doc["auc"] == pytest.approx(0.375, abs=1e-4)
    assert (doc["split"], doc["dataset"], doc["model"]) == ("common", "300w", "fake")
    assert doc["command"] == "python -m train.evaluate " + " ".join(argv)
    rows = list(csv.reader((out / "m.csv").open()))
    assert rows[0] == ["path", "nme"] and len(rows) == 5
    assert float(rows[2][1]) == pytest.approx(0.15, abs=1e-5) and rows[2][0].endswith(".jpg")
    assert (out / "ced.png").read_bytes()[:4] == b"\x89PNG"
    table = capsys.readouterr().out
    assert "7.500" in table and "25.00" in table and "37.50" in table

    # --limit, and the dataset taken from the model's entry when --dataset is not given.
    assert ev.main(["fake", "--data", str(root), "--limit", "1", "--backend", "onnx", "--json",
                    str(out / "one.json"), "--no-progress"]) == 0
    assert json.loads((out / "one.json").read_text())["n"] == 1
    # A user error is a message and exit code 2, not a traceback.
    assert ev.main(["fake", "--data", str(tmp_path / "missing"), "--backend", "onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_help():
    r = subprocess.run([sys.executable, "-m", "train.evaluate", "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--dataset" in r.stdout and "NAME_OR_FOLDER" in r.stdout


# ---------------------------------------------------------------- dlib peer (optional)

def _have_dlib() -> bool:
    import importlib.util

    from zoo.peers import dlib_model_path

    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        dlib_model_path()
        return True
    except ImportError:
        return False


@pytest.mark.skipif(not (_have_dlib() and fx.have_300w()), reason="dlib-bin / face-recognition-models or 300w absent")
def test_dlib_peer_on_real_300w(tmp_path: Path):
    from zoo.peers import DlibLandmarker

    samples = read_dataset("300w", fx.W300, "common")[:5]
    lm = DlibLandmarker()
    assert lm.scheme.num_points == 68 and lm.entry.preprocess.gt_box_scale == 1.1
    r = ev.evaluate(lm, samples, lm.scheme, progress=False)
    assert r.n == 5 and np.isfinite(r.errors).all()
    # dlib is a 2014-era regressor: most faces land near 2-3 %, an occasional hard one fails (4 % of common).
    assert np.median(r.errors) < 0.05 and r.nme < 0.08, r.errors


def test_dlib_missing_says_how_to_install(monkeypatch):
    import importlib.util

    from zoo import peers

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install dlib-bin face-recognition-models"):
        peers.dlib_model_path()


# ---------------------------------------------------------------- the zoo's real Landmarker (random weights)

@pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")
def test_cli_with_zoo_model_folder(tmp_path: Path, capsys):
    """The CLI drives the zoo's own Landmarker through load_folder: a folder holding config.json and
    randomly initialised weights. The numbers are meaningless; the contract is what is tested."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    import zoo
    from zoo.nets import build_model
    from zoo.registry import get

    if not hasattr(zoo, "load_folder"):
        pytest.skip("zoo.load_folder not there yet")
    entry = get("pipnet_mbv2_300w")
    torch.manual_seed(0)
    model = build_model(entry.arch, 68, **dict(entry.arch_args))
    folder = tmp_path / "model"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    config = {k: v for k, v in entry.to_dict().items() if k not in ("hub", "metrics", "paper")}
    (folder / "config.json").write_text(json.dumps(config))
    root = fx.write_300w(tmp_path, per_folder=1)
    assert ev.main([str(folder), "--data", str(root), "--json", str(tmp_path / "r.json"), "--no-progress"]) == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["n"] == 2 and doc["dataset"] == "300w" and np.isfinite(doc["nme"])
    # evaluate_folder, as the training CLI calls it after training: same numbers, files in out_dir.
    m = ev.evaluate_folder(folder, root, "300w", "common", tmp_path / "final", progress=False)
    assert m["nme"] == pytest.approx(doc["nme"]) and m["split"] == "common"
    assert m["command"].startswith("python -m train.evaluate ") and "--dataset 300w" in m["command"]
    assert {p.name for p in (tmp_path / "final").iterdir()} == {"metrics.json", "per_image_nme.csv", "ced.png"}


@pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")
def test_evaluate_with_detector_boxes_counts_missed_faces(tmp_path: Path):
    """--boxes DETECTOR: crops come from matched detections via the detector's rule; a missed face fails."""
    root = fx.write_300w(tmp_path, per_folder=2)
    samples = read_dataset("300w", root, "common")
    queue = [gt_crop_box(s.landmarks, 1.1) for s in samples]
    queue[2] = None                                             # the detector misses the third face

    class FakeDetector:
        crop_rule = (0.0, 0.0, 1.0, 1.0)                        # its boxes are the training crops already

        def __call__(self, image):
            box = queue.pop(0)
            return (np.zeros((0, 4), np.float32) if box is None else box[None]), np.ones(1, np.float32)

    lm = FakeLandmarker(samples, S68, bad=(1,))
    r = ev.evaluate(lm, samples, S68, batch=1, progress=False, detector=FakeDetector())
    assert r.missed == 1 and np.isnan(r.errors[2])
    np.testing.assert_allclose(r.errors[[0, 1, 3]], [0.05, 0.15, 0.05], atol=1e-5)
    assert r.nme == pytest.approx((0.05 + 0.15 + 0.05) / 3, abs=1e-5)
    assert r.fr == 0.5                                          # the 0.15 face and the missed one
