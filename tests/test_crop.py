"""Crop rules and the warp into the network input and back."""
import numpy as np

from zoo import crop


def test_pipnet_rule_widens_and_shifts_down():
    b = crop.detector_crop_box(np.array([100, 100, 200, 300], np.float32))
    np.testing.assert_allclose(b, [90, 120, 210, 320])    # 10% of w each side, down by 10% of h


def test_fit_crop_rule_recovers_a_known_rule():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (50, 2))
    wh = rng.uniform(50, 200, (50, 2))
    det = np.concatenate([xy, xy + wh], axis=1)
    rule = (0.02, 0.15, 0.95, 0.9)
    assert crop.fit_crop_rule(det, crop.detector_crop_box(det, rule)) == rule


def test_warp_and_back_are_inverse():
    img = np.zeros((200, 300, 3), np.uint8)
    img[60:62, 150:152] = 255                               # a dot at (150.5, 60.5)
    box = np.array([100, 20, 220, 180], np.float32)
    out = crop.warp(img, crop.crop_matrix(box, 256), 256)
    ys, xs = np.nonzero(out[..., 0] > 30)
    norm = np.array([[[xs.mean(), ys.mean()]]]) / 256      # the same pixel-centre convention both ways
    back = crop.to_image_coords(norm, box[None])[0, 0]
    np.testing.assert_allclose(back, [150.5, 60.5], atol=0.3)


def test_gt_crop_box_scales_about_the_centre():
    lm = np.array([[10, 20], [30, 60]], np.float32)
    np.testing.assert_allclose(crop.gt_crop_box(lm, 1.1), [9, 18, 31, 62])
