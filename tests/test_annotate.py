"""zoo annotate: a folder with a broken file (listed, never fatal), resume (done files skipped), CSV rebuilt
from the JSONs, annotated images; and a video, frame by frame."""
import json

import cv2
import numpy as np
from PIL import Image

import zoo
from zoo.__main__ import main as zoo_main
from zoo.annotate import annotate
from zoo_fixtures import random_zoo, write_random_weights  # noqa: F401 (fixture)

NAME = "pipnet_mbv2_300w"


class CentreBox:
    """A detector that finds one face in the middle of any image (the tests check the bookkeeping)."""
    name = "centre"
    crop_rule = None

    def __call__(self, image):
        h, w = image.shape[:2]
        return np.array([[w * 0.25, h * 0.2, w * 0.75, h * 0.8]], np.float32), np.array([0.9], np.float32)


def photo_folder(root):
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(root / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(root / "sub" / "b.png")
    (root / "broken.jpg").write_bytes((root / "a.jpg").read_bytes()[:40])      # truncated JPEG
    (root / "notes.txt").write_text("not an image")                              # not looked at
    return root


def test_folder_broken_file_resume_csv_and_images(random_zoo, tmp_path):
    write_random_weights(NAME)
    lm = zoo.load(NAME, detector=CentreBox())
    src, out = photo_folder(tmp_path / "in"), tmp_path / "out"
    rep = annotate(src, lm, out, images=True, progress=False)
    assert (rep.done, rep.skipped, rep.faces) == (2, 0, 2)
    assert [f["file"] for f in rep.failed] == ["broken.jpg"] and "broken.jpg" in rep.failed[0]["error"]
    doc = json.loads((out / "json" / "sub" / "b.png.json").read_text())
    assert doc["image"] == "sub/b.png" and (doc["width"], doc["height"]) == (100, 100)
    assert len(doc["faces"]) == 1 and len(doc["faces"][0]["landmarks"]) == 68
    assert (out / "images" / "a.png").is_file() and (out / "images" / "sub" / "b.png").is_file()
    rows = (out / "annotations.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("image,face,x0,y0,x1,y1,score,detector,confidence,x0") and "x67" in rows[0]
    report = json.loads((out / "report.json").read_text())
    assert report["csv_rows"] == 2 and report["failed"][0]["file"] == "broken.jpg"

    # resume: nothing done twice; a deleted (or half-written) JSON is redone; the CSV still has every face
    again = annotate(src, lm, out, progress=False)
    assert (again.done, again.skipped, len(again.failed)) == (0, 2, 1)
    (out / "json" / "a.jpg.json").write_text('{"faces": [')           # as if killed mid-write
    third = annotate(src, lm, out, progress=False)
    assert (third.done, third.skipped) == (1, 1)
    assert len((out / "annotations.csv").read_text().splitlines()) == 3


def test_review_lists_the_least_confident_faces(random_zoo, tmp_path):
    import hashlib
    from dataclasses import replace

    from zoo.registry import Confidence

    path = write_random_weights(NAME)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    e = zoo.registry._ENTRIES[NAME]
    zoo.registry._ENTRIES[NAME] = replace(e, hub=replace(e.hub, sha256=sha), confidence=Confidence(
        (4.0, -1.0), -1.0, 0.1, sha, ("peak", "log_spread")))
    lm = zoo.load(NAME, detector=CentreBox())
    src, out = photo_folder(tmp_path / "in"), tmp_path / "out"
    everything = annotate(src, lm, out, progress=False, review_below=1.01).review
    assert len(everything) == 2 and everything[0]["confidence"] <= everything[1]["confidence"]
    assert {r["image"] for r in everything} == {"a.jpg", "sub/b.png"}
    assert json.loads((out / "report.json").read_text())["review"] == everything
    row = (out / "annotations.csv").read_text().splitlines()[1].split(",")
    assert 0 <= float(row[8]) <= 1                                     # the face's mean confidence
    cut = (everything[0]["confidence"] + everything[1]["confidence"]) / 2
    assert annotate(src, lm, out, progress=False, review_below=cut).review == everything[:1]


def test_cli_on_a_video_and_a_missing_input(random_zoo, tmp_path, capsys):
    write_random_weights(NAME)
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 80))
    for i in range(3):
        w.write(np.full((80, 96, 3), 40 * i, np.uint8))
    w.release()
    out = tmp_path / "vout"
    assert zoo_main(["annotate", str(video), "--model", NAME, "--out", str(out), "--detector", "haar",
                     "--no-progress"]) == 0
    assert "annotated 3" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "json").iterdir()) == [f"frame_{i:06d}.json" for i in range(3)]
    assert json.loads((out / "json" / "frame_000002.json").read_text())["frame"] == 2
    assert zoo_main(["annotate", str(tmp_path / "nowhere"), "--model", NAME, "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
