"""Video: the One Euro filter, frame sources, and the tracker on a short synthetic clip of a real 300-W photo
(truth known per frame): it detects rarely, re-detects when the face is lost, and smoothing cuts jitter."""
from pathlib import Path

import cv2
import numpy as np
import pytest

import zoo
from zoo.detectors import load_detector
from zoo.metrics import nme, video_jitter, video_lag
from zoo.pts import read_pts
from zoo.track import OneEuroFilter, Tracker, frames, moving_face_clip, similarity
from zoo_fixtures import random_zoo, write_random_weights  # noqa: F401 (fixture)

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTO = SHARED / "data" / "300w" / "lfpw" / "testset" / "image_0001.jpg"
YUNET = SHARED / "weights" / "yunet" / "yunet_n_320_320.onnx"
needs_photo = pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/data/300w not present")


def test_one_euro_constant_step_and_speed():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    x = np.array([[10.0, 20.0]])
    for i in range(5):
        np.testing.assert_allclose(f(x, i / 30), x)                    # a still point stays put
    y = f(x + 30.0, 5 / 30)
    a = 1 / (1 + 1 / (2 * np.pi * 1.0) / (1 / 30))                    # alpha at 1 Hz, 30 fps
    np.testing.assert_allclose(y, x + a * 30.0, rtol=1e-5)             # first step: exponential smoothing
    # on a ramp, beta > 0 raises the cut-off with speed: less lag than beta = 0
    ramp = [np.array([[3.0 * i, 0.0]]) for i in range(30)]
    slow, fast = OneEuroFilter(1.0, 0.0), OneEuroFilter(1.0, 5.0)
    ys = [slow(p, i / 30, scale=50.0) for i, p in enumerate(ramp)][-1]
    yf = [fast(p, i / 30, scale=50.0) for i, p in enumerate(ramp)][-1]
    assert 0 < ramp[-1][0, 0] - yf[0, 0] < ramp[-1][0, 0] - ys[0, 0]
    f.reset()
    np.testing.assert_allclose(f(x + 7, 0.0), x + 7)                   # after reset: no memory
    with pytest.raises(zoo.ZooError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)


def test_video_lag_and_jitter_on_a_known_path():
    pts = np.random.default_rng(0).uniform(40, 120, (68, 2)).astype(np.float32)
    _, truth = moving_face_clip(np.zeros((160, 160, 3), np.uint8), pts, n_frames=40, noise=0)
    scheme = zoo.get_scheme("68")
    assert video_lag(truth, truth) == 0.0
    assert video_lag(truth[:-2], truth[2:]) == 2.0                    # predictions two frames behind
    assert video_jitter(truth, truth, scheme) == 0.0                  # motion of the truth is not jitter
    noisy = truth + np.random.default_rng(1).normal(0, 1.0, truth.shape)
    assert video_jitter(noisy, truth, scheme) > 0


def test_similarity_recovers_a_known_transform():
    pts = np.random.default_rng(0).random((68, 2)) * 100
    ang, s = np.deg2rad(12), 1.3
    m = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    a, b = similarity(pts, pts @ m.T + [5, -7])
    np.testing.assert_allclose(a, m, atol=1e-9)
    np.testing.assert_allclose(b, [5, -7], atol=1e-9)


def test_frames_from_a_video_file_an_iterable_and_bad_sources(tmp_path):
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(4):
        w.write(np.full((48, 64, 3), (0, 0, 200), np.uint8))            # BGR red
    w.release()
    got = list(frames(path))
    assert len(got) == 4 and got[0].shape == (48, 64, 3) and got[0][..., 0].mean() > 150   # RGB out
    assert len(list(frames([np.zeros((8, 8, 3), np.uint8)] * 2))) == 2
    with pytest.raises(zoo.ZooError, match="cannot open"):
        list(frames(tmp_path / "missing.mp4"))
    with pytest.raises(zoo.ZooError, match="iterable"):
        list(frames(3.5))


@needs_photo
def test_tracker_follows_a_moving_face_redetects_when_lost_and_smooths():
    det = load_detector("yunet", path=YUNET) if YUNET.is_file() else "haar"
    lm = zoo.load("pipnet_mbv2_300w", detector=det)
    img, gt = zoo.load_image(PHOTO), read_pts(PHOTO.with_suffix(".pts"))
    clip, truth = moving_face_clip(img, gt, n_frames=24, seed=1)
    blank = np.full_like(clip[0], 128)
    clip[12:15] = [blank] * 3                                         # the face leaves for 3 frames
    tracker = Tracker(lm, redetect_every=100, smooth=False)
    out = [tracker.update(f) for f in clip]
    assert [len(f) for f in out[12:15]] == [0, 0, 0]                  # lost at once, not followed into the gray
    name = det if isinstance(det, str) else det.name
    assert len(out[15]) == 1 and out[15][0].detector == name                # found again by the detector
    assert tracker.stats["lost"] == 1
    # detections: frame 0, the loss (frame 12) and each blank frame, the return (15): never every frame
    assert tracker.stats["detections"] <= 6
    seen = [i for i in range(24) if not 12 <= i < 15]
    pts = np.stack([out[i][0].landmarks for i in seen])
    assert float(np.mean(nme(pts, truth[seen], lm.scheme))) < 0.06
    assert all(out[i][0].detector is None for i in range(1, 12))      # tracked frames: no detector box

    # smoothing on a still clip: the same crops, less frame-to-frame noise
    still, still_truth = moving_face_clip(img, gt, n_frames=12, motion=0.0, noise=6.0, seed=2)
    raw = np.stack([f[0].landmarks for f in lm.track(still, smooth=False)])
    smooth = np.stack([f[0].landmarks for f in lm.track(still, smooth=True)])
    assert video_jitter(smooth, still_truth, lm.scheme) < 0.7 * video_jitter(raw, still_truth, lm.scheme)


def test_tracker_needs_a_detector(random_zoo):
    write_random_weights("pipnet_mbv2_300w")
    with pytest.raises(zoo.ZooError, match="detector=None"):
        Tracker(zoo.load("pipnet_mbv2_300w", detector=None))


def test_bench_track_row_and_ratios(random_zoo):
    from zoo.bench import add_ratios, bench_track, format_table

    class Centre:
        name, crop_rule = "centre", None

        def __call__(self, image):
            h, w = image.shape[:2]
            return np.array([[w * 0.3, h * 0.2, w * 0.7, h * 0.8]], np.float32), np.ones(1, np.float32)

    write_random_weights("pipnet_mbv2_300w")
    lm = zoo.load("pipnet_mbv2_300w", detector=Centre())
    img = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    row = bench_track(lm, img, n_frames=4, warmup=1)
    assert row["frames"] == 4 and row["fps"] > 0 and row["detector_runs"] >= 1
    res = {"results": [{"name": "a", "backend": "onnx", "detector": "x", "total": 10.0, "per_face": 4.0},
                       {"name": "b", "backend": "onnx-int8", "detector": "x", "total": 5.0, "per_face": 1.0},
                       {"name": "b", "backend": "onnx-int8", "detector": "x", "mode": "track", **row}],
           "repeats": 1, "hardware": "cpu", "faces": 1, "detector": "x"}
    add_ratios(res, "b:onnx-int8")
    assert res["results"][0]["total_vs_ref"] == 2.0 and res["results"][0]["face_vs_ref"] == 4.0
    assert "track" in format_table(res) and "b:onnx-int8:x" in format_table(res)
    with pytest.raises(zoo.ZooError, match="no such row"):
        add_ratios(res, "nope")


@needs_photo
def test_tracker_keeps_a_rolled_face_upright_in_its_crops():
    """A 300-W face rolled by 45 degrees and moving: tracked crops are levelled as detected ones are, and the
    landmarks stay as good as the upright face's; with levelling off they are not."""
    from train.rolled import roll_photo

    lm = zoo.load("pipnet_mbv2_300w", detector="yunet", backend="onnx")
    img, gt = zoo.load_image(PHOTO), read_pts(PHOTO.with_suffix(".pts"))
    rolled, rgt = roll_photo(img, gt, 45)

    def tracked_nme(image, truth_pts, upright):
        lm.upright_from_deg = 15.0 if upright else None
        clip, truth = moving_face_clip(image, truth_pts, n_frames=12, seed=3)
        out = [f[0].landmarks for f in lm.track(clip, smooth=False)]
        return float(np.mean(nme(np.stack(out), truth, lm.scheme)))

    upright, levelled, plain = tracked_nme(img, gt, True), tracked_nme(rolled, rgt, True), tracked_nme(rolled, rgt, False)
    assert levelled < upright + 0.01, (levelled, upright)
    assert plain > levelled + 0.01, (plain, levelled)
