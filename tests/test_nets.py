"""Networks: torchvision key names, ImageNet loading, PIPNet and MobileFAN decoding on hand-made outputs."""
import numpy as np
import pytest
import torch

from zoo.nets import build_model
from zoo.nets.backbones import build_trunk, load_imagenet
from zoo.nets.decode import decode_heatmaps
from zoo.nets.pipnet import SPREAD_FLOOR, merge_matrix, neighbour_indices
from zoo.schemes import SCHEMES, get_scheme


# A few parameter names as torchvision writes them (resnet18-f37072fd.pth, mobilenet_v2-b0353104.pth).
TV_KEYS = {
    "resnet18": ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                 "layer2.0.downsample.1.running_mean", "layer4.1.bn2.weight"],
    "resnet50": ["layer1.0.conv3.weight", "layer1.0.bn3.bias", "layer4.2.conv2.weight"],
    "mobilenet_v2": ["features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight",
                     "features.1.conv.1.weight", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
                     "features.2.conv.2.weight", "features.2.conv.3.running_var", "features.18.0.weight"],
}
TV_COUNTS = {"resnet18": 11_176_512, "resnet50": 23_508_032, "resnet101": 42_500_160, "mobilenet_v2": 2_223_872}


@pytest.mark.parametrize("name", sorted(TV_COUNTS))
def test_trunk_matches_torchvision_layout(name):
    t = build_trunk(name)
    keys = set(t.state_dict())
    for k in TV_KEYS.get(name, []):
        assert k in keys, k
    assert sum(p.numel() for p in t.parameters()) == TV_COUNTS[name]   # torchvision's count minus the classifier


def _write_tv_checkpoint(trunk, path, classifier):
    state = {k: v.clone() for k, v in trunk.state_dict().items() if not k.endswith("num_batches_tracked")}
    state.update(classifier)
    torch.save(state, path)


def test_load_imagenet_checkpoint_strict(tmp_path):
    src = build_trunk("resnet18")
    torch.nn.init.normal_(src.conv1.weight)
    path = tmp_path / "resnet18-f37072fd.pth"
    _write_tv_checkpoint(src, path, {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    model = build_model("pipnet", 68, backbone="resnet18")
    load_imagenet(model.backbone, path)
    assert torch.equal(model.backbone.conv1.weight, src.conv1.weight)
    with pytest.raises(ValueError, match="sha256"):
        load_imagenet(model.backbone, path, expect_sha256_prefix="f37072fd")
    bad = dict(torch.load(path, weights_only=True))
    bad["layer9.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="unexpected"):
        load_imagenet(model.backbone, tmp_path / "bad.pth")


def test_mobilefan_encoder_takes_mobilenet_checkpoint(tmp_path):
    src = build_trunk("mobilenet_v2")
    path = tmp_path / "mbv2.pth"
    _write_tv_checkpoint(src, path, {"classifier.1.weight": torch.zeros(1000, 1280), "classifier.1.bias": torch.zeros(1000)})
    fan = build_model("mobilefan", 68)
    load_imagenet(fan.backbone, path)     # features.18 is an expected leftover for the 320-channel encoder
    assert torch.equal(fan.backbone.features[3].conv[1][0].weight, src.features[3].conv[1][0].weight)


def test_neighbour_merge_by_hand():
    mean = np.array([[0, 0], [1, 0], [3, 0]], np.float32)
    nb = neighbour_indices(mean, 1)
    assert nb[:, 0].tolist() == [1, 0, 1]
    m = merge_matrix(torch.as_tensor(nb))
    # point 1: own + predicted by 0 and by 2 -> mean of three; point 2: nobody predicts it -> own only
    own = torch.tensor([10.0, 20.0, 30.0])
    nbp = torch.tensor([21.0, 12.0, 23.0])          # slot of landmark i predicts landmark nb[i]
    merged = m @ torch.cat([own, nbp])
    assert torch.allclose(merged, torch.tensor([(10 + 12) / 2, (20 + 21 + 23) / 3, 30.0]))


def test_pipnet_decode_known_cells():
    model = build_model("pipnet", 68, backbone="mobilenet_v2", num_nb=10)
    model.set_mean_face(np.random.default_rng(0).random((68, 2)))
    b, n, h, w = 2, 68, 8, 8
    cls = torch.zeros(b, n, h, w)
    target = torch.rand(b, n, 2) * 0.98
    cx, cy = (target[..., 0] * w).floor().long(), (target[..., 1] * h).floor().long()
    for i in range(b):
        for j in range(n):
            cls[i, j, cy[i, j], cx[i, j]] = 1.0
    ox = torch.zeros(b, n, h, w)
    oy = torch.zeros(b, n, h, w)
    ox[:] = (target[..., 0] * w - cx)[..., None, None]
    oy[:] = (target[..., 1] * h - cy)[..., None, None]
    # neighbour offsets consistent with the truth: neighbour k of landmark j sits at target[nb]
    nb = model.nb_idx
    nbx = (target[:, nb, 0] * w - cx[..., None]).reshape(b, n * 10, 1, 1).expand(b, n * 10, h, w)
    nby = (target[:, nb, 1] * h - cy[..., None]).reshape(b, n * 10, 1, 1).expand(b, n * 10, h, w)
    out, evidence = model.decode((cls, ox, oy, nbx.contiguous(), nby.contiguous()))
    np.testing.assert_allclose(out, target.numpy(), atol=1e-5)
    assert evidence.shape == (b, n, len(model.EVIDENCE))
    np.testing.assert_allclose(evidence[..., 0], 1.0)       # the score map's value at the chosen cell
    # candidates that agree scatter by nothing: the spread sits at its floor
    np.testing.assert_allclose(evidence[..., 1], np.log(SPREAD_FLOOR), atol=1e-3)

    # one neighbour predicting landmark j two cells off: j's spread grows, a landmark it does not predict keeps its
    i, slot = 0, 0
    j = int(nb[i, slot])
    nbx = nbx.clone()
    nbx[:, i * 10 + slot] += 2.0
    moved, evidence2 = model.decode((cls, ox, oy, nbx, nby.contiguous()))
    assert (evidence2[:, j, 1] > evidence[:, j, 1] + 1.0).all()
    untouched = [m for m in range(n) if m != j]
    np.testing.assert_allclose(evidence2[:, untouched, 1], evidence[:, untouched, 1], atol=1e-4)
    assert (np.abs(moved[:, j, 0] - out[:, j, 0]) > 0).all()   # and the merged point moves


def test_heatmap_decode_subpixel():
    from train.losses import gaussian_heatmaps

    pts = torch.tensor([[[0.3012, 0.6071], [0.5, 0.5], [0.81, 0.12]]])
    hm = gaussian_heatmaps(pts, 64, 64, 1.5)
    out, peak = decode_heatmaps(hm)
    assert np.abs(out - pts.numpy()).max() < 0.5 / 64 + 1e-6    # within half a heatmap pixel
    assert peak.shape == (1, 3, 1) and (peak > 0.8).all()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_schemes_are_consistent(scheme):
    s = get_scheme(scheme)
    p = s.flip_perm
    assert sorted(p.tolist()) == list(range(s.num_points))
    assert (p[p] == np.arange(s.num_points)).all()            # flipping twice is the identity
    for c in s.contours:
        assert max(c.indices) < s.num_points


def test_scheme_lookup_and_norm():
    assert get_scheme("wflw").num_points == 98 and get_scheme(29).name == "29"
    lm = np.zeros((68, 2))
    lm[36], lm[45] = (10, 5), (40, 5)
    assert get_scheme("300w").norm_distance(lm) == pytest.approx(30)
    assert get_scheme("aflw").norm_distance(np.zeros((19, 2)), box=np.array([0, 0, 40, 10])) == pytest.approx(20)
    with pytest.raises(KeyError, match="unknown landmark scheme"):
        get_scheme("42")
