"""Schemes: face regions and the WFLW 98 -> 68 point map, structurally and on real WFLW faces."""
from __future__ import annotations


import numpy as np
import pytest

import fixtures_datasets as fx
from zoo.registry import ZooError
from zoo.schemes import REGIONS, SCHEMES, WFLW98_TO_68, convert_points, get_scheme, to_scheme

WFLW_DATA = fx.SHARED / "data" / "wflw"
WFLW_TEST_LIST = WFLW_DATA / "WFLW_annotations" / "list_98pt_test.txt"


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_regions_cover_every_point_once(name: str):
    s = SCHEMES[name]
    assert tuple(s.regions) == REGIONS
    points = sorted(i for idx in s.regions.values() for i in idx)
    assert points == list(range(s.num_points))


def test_regions_are_closed_under_flip():
    for name in ("68", "98"):
        s = get_scheme(name)
        for region, idx in s.regions.items():
            assert set(s.flip_perm[list(idx)]) == set(idx), (name, region)


def test_map_picks_68_distinct_points_in_region_order():
    assert len(WFLW98_TO_68) == 68 and len(set(WFLW98_TO_68)) == 68
    r68, r98 = get_scheme("68").regions, get_scheme("98").regions
    for region, idx in r68.items():     # each 68-point region draws from the same 98-point region
        assert {WFLW98_TO_68[i] for i in idx} <= set(r98[region]), region


def test_map_commutes_with_flip():
    """Mirroring then mapping == mapping then mirroring: left/right and point order agree between schemes."""
    p68, p98 = get_scheme("68").flip_perm, get_scheme("98").flip_perm
    m = np.asarray(WFLW98_TO_68)
    assert (p98[m] == m[p68]).all()


def test_map_keeps_the_normaliser():
    pts = np.random.default_rng(0).normal(size=(5, 98, 2))
    out = convert_points(pts, "98", "68")
    assert out.shape == (5, 68, 2)
    np.testing.assert_allclose(get_scheme("68").norm_distance(out), get_scheme("98").norm_distance(pts))


def test_convert_points_identity_and_errors():
    pts = np.zeros((68, 2), np.float32)
    assert convert_points(pts, "68", "300w") is pts
    assert convert_points(np.zeros((98, 2)), "wflw", 68).shape == (68, 2)
    with pytest.raises(ZooError, match="'68'.*'98'"):
        convert_points(pts, "68", "98")
    with pytest.raises(ZooError, match="'98'.*'5'"):
        convert_points(np.zeros((98, 2)), "98", "5")
    with pytest.raises(ZooError, match=r"\(\.\.\., 98, 2\)"):
        convert_points(pts, "98", "68")


@pytest.mark.skipif(not fx.have_samples("wflw"), reason="shared/data/samples/wflw absent")
def test_to_scheme_goes_both_ways():
    """Teachers of either scheme label pools of either: 98 -> 68 is the subset, 68 -> 98 leaves 30 NaN."""
    p98 = np.random.default_rng(0).random((2, 98, 2)).astype(np.float32)
    down = to_scheme(p98, "98", "68")
    assert np.array_equal(down, p98[:, list(WFLW98_TO_68)])
    up = to_scheme(down, "68", "98")
    assert np.isnan(up[..., 0]).sum(1).tolist() == [30, 30]
    assert np.array_equal(up[:, list(WFLW98_TO_68)], down)
    assert np.array_equal(to_scheme(p98, "wflw", "98"), p98)


def test_mapped_sample_faces_are_anatomically_ordered():
    """On the two real WFLW samples: the mapped eyes sit above the nose tip, which sits above the mouth, and the
    outer eye corners (36, 45) are WFLW's normaliser points (60, 72)."""
    for face in fx.load_faces("wflw"):
        p = convert_points(face.landmarks, "98", "68")
        eyes, tip, mouth = p[36:48].mean(0), p[33], p[48:68].mean(0)
        assert eyes[1] < tip[1] < mouth[1], face.file_name
        np.testing.assert_array_equal(p[[36, 45]], face.landmarks[[60, 72]])


@pytest.mark.skipif(not WFLW_TEST_LIST.is_file(), reason="shared/data/wflw absent")
def test_map_agrees_with_a_300w_model_on_real_wflw_faces():
    """A 68-point model's predictions on 12 real WFLW faces land nearest to the mapped point of the same index
    (median over faces), except where two mouth points coincide on a closed mouth."""
    import zoo
    from zoo.crop import gt_crop_box

    lm = zoo.load("pipnet_r18_300w")     # only predict_crops: its detector is never loaded
    rows = [line.split() for line in WFLW_TEST_LIST.read_text().splitlines()[:12]]
    preds, truth = [], []
    for r in rows:
        pts98 = np.asarray(r[:196], np.float64).reshape(98, 2)
        gt = convert_points(pts98, "98", "68")
        img = zoo.load_image(WFLW_DATA / "WFLW_images" / r[196])
        preds.append(lm.predict_crops(img, gt_crop_box(gt, 1.1)[None])[0])
        truth.append(gt)
    P, G = np.asarray(preds), np.asarray(truth)
    io = get_scheme("68").norm_distance(G)
    dist = np.median(np.linalg.norm(P[:, :, None] - G[:, None], axis=-1) / io[:, None, None], axis=0)  # (68, 68)
    nearest = dist.argmin(axis=1)
    mouth_ambiguous = {48, 54, *range(60, 68)}     # outer corners meet inner corners/lips on a closed mouth
    wrong = [(i, int(j)) for i, j in enumerate(nearest) if i != j and i not in mouth_ambiguous]
    assert not wrong
    assert np.median(np.diag(dist)) < 0.08
