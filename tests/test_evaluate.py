"""Evaluation protocols on real faces, the breakdowns (regions, yaw bins), the perturbations and scheme mapping.

Real-face tests read ../shared (300-W, WFLW, PFLD-GhostOne) and skip without it; the published
pipnet_r18_300w is bundled with the repository, so it needs no download."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import fixtures_datasets as fx
from train import evaluate as ev
from train.breakdown import point_errors, region_nme
from train.datasets import read_dataset
from train.perturb import PERTURBATIONS, perturb
from train.pose import _IDX, _MODEL, estimate_pose, yaw_bins
from train.protocols import CachedDetector, EvalProtocol
from zoo.metrics import nme
from zoo.peers import peer_unavailable
from zoo.schemes import WFLW98_TO_68, get_scheme

S68, S98 = get_scheme("68"), get_scheme("98")
WFLW = fx.SHARED / "data" / "wflw"
PFLD = fx.SHARED / "weights" / "pfld_ghostone" / "PFLD_GhostOne_112_1_opt_sim.onnx"
need_300w = pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")
need_wflw = pytest.mark.skipif(not (WFLW / "WFLW_annotations" / "list_98pt_test.txt").is_file(),
                               reason="shared/data/wflw not present")


@pytest.fixture(scope="module")
def r18():
    import zoo

    return zoo.load("pipnet_r18_300w", detector=None)


@pytest.fixture(scope="module")
def faces300w():
    return read_dataset("300w", fx.W300, "common")[:3]


# ---------------------------------------------------------------- protocols on real faces

@need_300w
def test_gt_and_detector_protocols_on_real_faces(r18, faces300w):
    gt = ev.evaluate(r18, faces300w, progress=False)
    assert gt.n == 3 and gt.missed == 0 and gt.protocol == "gt" and gt.boxes == "ground truth"
    assert np.isfinite(gt.errors).all() and gt.nme < 0.06, gt.errors        # 3.4% on the whole of common
    assert set(gt.regions) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert gt.regions["jaw"] > gt.regions["eyes"]                           # the jaw is always the hardest
    assert sum(m.n for m in gt.pose.values()) == 3

    from zoo.detectors import load_detector

    haar = CachedDetector(load_detector("haar"))
    det = ev.evaluate(r18, faces300w, protocol=EvalProtocol("detector", "haar"), detector=haar, progress=False)
    assert det.protocol == "det-haar" and det.boxes == "haar"
    found = np.isfinite(det.errors)
    assert det.missed == int((~found).sum()) and found.any()
    assert np.all(det.errors[found] < 0.1)
    # The detector protocol is the user's call: the same faces as zoo.load(..., detector="haar")(image).
    import zoo

    user = zoo.load("pipnet_r18_300w", detector="haar")(faces300w[0].load_image())
    if found[0]:
        best = min(user, key=lambda f: float(np.abs(f.landmarks - faces300w[0].landmarks).mean()))
        assert nme(best.landmarks, faces300w[0].landmarks, S68)[0] == pytest.approx(det.errors[0], abs=1e-6)


@need_300w
def test_a_detector_that_finds_nothing_fails_every_face(r18, faces300w):
    class Blind:
        name, crop_rule = "blind", None

        def __call__(self, image):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

    r = ev.evaluate(r18, faces300w, protocol=EvalProtocol("detector", "blind"), detector=Blind(), progress=False)
    assert r.missed == 3 and r.fr == 1.0 and r.auc == 0.0 and np.isnan(r.nme) and r.regions == {}


@need_wflw
def test_68_point_model_on_wflw_is_scored_as_wflw68(r18):
    samples = read_dataset("wflw", WFLW, "test")[:3]
    r = ev.evaluate(r18, samples, progress=False)
    assert r.points == "68" and r.n == 3 and np.isfinite(r.errors).all() and r.nme < 0.15
    assert set(r.subsets) <= {"pose", "expression", "illumination", "makeup", "occlusion", "blur"} and r.subsets
    with pytest.raises(ValueError, match="no point map"):
        ev.evaluate(r18, samples, "98", progress=False)


@need_wflw
@pytest.mark.skipif(not PFLD.is_file(), reason="PFLD-GhostOne file not present")
def test_98_point_peer_through_the_same_function():
    from zoo.peers import load_peer

    pfld = load_peer("pfld_ghostone", PFLD)
    samples = read_dataset("wflw", WFLW, "test")[:3]
    preds = ev.predict(pfld, samples, progress=False)
    r98, r68 = ev.score(preds, samples, pfld.scheme), ev.score(preds, samples, pfld.scheme, "68")
    assert (r98.points, r68.points) == ("98", "68") and r98.nme < 0.1 and r68.nme < 0.1
    # WFLW-68 is the same predictions on a subset of the points, with the same inter-ocular normaliser.
    gt = np.stack([s.landmarks for s in samples])
    sub = np.linalg.norm(preds[:, list(WFLW98_TO_68)] - gt[:, list(WFLW98_TO_68)], axis=-1).mean(1)
    np.testing.assert_allclose(r68.errors, sub / S98.norm_distance(gt), rtol=1e-9)
    # On 68-point data a 98-point model is scored in 68 points.
    if fx.have_300w():
        faces = read_dataset("300w", fx.W300, "common")[:2]
        assert ev.evaluate(pfld, faces, progress=False).points == "68"


@need_300w
@pytest.mark.skipif(peer_unavailable("dlib") is not None, reason="dlib peer not installed")
def test_dlib_own_detector_and_given_box(faces300w):
    from zoo.peers import load_peer

    own = ev.evaluate(load_peer("dlib"), faces300w, progress=False)
    given = ev.evaluate(load_peer("dlib_givenbox"), faces300w, progress=False)
    assert own.boxes.startswith("own detector") and given.boxes == "ground truth"
    assert own.missed == int(np.isnan(own.errors).sum()) and given.missed == 0
    assert np.nanmedian(own.errors) < 0.05 and np.median(given.errors) < 0.08


# ---------------------------------------------------------------- robustness

@need_300w
def test_robustness_reports_change_against_clean(r18, faces300w):
    clean = ev.evaluate(r18, faces300w[:1], progress=False)
    ev.robustness(r18, faces300w[:1], clean, names=("occluder",), seed=3)
    assert set(clean.robustness) == {"occluder"}
    v = clean.robustness["occluder"]
    assert v["d_nme"] == pytest.approx(v["nme"] - clean.nme) and v["n"] == 1 and v["seed"] == 3
    assert v["d_nme"] != 0
    again = ev.evaluate(r18, faces300w[:1], perturbation="occluder", seed=3, progress=False)
    assert again.nme == pytest.approx(clean.robustness["occluder"]["nme"])   # seeded: the same run twice
    with pytest.raises(ValueError, match="unknown perturbation"):
        ev.robustness(r18, faces300w[:1], clean, names=("fog",))


def _face_image() -> tuple[np.ndarray, np.ndarray]:
    """A textured 200x240 image and a 68-point face in it (landmark box 60..180 x 50..190)."""
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 256, (50, 60, 3), dtype=np.uint8), (240, 200), interpolation=cv2.INTER_NEAREST)
    lm = np.column_stack([rng.uniform(60, 180, 68), rng.uniform(50, 190, 68)]).astype(np.float32)
    lm[0], lm[1] = (60, 50), (180, 190)
    return img, lm


def _sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_perturbations_are_deterministic_and_do_what_they_say():
    img, lm = _face_image()
    out = {name: perturb(name, img, [lm], seed=0, key="a.jpg") for name in PERTURBATIONS}
    for name, o in out.items():
        assert o.shape == img.shape and o.dtype == np.uint8, name
        np.testing.assert_array_equal(o, perturb(name, img, [lm], seed=0, key="a.jpg"), err_msg=name)
        assert not np.array_equal(o, img), name
    assert _sharpness(out["blur"]) < 0.2 * _sharpness(img)
    assert _sharpness(out["downscale4"]) < 0.5 * _sharpness(img)
    # JPEG 30 keeps the picture (strongly correlated) but loses detail.
    assert np.corrcoef(out["jpeg30"].ravel(), img.ravel())[0, 1] > 0.8
    assert out["lowlight"].mean() < 0.45 * img.mean()
    # The occluder: one flat box inside the landmark box, nothing changed outside it; seeded by image.
    diff = np.any(out["occluder"] != img, axis=2)
    ys, xs = np.nonzero(diff)
    assert xs.min() >= 60 and xs.max() <= 180 and ys.min() >= 50 and ys.max() <= 190
    box = out["occluder"][ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert len(np.unique(box)) == 1 and 0.3 < (xs.max() - xs.min()) / 120 < 0.5
    assert not np.array_equal(perturb("occluder", img, [lm], seed=1, key="a.jpg"), out["occluder"])
    assert not np.array_equal(perturb("occluder", img, [lm], seed=0, key="b.jpg"), out["occluder"])


# ---------------------------------------------------------------- pose and regions

def _project(model: np.ndarray, yaw: float, pitch: float = 10.0, roll: float = 5.0) -> np.ndarray:
    """Perspective projection of 3-D points after rotating them (yaw > 0: the nose turns to the image's right)."""
    a, b, c = np.radians([-yaw, pitch, roll])
    Ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    Rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    Rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    p = model @ (Rz @ Ry @ Rx).T
    z = p[:, 2] + 2500.0                          # a face 2.5 m away (units: about 0.1 mm)
    return p[:, :2] / z[:, None] * 1500.0 + 300.0


@pytest.mark.parametrize("yaw", [-70, -40, -20, 0, 10, 25, 50])
def test_yaw_of_a_synthetic_rotated_face(yaw):
    # A face that is not the estimator's own model: every coordinate moved by up to 10%.
    face3d = _MODEL * np.random.default_rng(abs(yaw)).uniform(0.9, 1.1, _MODEL.shape)
    pts = np.zeros((68, 2))
    pts[_IDX] = _project(face3d, yaw)
    est = estimate_pose(pts)[0]
    assert est == pytest.approx(yaw, abs=6), est
    # The same face as 98 points (WFLW) gives the same yaw through the 98 -> 68 map.
    pts98 = np.zeros((98, 2))
    pts98[list(WFLW98_TO_68)] = pts
    assert estimate_pose(pts98, "98")[0] == pytest.approx(est)
    label = [k for k, m in yaw_bins(np.array([yaw])).items() if m[0]]
    expect = next(i for i, edge in enumerate((15, 30, 45, 1e9)) if abs(yaw) < edge)
    assert label == [list(yaw_bins(np.zeros(1)))[expect]]


def test_region_nme_averages_to_nme():
    rng = np.random.default_rng(4)
    gt = rng.uniform(0, 200, (5, 68, 2))
    pred = gt + rng.normal(0, 3, gt.shape)
    pe = point_errors(pred, gt, S68)
    np.testing.assert_allclose(pe.mean(1), nme(pred, gt, S68))
    regions = region_nme(pe, S68)
    pred[:, 48:68] += (20, 0)                       # only the mouth moves
    moved = region_nme(point_errors(pred, gt, S68), S68)
    assert moved["mouth"] > regions["mouth"] + 0.01
    assert all(moved[k] == pytest.approx(regions[k]) for k in ("jaw", "brows", "nose", "eyes"))


def test_scoring_scheme():
    S29 = get_scheme("29")
    assert ev.scoring_scheme(S68, S98).name == "68"            # 68-point model on WFLW: WFLW-68
    assert ev.scoring_scheme(S98, S68).name == "68"            # 98-point model on 300-W
    assert ev.scoring_scheme(S98, S98).name == "98"
    assert ev.scoring_scheme(S98, S98, "68").name == "68"
    with pytest.raises(ValueError, match="29-point model"):
        ev.scoring_scheme(S29, S68)


def test_protocol_names():
    assert EvalProtocol().key == "gt" and EvalProtocol("detector", "haar").key == "det-haar"
    with pytest.raises(ValueError, match="needs a detector"):
        EvalProtocol("detector")
    with pytest.raises(ValueError, match="unknown protocol"):
        EvalProtocol("nearest")


@need_300w
def test_cli_protocol_points_and_robustness(tmp_path: Path, capsys):
    import json

    root = fx.write_300w(tmp_path, per_folder=1)
    out = tmp_path / "r.json"
    argv = ["pipnet_r18_300w", "--data", str(root), "--protocol", "detector", "--detector", "haar", "--limit", "1",
            "--robustness", "jpeg30", "--json", str(out), "--no-progress"]
    assert ev.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["protocol"] == "det-haar" and doc["points"] == "68" and set(doc["robustness"]) == {"jpeg30"}
    assert set(doc["regions"]) == {"jaw", "brows", "nose", "eyes", "mouth"} and doc["pose"]
    assert "jpeg30" in capsys.readouterr().out
    assert ev.main(["pipnet_r18_300w", "--data", str(root), "--limit", "1", "--robustness", "fog", "--no-progress"]) == 2


@need_wflw
def test_yaw_agrees_with_wflw_large_pose_labels():
    """On the shared WFLW test faces, the faces WFLW labels large-pose are the ones the estimate puts far from
    frontal: 11 of the 12 at |yaw| >= 45° (one at 34°), the other 60 at a median of 19°."""
    from train.breakdown import yaw_of

    samples = read_dataset("wflw", WFLW, "test")
    yaw = np.abs(yaw_of(samples, "98"))
    large = np.array([s.attributes.get("pose") == 1 for s in samples])
    assert large.sum() >= 10 and np.mean(yaw[large] >= 45) >= 0.9 and np.median(yaw[~large]) < 25
