"""Per-landmark confidence: the logistic fit and AUC, Confidence on evidence, Face.scores from a real weight file
(only for the weight it was fitted on), hollow drawing, annotate's review list and the tracker's use of it."""
import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

import zoo
from train.confidence import fit_logistic, measure, roc_auc
from zoo.draw import draw_landmarks
from zoo.registry import Confidence
from zoo.track import OneEuroFilter
from zoo_fixtures import face_image, random_zoo, write_random_weights  # noqa: F401 (fixture)


def test_roc_auc_known_values():
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0])) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5]), np.array([1, 0, 1])) == 0.5          # ties count half
    assert roc_auc(np.array([0.3, 0.6, 0.4]), np.array([1, 0, 1])) == 0.0
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))                 # no bad point: undefined


def test_fit_logistic_recovers_two_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 2))
    true_w, true_b = np.array([2.0, -1.5]), 0.5
    y = (rng.random(20000) < 1 / (1 + np.exp(-(x @ true_w + true_b)))).astype(np.float64)
    w, b = fit_logistic(x, y)
    np.testing.assert_allclose(w, true_w, atol=0.12)
    assert abs(b - true_b) < 0.1
    conf = Confidence(w, b, 0.1, "0" * 64, ("peak", "log_spread"))
    r = measure(conf, x, np.where(y > 0, 0.05, 0.2))        # errors under / over the tolerance
    assert r["auc"] > 0.8 and r["ece"] < 0.03                # a calibrated fit of its own data


def test_confidence_refuses_evidence_of_another_decode():
    conf = Confidence((1.0, -1.0), 0.0, 0.1, "0" * 64, ("peak", "log_spread"))
    p = conf(np.array([[[0.9, -3.0], [0.1, 0.5]]]))
    assert p.shape == (1, 2) and p[0, 0] > p[0, 1] and ((p >= 0) & (p <= 1)).all()
    with pytest.raises(ValueError, match="2 evidence features"):
        conf(np.zeros((1, 68, 1)))


def _calibrated(name: str, sha: str) -> None:
    e = zoo.registry._ENTRIES[name]
    conf = Confidence((4.0, -1.0), -1.0, 0.1, sha, ("peak", "log_spread"), "test")
    zoo.registry._ENTRIES[name] = replace(e, confidence=conf)


def test_face_scores_only_for_the_weight_they_were_fitted_on(random_zoo):
    path = write_random_weights("pipnet_mbv2_300w")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    e = zoo.registry._ENTRIES["pipnet_mbv2_300w"]
    zoo.registry._ENTRIES["pipnet_mbv2_300w"] = replace(e, hub=replace(e.hub, sha256=sha))
    _calibrated("pipnet_mbv2_300w", sha)
    faces = zoo.load("pipnet_mbv2_300w", detector=None)(face_image(), boxes=[[100, 50, 260, 230]])
    s = faces[0].scores
    assert s is not None and s.shape == (68,) and ((s >= 0) & (s <= 1)).all()
    assert json.loads(json.dumps(faces[0].to_dict()))["scores"] == [round(float(v), 3) for v in s]

    _calibrated("pipnet_mbv2_300w", "f" * 64)              # fitted for another file: no scores rather than wrong ones
    faces = zoo.load("pipnet_mbv2_300w", detector=None)(face_image(), boxes=[[100, 50, 260, 230]])
    assert faces[0].scores is None and "scores" not in faces[0].to_dict()


def test_doubted_points_draw_hollow():
    pts = np.array([[20.0, 20.0], [60.0, 20.0]])
    scheme = zoo.get_scheme(68)
    solid = draw_landmarks(np.zeros((40, 80, 3), np.uint8), pts, scheme, (255, 255, 255), contours=False, radius=4)
    mixed = draw_landmarks(np.zeros((40, 80, 3), np.uint8), pts, scheme, (255, 255, 255), contours=False, radius=4,
                           scores=np.array([0.9, 0.1]))
    assert solid[20, 20].any() and mixed[20, 20].any()                 # the trusted point: a filled dot
    assert solid[20, 60].any() and not mixed[20, 60].any()             # the doubted one: a ring, empty inside
    assert mixed[20, 55:66].any()


def test_one_euro_smooths_a_less_trusted_point_harder():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.zeros((2, 2)), 0.0)
    out = f(np.ones((2, 2)), 1 / 30, trust=np.array([1.0, 0.25]))
    assert out[0, 0] > out[1, 0] > 0                                   # both follow the step; the doubted one less


@pytest.mark.skipif(not __import__("fixtures_datasets").have_300w(), reason="shared/data/300w absent")
def test_confidence_command_on_real_faces(tmp_path, capsys):
    """train.confidence end to end on a few real 300-W faces with the bundled mbv2: a calibration for this
    weight (its sha256, both features), measured, plotted; the peak-only ablation cannot be written."""
    import fixtures_datasets as fx
    from train.confidence import main

    fx.write_300w(tmp_path, per_folder=3)
    assert main(["pipnet_mbv2_300w", "--data", str(tmp_path), "--fit", "300w/train", "--test", "300w/common",
                 "--plot", str(tmp_path / "plots"), "--no-progress"]) == 0
    conf = json.loads(capsys.readouterr().out)
    assert conf["sha256"] == zoo.card("pipnet_mbv2_300w").hub.sha256
    assert conf["features"] == ["peak", "log_spread"] and len(conf["weights"]) == 2
    assert 0.0 <= conf["measured"]["300w/common"]["auc"] <= 1.0
    assert (tmp_path / "plots" / "pipnet_mbv2_300w.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        main(["pipnet_mbv2_300w", "--data", str(tmp_path), "--fit", "300w/train", "--peak-only", "--write"])
