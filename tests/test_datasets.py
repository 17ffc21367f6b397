"""Dataset readers on fixtures written in each dataset's own format from the real samples in shared/."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import fixtures_datasets as fx
from train.datasets import SPLITS, Sample, read_dataset, read_pts, write_pts
from train.datasets.cofw import is_v73

needs_300w = pytest.mark.skipif(not fx.have_300w(), reason="shared/data/300w not present")


def needs_samples(name: str):
    return pytest.mark.skipif(not fx.have_samples(name), reason=f"shared/data/samples/{name} not present")


# ---------------------------------------------------------------- .pts

PTS_TEXT = "version: 1\nn_points: 3\n{\n1 1\n10.5 20\n100 200.25\n}\n"


def test_read_pts_converts_one_based(tmp_path: Path):
    p = tmp_path / "a.pts"
    p.write_text(PTS_TEXT)
    pts = read_pts(p)
    assert pts.dtype == np.float32 and pts.shape == (3, 2)
    np.testing.assert_allclose(pts, [[0, 0], [9.5, 19], [99, 199.25]])


def test_write_pts_round_trip(tmp_path: Path):
    pts = np.random.default_rng(0).uniform(0, 500, (68, 2)).astype(np.float32)
    write_pts(tmp_path / "b.pts", pts)
    text = (tmp_path / "b.pts").read_text()
    assert text.startswith("version: 1\nn_points: 68\n{\n")
    np.testing.assert_allclose(read_pts(tmp_path / "b.pts", 68), pts, atol=1e-4)


@pytest.mark.parametrize("text, problem", [
    ("", "empty"),
    ("version: 1\nn_points: 2\n1 2\n3 4\n", "no '{'"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", "no '}'"),
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "n_points: 3 but the file lists 2"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 x\n}\n", "not numeric"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 4 5\n}\n", "two numbers"),
    ("version 1\n{\n1 2\n}\n", "not 'key: value'"),
])
def test_read_pts_malformed(tmp_path: Path, text: str, problem: str):
    p = tmp_path / "bad.pts"
    p.write_text(text)
    with pytest.raises(ValueError, match="bad.pts") as err:
        read_pts(p)
    assert problem in str(err.value)


def test_read_pts_wrong_point_count(tmp_path: Path):
    p = tmp_path / "three.pts"
    p.write_text(PTS_TEXT)
    with pytest.raises(ValueError, match=r"three.pts: expected 68 points, the file has 3"):
        read_pts(p, 68)


# ---------------------------------------------------------------- 300-W

@needs_300w
def test_300w_splits(tmp_path: Path):
    root = fx.write_300w(tmp_path, per_folder=2)
    train = read_dataset("300w", root, "train")
    common = read_dataset("300w", root, "common")
    assert len(train) == 6 and len(common) == 4
    assert [s.subset for s in common] == ["helen/testset"] * 2 + ["lfpw/testset"] * 2
    names = [s.image_path.relative_to(root).as_posix() for s in train]
    assert names == sorted(names)
    s = common[0]
    assert isinstance(s, Sample) and s.box is None and s.image is None and s.attributes == {}
    assert s.landmarks.shape == (68, 2) and s.landmarks.dtype == np.float32
    # 0-based: the file's first number minus one.
    first = s.image_path.with_suffix(".pts").read_text().splitlines()[3].split()
    np.testing.assert_allclose(s.landmarks[0], [float(first[0]) - 1, float(first[1]) - 1], atol=1e-4)
    assert s.load_image().shape[2] == 3


@needs_300w
def test_300w_missing_folders(tmp_path: Path, caplog):
    root = fx.write_300w(tmp_path, per_folder=1)
    with pytest.raises(FileNotFoundError, match="ibug"):
        read_dataset("300w", root, "challenging")
    with caplog.at_level(logging.WARNING):
        full = read_dataset("300w", root, "full")
    assert len(full) == 2 and "ibug" in caplog.text
    shutil.rmtree(root / "lfpw" / "testset")
    assert len(read_dataset("300w", root, "common")) == 1
    for f in (root / "helen" / "testset").iterdir():
        if f.suffix == ".jpg":
            f.unlink()
    with pytest.raises(ValueError, match="no image"):
        read_dataset("300w", root, "common")
    with pytest.raises(ValueError, match="unknown 300-W split"):
        read_dataset("300w", root, "valid")


@needs_300w
def test_300w_found_below_parent(tmp_path: Path):
    fx.write_300w(tmp_path, per_folder=1)
    assert len(read_dataset("300w", tmp_path, "common")) == 2     # tmp/300w found by name


@needs_300w
def test_pts_folder(tmp_path: Path):
    root = fx.write_300w(tmp_path, per_folder=1)
    (root / "orphan.pts").write_text(PTS_TEXT)                      # no image: skipped
    samples = read_dataset("pts", root, "ignored")
    assert len(samples) == 5
    assert {s.subset for s in samples} == set(fx.W300_FOLDERS)
    assert all(s.landmarks.shape == (68, 2) for s in samples)
    (root / "afw" / "extra.jpg").write_bytes((root / "afw").glob("*.jpg").__next__().read_bytes())
    (root / "afw" / "extra.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="extra.pts"):
        read_dataset("pts", root)


# ---------------------------------------------------------------- WFLW

@needs_samples("wflw")
@pytest.mark.parametrize("flat", [False, True])
def test_wflw(tmp_path: Path, flat: bool):
    root, faces = fx.write_wflw(tmp_path, flat=flat)
    test = read_dataset("wflw", root, "test")
    assert len(test) == 4 and len(read_dataset("wflw", root, "train")) == 2
    for s, f in zip(test, faces):
        assert s.image_path.is_file() and s.image_path.name == f.file_name
        assert s.landmarks.shape == (98, 2) and s.landmarks.dtype == np.float32
        np.testing.assert_allclose(s.landmarks, f.landmarks, atol=1e-4)
        x, y, w, h = f.bbox
        assert s.box[0] <= x and s.box[2] >= x + w - 1e-3 and s.box.shape == (4,)
    assert test[1].attributes == {"pose": 0, "expression": 1, "illumination": 0, "makeup": 0,
                                  "occlusion": 0, "blur": 1}
    sizes = {a: len(read_dataset("wflw", root, a)) for a in ("pose", "expression", "illumination", "makeup",
                                                             "occlusion")}
    assert sizes == {"pose": 2, "expression": 1, "illumination": 1, "makeup": 1, "occlusion": 1}
    assert [s.image_path.name for s in read_dataset("wflw", root, "test_blur")] == [faces[1].file_name]
    assert set(SPLITS["wflw"]) >= {"train", "test", "pose", "blur"}


@needs_samples("wflw")
def test_wflw_bad_line(tmp_path: Path):
    root, _ = fx.write_wflw(tmp_path)
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_test.txt"
    ann.write_text(ann.read_text().splitlines()[0].split(" ", 3)[3] + "\n")
    with pytest.raises(ValueError, match=r"list_98pt_rect_attr_test.txt:1: expected 196 coordinates \(or 206 "
                                         r"numbers.*got 203 numbers"):
        read_dataset("wflw", root, "test")


@needs_samples("wflw")
@pytest.mark.parametrize("layout", ["shared", "original"])
def test_wflw_plain_lists_with_subset_lists(tmp_path: Path, layout: str):
    """196 coordinates + path per line, no box; attributes from the list_98pt_test_<attr>.txt subset lists."""
    root, faces = fx.write_wflw_plain(tmp_path, layout)
    test = read_dataset("wflw", root, "test")
    assert [s.image_path.name for s in test] == [f.file_name for f in faces]
    for s, f in zip(test, faces):
        np.testing.assert_allclose(s.landmarks, f.landmarks, atol=1e-4)
        assert s.box is None and s.subset == "test"
    for s, flags in zip(test, fx.WFLW_FLAGS):
        assert s.attributes == dict(zip(("pose", "expression", "illumination", "makeup", "occlusion", "blur"), flags))
    sizes = {a: len(read_dataset("wflw", root, a)) for a in ("pose", "expression", "illumination", "makeup",
                                                             "occlusion", "blur")}
    assert sizes == {"pose": 2, "expression": 1, "illumination": 1, "makeup": 1, "occlusion": 1, "blur": 1}
    assert len(read_dataset("wflw", root, "test_largepose")) == 2      # WFLW's own subset name works too
    few = read_dataset("wflw", root, "fewshot_train")
    assert len(few) == 2 and few[0].subset == "fewshot_train" and few[0].attributes == {}
    with pytest.raises(ValueError, match="no attribute flags and no subset lists"):
        read_dataset("wflw", root, "fewshot_train_blur")
    with pytest.raises(FileNotFoundError, match="no WFLW 'train' list"):
        read_dataset("wflw", root, "train")
    with pytest.raises(ValueError, match="unknown WFLW split 'valid'"):
        read_dataset("wflw", root, "valid")


@needs_samples("wflw")
def test_wflw_rect_attr_list_wins_over_plain(tmp_path: Path):
    """With both formats of the test list present, the one with boxes and flags is read."""
    root, _ = fx.write_wflw(tmp_path)
    plain, _ = fx.write_wflw_plain(tmp_path)
    shutil.copy(plain / "WFLW_annotations" / "list_98pt_test.txt", root / "WFLW_annotations" / "list_98pt_test.txt")
    test = read_dataset("wflw", root, "test")
    assert len(test) == 4 and all(s.box is not None for s in test)


@needs_samples("wflw")
def test_wflw_plain_bad_line(tmp_path: Path):
    root, _ = fx.write_wflw_plain(tmp_path)
    ann = root / "WFLW_annotations" / "list_98pt_test.txt"
    first = ann.read_text().splitlines()[0].split()
    ann.write_text(" ".join(first[:100] + first[-1:]) + "\n")
    with pytest.raises(ValueError, match=r"list_98pt_test.txt:1: .*got 100 numbers and 1 other"):
        read_dataset("wflw", root, "test")
    ann.write_text(" ".join(first[:-1]) + "\n")               # no image path
    with pytest.raises(ValueError, match=r"list_98pt_test.txt:1: .*then an image path"):
        read_dataset("wflw", root, "test")


WFLW_SHARED = fx.SHARED / "data" / "wflw"


@pytest.mark.skipif(not (WFLW_SHARED / "WFLW_annotations" / "list_98pt_test.txt").is_file(),
                    reason="shared/data/wflw not present")
def test_wflw_shared_lists():
    """The shared WFLW part: 72 test and 61 few-shot faces, subsets as long as their lists, split by photo."""
    ann = WFLW_SHARED / "WFLW_annotations"
    test, few = read_dataset("wflw", fx.SHARED / "data", "test"), read_dataset("wflw", WFLW_SHARED, "fewshot_train")
    assert (len(test), len(few)) == (72, 61)
    assert not {s.image_path for s in test} & {s.image_path for s in few}
    for split, samples in (("test", test), ("fewshot_train", few)):
        for attr, name in (("pose", "largepose"), ("expression", "expression"), ("illumination", "illumination"),
                           ("makeup", "makeup"), ("occlusion", "occlusion"), ("blur", "blur")):
            lines = [x for x in (ann / f"list_98pt_{split}_{name}.txt").read_text().splitlines() if x.strip()]
            assert sum(s.attributes[attr] for s in samples) == len(lines), (split, attr)
            assert len(read_dataset("wflw", WFLW_SHARED, f"{split}_{attr}")) == len(lines)


# ---------------------------------------------------------------- COFW

@needs_samples("cofw")
@pytest.mark.parametrize("flavour", ["v73", "v5"])
def test_cofw(tmp_path: Path, flavour: str):
    if flavour == "v73":
        pytest.importorskip("h5py")
    root, faces = fx.write_cofw(tmp_path, flavour)
    assert is_v73(root / "COFW_test_color.mat") == (flavour == "v73")
    test = read_dataset("cofw", root, "test")
    train = read_dataset("cofw", root, "train")
    assert len(test) == 2 and len(train) == 2
    for i, (s, f) in enumerate(zip(test, faces)):
        assert s.image_path is None and s.subset == "test" and s.attributes["index"] == i
        assert s.landmarks.shape == (29, 2) and s.landmarks.dtype == np.float32
        np.testing.assert_allclose(s.landmarks, f.landmarks, atol=1e-4)        # 1-based file -> 0-based
        x, y, w, h = f.bbox
        np.testing.assert_allclose(s.box, [x, y, x + w, y + h], atol=1e-4)
        np.testing.assert_array_equal(s.occluded, f.visibility == 1)
        assert s.attributes["occluded_points"] == int((f.visibility == 1).sum()) > 0
        ref = np.asarray(__import__("PIL.Image").Image.open(f.image).convert("RGB"))
        assert s.image.shape == ref.shape and s.image.dtype == np.uint8       # grey faces become RGB
        if i == 0:
            np.testing.assert_array_equal(s.image, ref)
        else:
            assert (s.image[..., 0] == s.image[..., 2]).all()
        assert s.load_image().shape == ref.shape
    np.testing.assert_allclose(train[0].landmarks, faces[1].landmarks, atol=1e-4)


def test_cofw_missing_variable(tmp_path: Path):
    from scipy.io import savemat

    savemat(str(tmp_path / "COFW_test_color.mat"), {"IsT": np.zeros((1, 1)), "phisT": np.zeros((1, 87))})
    with pytest.raises(ValueError, match="bboxesT"):
        read_dataset("cofw", tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="COFW_train"):
        read_dataset("cofw", tmp_path, "train")


# ---------------------------------------------------------------- AFLW

@needs_samples("aflw")
def test_aflw(tmp_path: Path):
    root, faces = fx.write_aflw(tmp_path)
    test = read_dataset("aflw", root, "test")
    frontal = read_dataset("aflw", root, "frontal")
    train = read_dataset("aflw", root, "train")
    assert (len(test), len(frontal), len(train)) == (2, 1, 1)
    assert [s.attributes.get("frontal") for s in test] == [1, 0]
    for s, f in zip(test, faces):
        assert s.image_path == root / "images" / f.file_name
        assert s.landmarks.shape == (19, 2)
        np.testing.assert_allclose(s.landmarks, f.landmarks, atol=1e-4)
        cx, cy = f.extra["center"]
        half = f.extra["box_size"] / 2
        np.testing.assert_allclose(s.box, [cx - half, cy - half, cx + half, cy + half])
    assert frontal[0].image_path.name == faces[0].file_name
    assert train[0].image_path.name == faces[1].file_name


@needs_samples("aflw")
def test_aflw_bad_columns(tmp_path: Path):
    root, _ = fx.write_aflw(tmp_path)
    p = root / "face_landmarks_aflw_test.csv"
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:1] + [",".join(lines[1].split(",")[:-2])]) + "\n")
    with pytest.raises(ValueError, match=r"face_landmarks_aflw_test.csv:2: expected 43 columns"):
        read_dataset("aflw", root, "test")


def test_unknown_dataset_and_folder(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown dataset"):
        read_dataset("lapa", tmp_path, "test")
    with pytest.raises(FileNotFoundError):
        read_dataset("300w", tmp_path / "nope", "common")
