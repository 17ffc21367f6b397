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


def test_a_rolled_training_crop_sees_what_the_upright_one_sees():
    """Landmarks rolled by 40 degrees, cropped by rolled_landmark_box at their own eye-line roll, land where
    the upright landmarks land in their gt crop: the network gets the face it was trained on."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(100, 200, (68, 2))
    pts[36], pts[45] = (110, 140), (190, 140)                     # a level eye line
    a = np.radians(40)
    centre = np.array([300.0, 250.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rolled = (pts - 150) @ rot.T + centre
    roll = crop.points_roll(rolled, (36, 45))
    assert abs(roll - a) < 1e-9
    size = 256
    up = crop.crop_matrix(crop.gt_crop_box(pts), size)
    m = crop.crop_matrix(crop.rolled_landmark_box(rolled, roll), size, roll)
    seen_up = np.c_[pts, np.ones(68)] @ up.T
    seen_rolled = np.c_[rolled, np.ones(68)] @ m.T
    np.testing.assert_allclose(seen_rolled, seen_up, atol=1e-3)
    back = crop.to_image_coords((seen_rolled / size)[None], crop.rolled_landmark_box(rolled, roll)[None],
                                np.array([roll]))[0]
    np.testing.assert_allclose(back, rolled, atol=1e-3)
    # with no roll, rolled_crop_box is the plain rule on a box of the rule's aspect
    box = np.array([10, 20, 110, 160], np.float32)
    np.testing.assert_allclose(crop.rolled_crop_box(box, (0.0, 0.1, 1.4, 1.0), 0.0),
                               crop.detector_crop_box(box, (0.0, 0.1, 1.4, 1.0)), atol=1e-4)
