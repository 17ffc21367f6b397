"""Detectors of the fast path: YuNet (cv2.FaceDetectorYN, a sha256-pinned file placed under $ZOO_HOME), Haar's
speed/false-positive settings, and the default detector (the best one whose weights are on the machine)."""
from pathlib import Path

import pytest

import zoo
import zoo.files
from zoo import crop, detectors
from zoo.__main__ import main as zoo_main
from zoo.pts import read_pts

SHARED = Path(__file__).resolve().parents[2] / "shared"
YUNET = SHARED / "weights" / "yunet" / "yunet_n_320_320.onnx"
PHOTO = SHARED / "data" / "300w" / "lfpw" / "testset" / "image_0001.jpg"
needs_yunet = pytest.mark.skipif(not YUNET.is_file(), reason="../shared/weights/yunet not present")
needs_photo = pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/data/300w not present")


ASTRONAUT = Path(zoo.__file__).resolve().parents[1] / "space" / "examples" / "astronaut.jpg"


def test_a_fresh_install_detects_with_the_bundled_yunet(zoo_home):
    """Empty ZOO_HOME, nothing converted: YuNet ships in the package (with its licence) and is the default; on
    the shipped example it finds the one face, where Haar once also found the space shuttle."""
    bundled = zoo.files.BUNDLED_DIR / "yunet"
    assert (bundled / "yunet_n_320_320.onnx").is_file() and (bundled / "LICENSE").is_file()
    assert detectors.best_detector() == "yunet"
    faces = zoo.load("pipnet_mbv2_300w")(ASTRONAUT)
    assert len(faces) == 1 and faces[0].detector == "yunet"
    assert len(detectors.load_detector("haar")(zoo.load_image(ASTRONAUT))[0]) == 1      # Haar: no shuttle either
    assert detectors.available("faceboxes_v2")                       # bundled too (converted, pinned)
    boxes, _ = detectors.load_detector("faceboxes_v2")(zoo.load_image(ASTRONAUT))
    assert len(boxes) >= 1


@needs_yunet
@needs_photo
def test_yunet_placed_by_convert_finds_the_face_and_is_the_default(zoo_home, capsys, bundle_without):
    bundle_without("yunet")                            # as an install without YuNet bundled
    assert not detectors.available("yunet")            # nothing under the empty ZOO_HOME yet
    assert zoo_main(["convert", "yunet", "--from", str(YUNET)]) == 0
    placed = zoo_home / "yunet" / "yunet_n_320_320.onnx"
    assert placed.is_file() and str(placed) in capsys.readouterr().out
    assert detectors.available("yunet") and detectors.best_detector() == "yunet"

    det = detectors.load_detector("yunet")
    img, gt = zoo.load_image(PHOTO), read_pts(PHOTO.with_suffix(".pts"))
    boxes, scores = det(img)
    i = crop.match_face(boxes, gt)
    assert i is not None and scores[i] > 0.8
    assert det.crop_rule == detectors.crop_rule_of("yunet") and det.crop_rule is not None

    lm = zoo.load("pipnet_mbv2_300w")                  # detector="auto": YuNet, now that it is here
    faces = lm(img)
    assert faces and faces[0].detector == "yunet"
    assert zoo.load("pipnet_mbv2_300w", detector="haar")(img)[0].detector == "haar"   # detector= pins


@needs_yunet
def test_yunet_refuses_a_file_that_is_not_the_pinned_one(zoo_home, tmp_path, bundle_without):
    bundle_without("yunet")
    bad = tmp_path / "yunet_n_320_320.onnx"
    bad.write_bytes(YUNET.read_bytes()[:-1] + b"\0")
    with pytest.raises(zoo.ZooError, match="sha256"):
        detectors.place_file("yunet", bad)
    with pytest.raises(zoo.ZooError, match="sha256"):
        detectors.load_detector("yunet", path=bad)
    (zoo_home / "yunet").mkdir()
    (zoo_home / "yunet" / "yunet_n_320_320.onnx").write_bytes(bad.read_bytes())
    with pytest.raises(zoo.ZooError, match="sha256"):
        detectors.load_detector("yunet")


def test_default_falls_back_to_haar_without_weights(zoo_home, monkeypatch, tmp_path):
    with pytest.raises(zoo.ZooError, match="unknown detector 'nope'.*yunet"):
        zoo.load("pipnet_mbv2_300w", detector="nope")                # at load, listing the detectors
    monkeypatch.setattr(zoo.files, "BUNDLED_DIR", tmp_path / "no_bundle")
    assert detectors.best_detector() == "haar"


@needs_photo
def test_haar_settings_downscale_min_face_and_score():
    img = zoo.load_image(PHOTO)
    gt = read_pts(PHOTO.with_suffix(".pts"))
    full = detectors.load_detector("haar", max_side=4000, min_face=0.05, min_score=0.0)
    small = detectors.load_detector("haar", max_side=256, min_face=0.05, min_score=0.0)
    b_full, _ = full(img)
    b_small, _ = small(img)
    i, j = crop.match_face(b_full, gt), crop.match_face(b_small, gt)
    assert i is not None and j is not None
    # boxes found on the downscaled copy come back in the image's pixels
    assert crop.box_iou(b_full[i], b_small[j]) > 0.7
    # faces smaller than min_face x the shorter side are never returned; a score above every score drops all
    side = min(img.shape[:2])
    face = float(b_full[i][2] - b_full[i][0])
    big = detectors.load_detector("haar", max_side=4000, min_face=1.2 * face / side)(img)[0]
    assert all(b[2] - b[0] >= int(1.2 * face) - 1 for b in big)
    assert len(detectors.load_detector("haar", min_score=1.01)(img)[0]) == 0
    # the registry's own settings are the measured ones
    d = detectors.load_detector("haar")
    args = zoo.card("haar").arch_args
    assert (d.max_side, d.min_face, d.min_score) == (args["max_side"], args["min_face"], args["min_score"])


def test_yunet_onnxruntime_path_matches_opencv(zoo_home):
    """YuNet's own decode on onnxruntime (the default, faster here) gives OpenCV's boxes and scores, on a
    photo and on one whose sides are not multiples of 32 (padded), and nothing on a blank image."""
    fast, ref = detectors.load_detector("yunet"), detectors.load_detector("yunet", runtime="opencv")
    img = zoo.load_image(ASTRONAUT)
    for im in (img, img[13:300, 7:251]):
        (b1, s1), (b2, s2) = fast(im), ref(im)
        assert len(b1) == len(b2) >= 1
        assert abs(b1 - b2).max() < 0.01 and abs(s1 - s2).max() < 1e-4
    blank = fast(img * 0)
    assert blank[0].shape == (0, 4) and blank[1].shape == (0,)
    with pytest.raises(zoo.ZooError, match="runtime"):
        detectors.load_detector("yunet", runtime="tflite")


def test_yunet_fast_variant_shares_the_pinned_file_and_keeps_its_own_rule(zoo_home, monkeypatch):
    """`yunet.fast` (a 192-px input) reads the file bundled for `yunet` (same sha256 pin), with the crop rule
    measured at its size; it finds the shipped example's face. An unpinned variant never borrows its base's
    file."""
    fast = detectors.load_detector("yunet.fast")
    assert fast.input_size == 192 and fast.path == detectors.load_detector("yunet").path
    assert fast.crop_rule == detectors.crop_rule_of("yunet.fast") != detectors.crop_rule_of("yunet")
    faces = zoo.load("pipnet_mbv2_300w", detector="yunet.fast")(ASTRONAUT)
    assert len(faces) == 1 and faces[0].detector == "yunet.fast"

    from dataclasses import replace

    e = zoo.registry.get("yunet.fast")
    unpinned = replace(e, hub=replace(e.hub, sha256=None))
    assert all(p.parent.name == "yunet.fast" for _, p in zoo.files.local_candidates(unpinned))


def test_a_face_missed_upright_is_looked_for_turned_and_mapped_back():
    """detect_rolls(retry_rolled=True): nothing found on the picture as it is, so it is searched turned by
    45 degrees; a box found there returns as the upright box around it, with the roll the turn implies."""
    import numpy as np

    class OnlyTurned:
        calls: list = []

        def detect_rolls(self, image):
            self.calls.append(image.shape[:2])
            if image.shape[:2] == (200, 300):                     # the picture as given: nothing
                return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0)
            h, w = image.shape[:2]                                 # turned: a level face in the middle
            return np.array([[w / 2 - 20, h / 2 - 20, w / 2 + 20, h / 2 + 20]], np.float32), np.array([0.9]), np.zeros(1)

    det = OnlyTurned()
    boxes, scores, rolls = detectors.detect_rolls(det, np.zeros((200, 300, 3), np.uint8), retry_rolled=True)
    assert len(det.calls) == 2 and det.calls[1] != (200, 300)
    np.testing.assert_allclose(rolls, [np.radians(45)])
    side = 40 * np.sqrt(2)                                         # a 40-px square turned by 45 degrees
    np.testing.assert_allclose(boxes[0], [150 - side / 2, 100 - side / 2, 150 + side / 2, 100 + side / 2], atol=1.0)
    assert scores[0] == 0.9
    assert len(detectors.detect_rolls(det, np.zeros((200, 300, 3), np.uint8))[0]) == 0    # no retry unless asked
