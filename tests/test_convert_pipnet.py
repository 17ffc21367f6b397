"""The PIPNet authors' released checkpoints become zoo entries: `python -m zoo convert NAME --from X.pth
--meanface meanface.txt`, then `zoo.load(NAME)`.

Checkpoints here are random state_dicts in the authors' exact layout (torchvision key names without a prefix,
then cls/x/y/nb_x/nb_y heads). The reference below is written from their code's description, independently of
zoo/nets: a functional forward that walks their key names, their get_meanface (neighbours by squared distance
on the mean face, reverse lists padded to the longest) and their forward_pip decode + neighbour merging.
The authors' mean faces come from ../shared/reference/pipnet/ (those cases skip without it); a generated mean
face keeps one case per backbone running everywhere.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import zoo
from zoo.__main__ import main as zoo_main
from zoo.nets.backbones import build_trunk

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "pipnet"
DATA_DIR = {"300w": "data_300W", "wflw": "WFLW", "cofw": "COFW", "aflw": "AFLW"}
POINTS = {"300w": 68, "wflw": 98, "cofw": 29, "aflw": 19}
TAG = {"resnet18": "r18", "resnet50": "r50", "resnet101": "r101", "mobilenet_v2": "mbv2"}
NUM_NB = 10
SIZE = 96                                     # crops of 96 px: a 3x3 score map at stride 32, fast for ResNet101
# MobileNetV2 (width 1.0): the stride of each inverted-residual block features.1..17.
MBV2_STRIDES = (1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)


# ------------------------------------------------------------------ checkpoints in the authors' layout
_TRUNKS: dict[str, OrderedDict] = {}


def _trunk_state(backbone: str) -> OrderedDict:
    """Random trunk weights under torchvision's names (what models.resnetXX()/mobilenet_v2() give their
    Pip_* wrappers), with non-trivial BatchNorm statistics; cached per backbone (ResNet101 is 42 M numbers)."""
    if backbone not in _TRUNKS:
        g = torch.Generator().manual_seed(len(backbone))
        state = OrderedDict()
        for key, t in build_trunk(backbone).state_dict().items():
            if key.endswith("num_batches_tracked"):
                state[key] = torch.tensor(7)
            elif key.endswith("running_var"):
                state[key] = torch.rand(t.shape, generator=g) + 0.5
            elif key.endswith(("running_mean", ".bias")):
                state[key] = torch.randn(t.shape, generator=g) * 0.1
            elif t.ndim == 1:                                  # BatchNorm weight
                state[key] = torch.rand(t.shape, generator=g) + 0.5
            else:                                              # conv weight, He-scaled: activations stay finite
                state[key] = torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5
        # Residual branches end in a BatchNorm scaled down (as zero-init-residual training starts): without it
        # 33 random blocks of ResNet101 blow activations up to where float32 rounding dominates the comparison.
        for key in [k for k in state if k.endswith((".conv3.weight", ".conv2.weight", ".conv.3.weight"))]:
            block = key.rsplit(".", 2)[0]
            last_bn = f"{block}.bn3" if f"{block}.conv3.weight" in state else f"{block}.bn2"
            if key.endswith(".conv.3.weight"):               # MobileNetV2: conv.3 is the projection's BN
                last_bn = key.removesuffix(".weight")
            if f"{last_bn}.weight" in state:
                state[f"{last_bn}.weight"] = torch.rand(state[f"{last_bn}.weight"].shape, generator=g) * 0.1 + 0.05
        _TRUNKS[backbone] = state
    return _TRUNKS[backbone]


def authors_state_dict(backbone: str, num_points: int, seed: int = 0) -> OrderedDict:
    trunk = _trunk_state(backbone)
    channels = {"resnet18": 512, "mobilenet_v2": 1280}.get(backbone, 2048)
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict(trunk)
    for head, rows in (("cls_layer", 1), ("x_layer", 1), ("y_layer", 1), ("nb_x_layer", NUM_NB), ("nb_y_layer", NUM_NB)):
        scale = channels ** -0.5 * (1.0 if head == "cls_layer" else 0.1)     # offsets of a cell or two
        state[f"{head}.weight"] = torch.randn(num_points * rows, channels, 1, 1, generator=g) * scale
        state[f"{head}.bias"] = torch.randn(num_points * rows, generator=g) * 0.1
    return state


# --------------------------------------------------------------- their forward pass, written plainly
def _bn(x, sd, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        training=False, eps=1e-5)


def _resnet(sd, x):
    x = F.max_pool2d(F.relu(_bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1")), 3, 2, 1)
    bottleneck = "layer1.0.conv3.weight" in sd
    for layer in range(1, 5):
        block = 0
        while f"layer{layer}.{block}.conv1.weight" in sd:
            p = f"layer{layer}.{block}"
            stride = 2 if layer > 1 and block == 0 else 1
            if bottleneck:       # torchvision v1.5: the stride sits on the 3x3 conv
                y = F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                y = F.relu(_bn(F.conv2d(y, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
                y = _bn(F.conv2d(y, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                y = F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), sd, f"{p}.bn1"))
                y = _bn(F.conv2d(y, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
            x = F.relu(y + x)
            block += 1
    return x


def _conv_bn_relu6(x, sd, p, stride=1, groups=1):
    w = sd[f"{p}.0.weight"]
    return F.relu6(_bn(F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups), sd, f"{p}.1"))


def _mobilenet_v2(sd, x):
    x = _conv_bn_relu6(x, sd, "features.0", stride=2)
    for i, stride in enumerate(MBV2_STRIDES, start=1):
        p = f"features.{i}.conv"
        y = x
        if f"{p}.3.weight" in sd:                             # expand 1x1, depthwise 3x3, project 1x1, BN
            y = _conv_bn_relu6(y, sd, f"{p}.0")
            dw, proj, bn = f"{p}.1", f"{p}.2", f"{p}.3"
        else:                                                  # expansion 1: depthwise, project, BN
            dw, proj, bn = f"{p}.0", f"{p}.1", f"{p}.2"
        y = _conv_bn_relu6(y, sd, dw, stride=stride, groups=y.shape[1])
        y = _bn(F.conv2d(y, sd[f"{proj}.weight"]), sd, bn)
        x = x + y if stride == 1 and x.shape == y.shape else y
    return _conv_bn_relu6(x, sd, "features.18")


def authors_forward(sd, x):
    feat = _mobilenet_v2(sd, x) if "features.0.0.weight" in sd else _resnet(sd, x)
    return [F.conv2d(feat, sd[f"{h}.weight"], sd[f"{h}.bias"])
            for h in ("cls_layer", "x_layer", "y_layer", "nb_x_layer", "nb_y_layer")]


# ------------------------------------------------- their mean-face neighbours and their inference decode
def authors_meanface_indices(mean_face: np.ndarray, num_nb: int):
    """Neighbours of each landmark (argsort of squared distances, the point itself dropped), then for each
    landmark the (predictor, slot) pairs that predict it, padded by repetition to the longest list."""
    n = len(mean_face)
    nb = [np.argsort(np.sum((mean_face[i] - mean_face) ** 2, axis=1))[1:1 + num_nb] for i in range(n)]
    by = [[] for _ in range(n)]
    for i in range(n):
        for slot in range(num_nb):
            by[nb[i][slot]].append((i, slot))
    longest = max(len(b) for b in by)
    padded = [(b * 11)[:longest] for b in by]
    return np.array(nb), [p for b in padded for p, _ in b], [s for b in padded for _, s in b], longest


def authors_decode(outputs, mean_face: np.ndarray, input_size: int, net_stride: int = 32) -> np.ndarray:
    """One image at a time, as their forward_pip asserts; returns (B, N, 2) merged landmarks in [0, 1]."""
    _, idx1, idx2, longest = authors_meanface_indices(mean_face, NUM_NB)
    cells = input_size / net_stride
    result = []
    for b in range(outputs[0].shape[0]):
        cls, ox, oy, nbx, nby = (o[b:b + 1] for o in outputs)
        n = cls.shape[1]
        width = cls.shape[3]
        best = cls.reshape(n, -1).argmax(dim=1)                      # the score map's peak per landmark
        gx, gy = (best % width).float(), (best // width).float()
        own_x = (gx + ox.reshape(n, -1).gather(1, best[:, None])[:, 0]) / cells
        own_y = (gy + oy.reshape(n, -1).gather(1, best[:, None])[:, 0]) / cells
        rep = best.repeat_interleave(NUM_NB)[:, None]               # landmark i's peak for its nb channels
        nb_x = ((gx.repeat_interleave(NUM_NB) + nbx.reshape(n * NUM_NB, -1).gather(1, rep)[:, 0]) / cells)
        nb_y = ((gy.repeat_interleave(NUM_NB) + nby.reshape(n * NUM_NB, -1).gather(1, rep)[:, 0]) / cells)
        nb_x, nb_y = nb_x.reshape(n, NUM_NB), nb_y.reshape(n, NUM_NB)
        merged_x = torch.cat([own_x[:, None], nb_x[idx1, idx2].reshape(n, longest)], dim=1).mean(dim=1)
        merged_y = torch.cat([own_y[:, None], nb_y[idx1, idx2].reshape(n, longest)], dim=1).mean(dim=1)
        result.append(torch.stack([merged_x, merged_y], dim=1).numpy())
    return np.stack(result)


# ------------------------------------------------------------------------------------- mean faces
def generated_meanface(n: int, seed: int = 0) -> np.ndarray:
    """A jittered oval of n points in [0, 1]: every landmark is some neighbour's neighbour, no distance ties."""
    rng = np.random.default_rng(seed)
    t = 2 * np.pi * (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n
    r = 0.35 + rng.uniform(-0.02, 0.02, n)
    return np.stack([0.5 + r * np.cos(t), 0.55 + 1.2 * r * np.sin(t)], axis=1)


def write_meanface(path: Path, mean_face: np.ndarray) -> Path:
    path.write_text(" ".join(repr(float(v)) for v in mean_face.reshape(-1)))   # their format: one line
    return path


def authors_meanface(dataset: str) -> Path:
    path = REFERENCE / DATA_DIR[dataset] / "meanface.txt"
    if not path.is_file():
        pytest.skip(f"the authors' mean face is not here ({path})")
    return path


def read_meanface_plain(path: Path) -> np.ndarray:
    return np.array([float(v) for v in path.read_text().split()]).reshape(-1, 2)


# ------------------------------------------------------------------------------------ the round trip
def convert_and_compare(name: str, meanface: Path, tmp_path: Path, capsys) -> zoo.Landmarker:
    e = zoo.card(name)
    backbone, dataset = e.arch_args["backbone"], e.dataset
    src = tmp_path / "epoch59.pth"
    sd = authors_state_dict(backbone, POINTS[dataset], seed=POINTS[dataset])
    torch.save(sd, src)
    assert zoo_main(["convert", name, "--from", str(src), "--meanface", str(meanface)]) == 0, capsys.readouterr().err
    folder = zoo.hub.local_dir() / name
    src.unlink()                                                     # a big file: free the disk early
    # published entries keep loading their own pinned weights; their conversion loads from its folder
    lm = zoo.load_folder(folder, detector=None) if e.hub.sha256 else zoo.load(name, detector=None)

    mean_face = read_meanface_plain(meanface)
    nb, *_ = authors_meanface_indices(mean_face, NUM_NB)
    assert torch.equal(lm.model.nb_idx, torch.as_tensor(nb, dtype=torch.int64))
    assert torch.allclose(lm.model.mean_face, torch.as_tensor(mean_face, dtype=torch.float32))

    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    ours_raw = lm.forward(x.numpy())
    with torch.no_grad():
        theirs_raw = authors_forward(sd, x)
    for a, b in zip(ours_raw, theirs_raw):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    ours, _ = lm.model.decode(ours_raw)
    theirs = authors_decode(theirs_raw, mean_face, SIZE)
    assert ours.shape == (2, POINTS[dataset], 2)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    return lm


# Every dataset (its mean face and head sizes) on ResNet18, every other backbone on one dataset: each trunk is
# converted and run once (ResNet101 is 170 MB of float32); test_every_layout_maps covers all 16 pairs.
WITH_AUTHORS_MEANFACE = [("resnet18", ds) for ds in POINTS]
WITH_GENERATED_MEANFACE = [("resnet18", "cofw"), ("mobilenet_v2", "300w"), ("resnet50", "wflw"), ("resnet101", "aflw")]


@pytest.mark.parametrize("backbone,dataset", WITH_AUTHORS_MEANFACE, ids=[f"{TAG[b]}_{d}" for b, d in WITH_AUTHORS_MEANFACE])
def test_authors_checkpoint_converts_with_their_meanface(backbone, dataset, zoo_home, tmp_path, capsys):
    convert_and_compare(f"pipnet_{TAG[backbone]}_{dataset}", authors_meanface(dataset), tmp_path, capsys)


@pytest.mark.parametrize("backbone,dataset", WITH_GENERATED_MEANFACE,
                         ids=[f"{TAG[b]}_{d}" for b, d in WITH_GENERATED_MEANFACE])
def test_authors_checkpoint_converts_with_a_generated_meanface(backbone, dataset, zoo_home, tmp_path, capsys):
    meanface = write_meanface(tmp_path / "meanface.txt", generated_meanface(POINTS[dataset], seed=POINTS[dataset]))
    lm = convert_and_compare(f"pipnet_{TAG[backbone]}_{dataset}", meanface, tmp_path, capsys)
    if backbone == "resnet18":       # the merging weights travel with the weights: save_pretrained -> load_folder
        again = zoo.load_folder(lm.save_pretrained(tmp_path / "copy"), detector=None)
        x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE), dtype=np.float32)
        for a, b in zip(again.model.decode(again.forward(x)), lm.model.decode(lm.forward(x))):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


ALL = [(bb, ds) for bb in TAG for ds in POINTS]


@pytest.mark.parametrize("backbone,dataset", ALL, ids=[f"{TAG[b]}_{d}" for b, d in ALL])
def test_every_layout_maps(backbone, dataset):
    """Every backbone x dataset: the authors' keys and shapes map one to one onto the entry's model."""
    from zoo.nets import build_model
    from zoo.pipnet_release import OUR_BUFFERS, map_state_dict

    entry = zoo.card(f"pipnet_{TAG[backbone]}_{dataset}")
    with torch.device("meta"):                                  # shapes only: no weights are made
        model = build_model("pipnet", POINTS[dataset], **entry.arch_args)
    expected = {k: v for k, v in model.state_dict().items() if k not in OUR_BUFFERS}
    mapped = map_state_dict(_meta_layout(backbone, dataset), expected, Path("epoch59.pth"), entry)
    assert set(mapped) == set(expected)
    assert all(mapped[k].shape == expected[k].shape for k in expected)


def _meta_layout(backbone: str, dataset: str) -> OrderedDict:
    """The authors' layout (names and shapes) without making weights: a torchvision trunk plus their heads."""
    with torch.device("meta"):
        state = OrderedDict(build_trunk(backbone).state_dict())
    channels = {"resnet18": 512, "mobilenet_v2": 1280}.get(backbone, 2048)
    for head, rows in (("cls_layer", 1), ("x_layer", 1), ("y_layer", 1), ("nb_x_layer", NUM_NB), ("nb_y_layer", NUM_NB)):
        state[f"{head}.weight"] = torch.empty(POINTS[dataset] * rows, channels, 1, 1, device="meta")
        state[f"{head}.bias"] = torch.empty(POINTS[dataset] * rows, device="meta")
    return state


def test_reference_layout_matches_the_authors_r18_wflw_keys():
    listing = REFERENCE / "state_dict_keys_r18_wflw.txt"
    if not listing.is_file():
        pytest.skip(f"{listing} is not here")
    rows = [line.split(" ", 1) for line in listing.read_text().splitlines() if line and not line.startswith("n_keys")]
    expected = [(k, json.loads(shape)) for k, shape in rows]
    ours = [(k, list(v.shape)) for k, v in authors_state_dict("resnet18", 98).items()]
    assert ours == expected


def test_converted_card_and_record(zoo_home, tmp_path, capsys):
    meanface = write_meanface(tmp_path / "meanface.txt", generated_meanface(19))
    src = tmp_path / "pipnet_r18_aflw_official.pth"
    torch.save(authors_state_dict("resnet18", 19), src)
    assert zoo_main(["convert", "pipnet_r18_aflw", "--from", str(src), "--meanface", str(meanface)]) == 0
    folder = zoo_home / "pipnet_r18_aflw"
    config = json.loads((folder / "config.json").read_text())
    record = config["converted"]
    assert record["from"] == "the authors' release"
    assert record["source_sha256"] == zoo.hub.sha256_file(src)
    assert record["weights_sha256"] == zoo.hub.sha256_file(folder / "model.safetensors")
    card = (folder / "README.md").read_text()
    assert "Converted from the authors' release" in card and record["source_sha256"] in card
    assert "snapshots/AFLW/pip_32_16_60_r18_l2_l1_10_1_nb10/epoch59.pth" in card
    assert "The paper's figures (not measured here)" in card
    assert str(folder) in capsys.readouterr().out

    # a file that no longer matches its record is refused, naming the record and the command to redo
    state = load_file(str(folder / "model.safetensors"))
    state["cls_layer.bias"] = state["cls_layer.bias"] + 1
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(zoo.ZooError, match=r"does not match .* recorded in .*config.json.*python -m zoo convert"):
        zoo.load("pipnet_r18_aflw", detector=None)
    # a record made for another entry is refused too
    (zoo_home / "pipnet_r50_aflw").mkdir()
    for f in ("model.safetensors", "config.json"):
        (zoo_home / "pipnet_r50_aflw" / f).write_bytes((folder / f).read_bytes())
    with pytest.raises(zoo.ZooError, match="converted for 'pipnet_r18_aflw', not 'pipnet_r50_aflw'"):
        zoo.load("pipnet_r50_aflw", detector=None)


# ---------------------------------------------------------------------------------------- bad input
def _convert(capsys, *args: str) -> str:
    assert zoo_main(["convert", *args]) == 2
    return capsys.readouterr().err


def test_bad_checkpoints_are_clear_errors(zoo_home, tmp_path, capsys):
    meanface = str(write_meanface(tmp_path / "meanface.txt", generated_meanface(29)))
    good = authors_state_dict("resnet18", 29)

    missing = OrderedDict(good)
    del missing["layer4.1.bn2.running_var"]
    torch.save(missing, tmp_path / "missing.pth")
    err = _convert(capsys, "pipnet_r18_cofw", "--from", str(tmp_path / "missing.pth"), "--meanface", meanface)
    assert "missing.pth" in err and "missing key 'layer4.1.bn2.running_var'" in err

    extra = OrderedDict(good, **{"fc.weight": torch.zeros(1000, 512)})
    torch.save(extra, tmp_path / "extra.pth")
    err = _convert(capsys, "pipnet_r18_cofw", "--from", str(tmp_path / "extra.pth"), "--meanface", meanface)
    assert "extra.pth" in err and "unexpected key 'fc.weight'" in err

    torch.save(good, tmp_path / "r18_cofw.pth")                  # a ResNet18 file for a ResNet50 entry
    err = _convert(capsys, "pipnet_r50_cofw", "--from", str(tmp_path / "r18_cofw.pth"), "--meanface", meanface)
    assert "r18_cofw.pth" in err and "not the authors' layout for pipnet_r50_cofw" in err
    assert "29-point PIPNet with 10 neighbours on a resnet18/34 trunk" in err

    err = _convert(capsys, "pipnet_r18_wflw", "--from", str(tmp_path / "r18_cofw.pth"), "--meanface",
                   str(write_meanface(tmp_path / "mf98.txt", generated_meanface(98))))
    assert "'cls_layer.weight' is [29, 512, 1, 1], expected [98, 512, 1, 1]" in err

    (tmp_path / "notes.pth").write_text("not a checkpoint")
    err = _convert(capsys, "pipnet_r18_cofw", "--from", str(tmp_path / "notes.pth"), "--meanface", meanface)
    assert "notes.pth: not a loadable PyTorch checkpoint" in err
    torch.save({"epoch": 59}, tmp_path / "meta.pth")
    err = _convert(capsys, "pipnet_r18_cofw", "--from", str(tmp_path / "meta.pth"), "--meanface", meanface)
    assert "meta.pth: not a checkpoint" in err
    err = _convert(capsys, "pipnet_r18_cofw", "--from", str(tmp_path / "absent.pth"), "--meanface", meanface)
    assert "absent.pth does not exist" in err
    assert not (zoo_home / "pipnet_r18_cofw").exists()          # nothing half-written


def test_bad_meanfaces_are_clear_errors(zoo_home, tmp_path, capsys):
    src = tmp_path / "r18_cofw.pth"
    torch.save(authors_state_dict("resnet18", 29), src)
    wrong = write_meanface(tmp_path / "meanface68.txt", generated_meanface(68))
    err = _convert(capsys, "pipnet_r18_cofw", "--from", str(src), "--meanface", str(wrong))
    assert "meanface68.txt: 68 points, but pipnet_r18_cofw predicts 29" in err
    (tmp_path / "odd.txt").write_text("0.1 0.2 0.3")
    assert "odd.txt: not a mean-face file" in _convert(capsys, "pipnet_r18_cofw", "--from", str(src), "--meanface",
                                                       str(tmp_path / "odd.txt"))
    (tmp_path / "words.txt").write_text("x y")
    assert "words.txt: not a mean-face file" in _convert(capsys, "pipnet_r18_cofw", "--from", str(src),
                                                         "--meanface", str(tmp_path / "words.txt"))
    assert "absent.txt does not exist" in _convert(capsys, "pipnet_r18_cofw", "--from", str(src), "--meanface",
                                                   str(tmp_path / "absent.txt"))
    assert "add --meanface" in _convert(capsys, "pipnet_r18_cofw", "--from", str(src))
    assert "--meanface is for PIPNet entries" in _convert(capsys, "faceboxes_v2", "--from", str(src),
                                                          "--meanface", str(wrong))


def test_missing_weights_name_both_ways(zoo_home):
    with pytest.raises(zoo.ZooError) as info:
        zoo.load("pipnet_r101_wflw", detector=None)
    msg = str(info.value)
    assert "python -m train pipnet_r101_wflw --data DIR" in msg
    assert "python -m zoo convert pipnet_r101_wflw --from PATH/epoch59.pth --meanface PATH/meanface.txt" in msg
    assert "snapshots/WFLW/pip_32_16_60_r101_l2_l1_10_1_nb10/epoch59.pth" in msg and "data/WFLW/meanface.txt" in msg
    with pytest.raises(zoo.ZooError) as info:                   # no release: training is the one way
        zoo.load("pipnet_r50_wflw", detector=None)
    assert "python -m train pipnet_r50_wflw" in str(info.value) and "zoo convert" not in str(info.value)


def test_registry_labels_paper_figures_and_releases():
    released = [n for n in zoo.list_models(arch="pipnet") if zoo.card(n).release]
    assert sorted(released) == sorted(f"pipnet_{b}_{d}" for b in ("r18", "r101") for d in POINTS)
    for n in zoo.list_models(arch="pipnet"):
        e = zoo.card(n)
        assert e.paper.get("source", "").startswith("Jin et al., PIPNet")
        assert any(isinstance(v, float) for v in e.paper.values())
        assert not e.metrics.get("source")                      # the paper's figures never sit in our metrics


def test_faceboxes_conversion_still_works(zoo_home, capsys):
    weights = REFERENCE.parents[1] / "weights" / "faceboxes" / "FaceBoxesV2.pth"
    if not weights.is_file():
        pytest.skip(f"{weights} is not here")
    assert zoo_main(["convert", "faceboxes_v2", "--from", str(weights)]) == 0, capsys.readouterr().err
    dst = zoo_home / "faceboxes_v2" / "model.safetensors"
    assert zoo.hub.sha256_file(dst) == zoo.card("faceboxes_v2").hub.sha256
