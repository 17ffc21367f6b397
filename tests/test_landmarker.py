"""The Landmarker end to end on real safetensors files: load, boxes, detection, batching, ONNX, timings."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo import crop
from zoo_fixtures import face_image, write_random_weights, random_zoo  # noqa: F401 (fixture)

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "300w").is_dir(), reason="../shared not present")


@pytest.fixture
def mbv2(random_zoo):
    write_random_weights("pipnet_mbv2_300w")
    return zoo.load("pipnet_mbv2_300w")


def test_boxes_give_landmarks_in_image_pixels(mbv2):
    faces = mbv2(face_image(), boxes=[[100, 50, 260, 230], [10, 10, 90, 120]])
    assert len(faces) == 2
    for f, box in zip(faces, ([100, 50, 260, 230], [10, 10, 90, 120])):
        assert f.landmarks.shape == (68, 2) and f.landmarks.dtype == np.float32
        cb = crop.detector_crop_box(np.array(box, np.float32))
        assert (f.landmarks >= cb[:2] - 1).all() and (f.landmarks <= cb[2:] + 1).all()
        assert f.score == 1.0
    assert set(mbv2.timings) >= {"detect", "preprocess", "model", "decode", "total"}
    assert mbv2.timings["model"] > 0


def test_batching_matches_single_faces(mbv2):
    img = face_image()
    boxes = [[100, 50, 260, 230], [10, 10, 90, 120], [200, 100, 390, 290]]
    together = mbv2(img, boxes=boxes)
    mbv2.batch_size = 1
    apart = mbv2(img, boxes=boxes)
    for a, b in zip(together, apart):
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)


def test_bgr_and_rgb_inputs_agree(mbv2):
    img = face_image()
    a = mbv2(img, boxes=[[100, 50, 260, 230]])[0].landmarks
    b = mbv2(img[..., ::-1].copy(), boxes=[[100, 50, 260, 230]], color="bgr")[0].landmarks
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("boxes, msg", [([[10, 10, 5, 50]], "empty or inverted"), ([[1000, 1000, 1100, 1100]], "outside"),
                                        ([[1, 2, 3]], "x0, y0, x1, y1"), ([[0, 0, float("nan"), 9]], "non-finite")])
def test_wrong_boxes_are_clear_errors(mbv2, boxes, msg):
    with pytest.raises(zoo.ZooError, match=msg):
        mbv2(face_image(), boxes=boxes)


class FixedDetector:
    """A detector object with its own name and crop rule: always the same two boxes."""
    name, crop_rule = "fixed", (0.02, 0.05, 1.3, 1.25)

    def __call__(self, image):
        return np.array([[100, 50, 260, 230], [200, 100, 390, 290]], np.float32), np.array([0.9, 0.7], np.float32)


def _points(faces):
    return np.stack([f.landmarks for f in faces])


def test_same_boxes_same_landmarks_on_every_path_synthetic(random_zoo):
    write_random_weights("pipnet_mbv2_300w")
    lm = zoo.load("pipnet_mbv2_300w", detector=FixedDetector())
    img = face_image()
    faces = lm(img)
    assert [f.detector for f in faces] == ["fixed", "fixed"] and faces[0].score == pytest.approx(0.9)
    ref = _points(faces)
    np.testing.assert_array_equal(_points(lm(img, boxes=faces)), ref)
    np.testing.assert_array_equal(_points(lm(img, boxes=[f.box for f in faces], box_rule="fixed")), ref)
    np.testing.assert_array_equal(_points(lm(img, boxes=[f.box for f in faces], box_rule=FixedDetector.crop_rule)), ref)
    assert lm(img, boxes=faces)[1].score == pytest.approx(0.7)
    # Plain boxes without a rule get the weight's own rule: different crops, different points.
    assert np.abs(_points(lm(img, boxes=[f.box for f in faces])) - ref).max() > 0.5

    # A registry detector's rule, by name, without loading or running it; Faces carry the name on.
    from zoo.detectors import crop_rule_of

    haar_rule = crop_rule_of("haar")
    assert haar_rule is not None and haar_rule != lm.preprocess.box_rule
    boxes = [f.box for f in faces]
    by_name = lm(img, boxes=boxes, box_rule="haar")
    assert [f.detector for f in by_name] == ["haar", "haar"]
    np.testing.assert_array_equal(_points(by_name), _points(lm(img, boxes=boxes, box_rule=haar_rule)))
    np.testing.assert_array_equal(_points(lm(img, boxes=by_name)), _points(by_name))


@needs_shared
def test_same_boxes_same_landmarks_on_every_path_real_photo():
    """Bundled r18 weights, Haar, a real 300-W photo: the Space's path (boxes) equals the library's."""
    lm = zoo.load("pipnet_r18_300w", detector="haar")
    img = zoo.load_image(SHARED / "data" / "300w" / "helen" / "testset" / "296814969_3.jpg")
    faces = lm(img)
    assert faces and all(f.detector == "haar" for f in faces)
    ref = _points(faces)
    np.testing.assert_array_equal(_points(lm(img, boxes=faces)), ref)
    np.testing.assert_array_equal(_points(lm(img, boxes=[f.box for f in faces], box_rule="haar")), ref)
    np.testing.assert_array_equal(_points(lm(img, boxes=np.stack([f.box for f in faces]), box_rule="haar")), ref)


@needs_shared
def test_a_face_rolled_45_degrees_is_cropped_upright():
    """Bundled mbv2 + YuNet on a 300-W photo turned by 45 degrees: the face is found, its crop levelled (the
    Face keeps the keypoints' roll), and NME stays near the upright photo's; without levelling it is far off.
    Passing the Faces back as boxes gives the same landmarks."""
    from train.datasets import read_dataset
    from train.rolled import roll_photo

    s = read_dataset("300w", SHARED / "data" / "300w", "common")[0]
    lm = zoo.load("pipnet_mbv2_300w", detector="yunet", backend="onnx")
    nme = lambda f, gt: float(np.linalg.norm(f.landmarks - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45]))
    upright = nme(lm(s.load_image())[0], s.landmarks)
    img, gt = roll_photo(s.load_image(), s.landmarks, 45)
    faces = lm(img)
    assert len(faces) == 1 and faces[0].roll < -np.radians(15)          # counter-clockwise on screen: y down
    rolled = nme(faces[0], gt)
    assert rolled < upright + 0.01, (rolled, upright)
    np.testing.assert_array_equal(_points(lm(img, boxes=faces)), _points(faces))
    np.testing.assert_array_equal(_points(lm(img, boxes=[f.box for f in faces], box_rule="yunet",
                                             rolls=[f.roll for f in faces])), _points(faces))
    with pytest.raises(zoo.ZooError, match="one finite angle"):
        lm(img, boxes=[f.box for f in faces], rolls=[0.1, 0.2])
    lm.upright_from_deg = None                                          # the pipeline before: axis-aligned crops
    assert nme(lm(img)[0], gt) > rolled + 0.02


def test_boxes_edge_cases_and_plain_numbers_in_errors(mbv2):
    assert mbv2(face_image(), boxes=[]) == [] and mbv2(face_image(), boxes=np.zeros((0, 4))) == []
    with pytest.raises(zoo.ZooError) as e:
        mbv2(face_image(), boxes=np.array([[600.0, 10, 700, 90]]))
    assert "[600, 10, 700, 90]" in str(e.value) and "np.float" not in str(e.value)
    with pytest.raises(zoo.ZooError, match="detectors: .*haar"):
        mbv2(face_image(), boxes=[[100, 50, 260, 230]], box_rule="hog")
    with pytest.raises(zoo.ZooError, match=r"box_rule .* not \[0, 0, -1, 1\]"):
        mbv2(face_image(), boxes=[[100, 50, 260, 230]], box_rule=np.array([0, 0, -1, 1.0]))
    with pytest.raises(zoo.ZooError, match="max_faces"):
        mbv2(face_image(), max_faces=-1)
    assert len(mbv2(face_image(), boxes=[[100, 50, 260, 230], [10, 10, 90, 120]], max_faces=1)) == 1


def test_detector_none_and_unknown_detector(random_zoo):
    write_random_weights("pipnet_mbv2_300w")
    lm = zoo.load("pipnet_mbv2_300w", detector=None)
    with pytest.raises(zoo.ZooError, match="detector=None: pass boxes"):
        lm(face_image())
    faces = lm(face_image(), boxes=[[100, 50, 260, 230]])
    assert len(faces) == 1 and faces[0].detector is None
    with pytest.raises(zoo.ZooError, match=r"unknown detector 'hog'.*detectors: \['haar'"):
        zoo.load("pipnet_mbv2_300w", detector="hog")
    with pytest.raises(zoo.ZooError, match="unknown detector 'pipnet_r18_300w'"):
        zoo.load("pipnet_mbv2_300w", detector="pipnet_r18_300w")
    with pytest.raises(zoo.ZooError, match="unknown detector 'hog'"):    # checked before the weights are looked for
        zoo.load("pipnet_r101_wflw", detector="hog")


def test_no_face_gives_empty_result(mbv2):
    assert mbv2(np.full((240, 320, 3), 128, np.uint8)) == []
    assert mbv2.timings["detect"] > 0


def test_recipe_only_entry_names_the_training_command(random_zoo):
    with pytest.raises(zoo.ZooError, match="python -m train pipnet_r101_wflw"):
        zoo.load("pipnet_r101_wflw")


def test_mobilefan_loads_and_predicts(random_zoo):
    write_random_weights("mobilefan_300w")
    lm = zoo.load("mobilefan_300w")
    assert lm(face_image(), boxes=[[100, 50, 260, 230]])[0].landmarks.shape == (68, 2)


def test_onnx_matches_torch(mbv2, tmp_path):
    info = mbv2.export_onnx(tmp_path / "m.onnx")
    assert info["max_abs_err"] < 1e-3, info
    onnx_lm = zoo.load("pipnet_mbv2_300w", backend="onnx")
    img, boxes = face_image(), [[100, 50, 260, 230], [10, 10, 90, 120]]   # batch of 2: dynamic batch
    a = [f.landmarks for f in mbv2(img, boxes=boxes)]
    b = [f.landmarks for f in onnx_lm(img, boxes=boxes)]
    assert onnx_lm.backend == "onnx"
    np.testing.assert_allclose(np.stack(a), np.stack(b), atol=0.05)   # pixels


@needs_shared
def test_haar_finds_real_faces_and_landmarks_follow(mbv2):
    from train.datasets import read_pts

    files = sorted((SHARED / "data" / "300w" / "lfpw" / "testset").glob("*.jpg"))[:5]
    hits = 0
    for f in files:
        faces = mbv2(f)
        gt = read_pts(f.with_suffix(".pts"))
        c = gt.mean(0)
        hits += any(fc.box[0] < c[0] < fc.box[2] and fc.box[1] < c[1] < fc.box[3] for fc in faces)
    assert hits >= 4


@needs_shared
def test_faceboxes_detector_entry_via_convert(random_zoo):
    from zoo.__main__ import main

    assert main(["convert", "faceboxes_v2", "--from", str(SHARED / "weights/faceboxes/FaceBoxesV2.pth")]) == 0
    write_random_weights("pipnet_mbv2_300w")
    lm = zoo.load("pipnet_mbv2_300w", detector="faceboxes_v2")
    img = sorted((SHARED / "data" / "300w" / "helen" / "testset").glob("*.jpg"))[0]
    faces = lm(img)
    assert len(faces) >= 1 and faces[0].score > 0.6


def test_push_then_load_gives_identical_outputs(hub_server, hf_home, random_zoo, tmp_path):
    """Push to the loopback Hub with the real huggingface_hub client, load back two ways, compare."""
    write_random_weights("pipnet_r18_300w")
    lm = zoo.load("pipnet_r18_300w")
    img, boxes = face_image(), [[100, 50, 260, 230], [10, 10, 90, 120]]
    ref = np.stack([f.landmarks for f in lm(img, boxes=boxes)])
    folder = lm.save_pretrained(tmp_path / "folder", metrics={"nme": 0.5, "n": 1, "split": "common"})
    sha = zoo.push(folder, "facezoo-test/pipnet_r18_300w", tag="v0.1")
    assert len(sha) == 40

    back = zoo.from_pretrained("facezoo-test/pipnet_r18_300w", revision=sha)
    np.testing.assert_array_equal(np.stack([f.landmarks for f in back(img, boxes=boxes)]), ref)

    # The registry route: an entry pinned to that commit and the file's sha256 resolves through the Hub.
    from zoo.hub import sha256_file
    e = zoo.registry._ENTRIES["pipnet_r18_300w"]
    (random_zoo / "pipnet_r18_300w" / "model.safetensors").unlink()        # nothing local any more
    zoo.registry._ENTRIES["pipnet_r18_300w"] = replace(e, hub=replace(
        e.hub, repo_id="facezoo-test/pipnet_r18_300w", revision=sha, sha256=sha256_file(folder / "model.safetensors")))
    pinned = zoo.load("pipnet_r18_300w")
    np.testing.assert_array_equal(np.stack([f.landmarks for f in pinned(img, boxes=boxes)]), ref)

    zoo.registry._ENTRIES["pipnet_r18_300w"] = replace(e, hub=replace(
        e.hub, repo_id="facezoo-test/pipnet_r18_300w", revision=sha, sha256="0" * 64))
    with pytest.raises(zoo.ZooError, match="sha256"):
        zoo.load("pipnet_r18_300w")
