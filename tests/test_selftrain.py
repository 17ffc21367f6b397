"""Partial labels (a 98-point model learning from 68-point faces), weight transfer across schemes, the
few-shot validation split, and self-training with its curriculum, end to end on real photos when
../shared is present."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from train.losses import pipnet_loss
from train.selftrain import Curriculum, flip_consistent, select
from zoo.nets import build_model
from zoo.schemes import WFLW98_TO_68, convert_points, embed_points, get_scheme

SHARED = Path(__file__).resolve().parents[2] / "shared"
WFLW = SHARED / "data" / "wflw"
needs_wflw = pytest.mark.skipif(not (WFLW / "WFLW_annotations").is_dir(), reason="../shared WFLW not present")


def test_embed_points_is_the_inverse_of_convert_points():
    pts = np.random.default_rng(0).random((3, 68, 2)).astype(np.float32)
    big = embed_points(pts, "68", "98")
    assert big.shape == (3, 98, 2)
    assert np.isnan(big).all(-1).sum(-1).tolist() == [30, 30, 30]
    assert np.array_equal(convert_points(big, "98", "68"), pts)
    with pytest.raises(Exception, match="no point map"):
        embed_points(np.zeros((98, 2)), "98", "68")


def _outputs(b=2, n=4, k=2, h=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, h, h, generator=g) for c in (n, n, n, n * k, n * k)]


def test_masked_loss_ignores_unlabelled_points_and_coarse_offsets():
    nb = torch.tensor([[1, 2], [0, 2], [1, 3], [2, 1]])
    lms = torch.rand(2, 4, 2)
    outs = _outputs()
    full, _ = pipnet_loss(outs, lms, nb)
    # Full labels: exactly the unmasked mean of the old formulation (MSE over maps, L1 over offsets).
    assert torch.isfinite(full)
    partial = lms.clone()
    partial[:, 3] = float("nan")
    base, _ = pipnet_loss(outs, partial, nb)
    moved = [o.clone() for o in outs]
    moved[0][:, 3] += 5.0                                   # score map of the unlabelled point
    moved[3][:, 3 * 2:] += 5.0                              # its own neighbour offsets
    moved[3][:, 2 * 2 + 1] += 5.0                           # point 2's offset towards it (slot 1 -> point 3)
    assert pipnet_loss(moved, partial, nb)[0].item() == pytest.approx(base.item(), rel=1e-6)
    coarse = torch.tensor([True, True])
    c0, parts = pipnet_loss(outs, lms, nb, coarse=coarse)
    offsets = [o.clone() for o in outs]
    for i in (1, 2, 3, 4):
        offsets[i] += 3.0
    c1, parts1 = pipnet_loss(offsets, lms, nb, coarse=coarse)
    assert parts["reg"] == 0 and c0.item() == pytest.approx(c1.item())
    assert pipnet_loss(offsets, lms, nb)[0].item() > full.item()


def test_transfer_68_to_98_keeps_the_shared_points(tmp_path):
    from train.transfer import init_from
    import zoo.hub

    torch.manual_seed(0)
    src = build_model("pipnet", 68, backbone="mobilenet_v2", num_nb=4)
    src.set_mean_face(np.random.default_rng(1).random((68, 2)) * 0.6 + 0.2)
    for layer in (src.cls_layer, src.x_layer, src.y_layer):
        torch.nn.init.normal_(layer.weight)
    folder = tmp_path / "src"
    entry = zoo.registry.get("pipnet_mbv2_300w").to_dict()
    cfg = {**{k: entry[k] for k in ("arch", "dataset", "preprocess", "license")}, "name": "src", "scheme": "68",
           "arch_args": {"backbone": "mobilenet_v2", "num_nb": 4, "input_size": 256}}
    zoo.hub.save_folder(folder, src.state_dict(), cfg, "")
    dst = build_model("pipnet", 98, backbone="mobilenet_v2", num_nb=4)
    dst.set_mean_face(np.random.default_rng(2).random((98, 2)))
    note = init_from(dst, "pipnet", "98", str(folder))
    assert "68 shared points" in note
    x = torch.randn(1, 3, 256, 256)
    src.eval(), dst.eval()
    with torch.no_grad():
        a, b = src(x), dst(x)
    for i in range(3):                                      # score map and own offsets of the shared points
        assert torch.allclose(a[i], b[i][:, list(WFLW98_TO_68)], atol=1e-5)


def test_flip_consistency_is_zero_for_a_mirror_symmetric_predictor():
    scheme = get_scheme("68")
    rng = np.random.default_rng(0)
    half = rng.random((68, 2))
    template = (half + np.stack([1 - half[scheme.flip_perm, 0], half[scheme.flip_perm, 1]], -1)) / 2

    class Mirror:                                   # predicts the template inside each crop box
        def __init__(self):
            self.scheme = scheme

        def predict_crops(self, img, boxes):
            return boxes[:, None, :2] + template[None] * (boxes[:, None, 2:] - boxes[:, None, :2])

    boxes = np.array([[10.0, 20.0, 90.0, 110.0], [40.0, 5.0, 60.0, 30.0]], np.float32)
    label, dis = flip_consistent(Mirror(), np.zeros((120, 100, 3), np.uint8), boxes)
    assert np.allclose(dis, 0, atol=1e-5)
    assert np.allclose(label, Mirror().predict_crops(None, boxes), atol=1e-4)


def test_select_takes_the_most_reliable_share():
    labels = [("p", None, d) for d in (0.3, 0.01, 0.05, float("nan"), 0.02, 0.09)]
    kept = select(labels, 0.5, max_disagreement=0.1)
    assert [k[2] for k in kept] == [0.01, 0.02]                 # 4 pass the cut; half of them, best first


@needs_wflw
def test_fewshot_split_is_by_photo_and_covers_the_list():
    from train.datasets import read_dataset

    every = read_dataset("wflw", WFLW, "fewshot_train")
    fit, val = read_dataset("wflw", WFLW, "fewshot_fit"), read_dataset("wflw", WFLW, "fewshot_val")
    assert len(fit) + len(val) == len(every) and len(val) >= 5
    assert not {s.image_path for s in fit} & {s.image_path for s in val}
    test_photos = {s.image_path for s in read_dataset("wflw", WFLW, "test")}
    assert not test_photos & {s.image_path for s in every}


@needs_wflw
@pytest.mark.skipif(not (SHARED / "weights" / "yunet").is_dir(), reason="../shared YuNet weights not present")
def test_selftrain_rounds_end_to_end(tmp_path, monkeypatch):
    """Two rounds on 3 unlabelled photos: pseudo-labels, curriculum shares, coarse first round, val choice."""
    monkeypatch.setenv("TRAIN_CACHE_DIR", str(tmp_path / "cache"))
    import train.cache
    monkeypatch.setattr(train.cache, "CACHE_DIR", tmp_path / "cache")
    from train.selftrain import main

    out = tmp_path / "st"
    rc = main(["pipnet_mbv2_wflw", "--data", str(WFLW), "--init", "pipnet_mbv2_300w", "--unlabeled",
               str(WFLW / "WFLW_annotations" / "unlabeled_images.txt"), "--out", str(out), "--limit", "3",
               "--epochs", "1", "--quiet", "--threads", "1", "--report", "fewshot_fit",
               "--max-disagreement", "1"])
    assert rc == 0
    rounds = json.loads((out / "rounds.json").read_text())
    assert [r["coarse"] for r in rounds] == [True, False]
    assert rounds[0]["kept"] <= rounds[1]["kept"] <= rounds[0]["faces"]
    assert all(0 < r["val_nme"] < 1 and 0 < r["report"]["fewshot_fit"] < 1 for r in rounds)
    start = json.loads((out / "round0.json").read_text())
    assert start["folder"] == "pipnet_mbv2_300w" and 0 < start["val_nme"] < 1
    best = min([start] + rounds, key=lambda r: r["val_nme"])
    assert (out / "best.txt").read_text().strip() == best["folder"]
    cfg = json.loads((out / "round2" / "final" / "config.json").read_text())
    assert cfg["training"]["self_training"]["kept"] == rounds[1]["kept"]
    assert "Self-training round 2 of 2" in (out / "round2" / "final" / "README.md").read_text()
    assert Curriculum().keep == (0.5, 0.8)


@pytest.mark.parametrize("name", ["pipnet_r18_wflw", "pipnet_mbv2_wflw"])
def test_wflw_entries_load_offline_and_give_98_points(name):
    """The published 98-point entries: bundled, sha-pinned, loaded without the network, 98 points a face."""
    import zoo

    entry = zoo.registry.get(name)
    assert entry.published and entry.hub.sha256 and entry.metrics["dataset"] == "wflw"
    photo = Path(__file__).resolve().parents[1] / "space" / "examples" / "astronaut.jpg"
    faces = zoo.load(name)(photo)                    # the first line a user types
    assert faces and all(f.landmarks.shape == (98, 2) for f in faces)
    face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    assert ((face.landmarks >= [x0 - 0.2 * w, y0 - 0.2 * h]) & (face.landmarks <= [x1 + 0.2 * w, y1 + 0.2 * h])).all()
    card = (Path(zoo.hub.BUNDLED_DIR) / name / "README.md").read_text()
    assert "learned from labels made by other models" in card and "Reproduce:" in card   # the peers as teachers


def test_add_variant_copies_the_base_entry_unpublished(tmp_path):
    import shutil
    import zoo

    reg = tmp_path / "registry.json"
    shutil.copy(zoo.registry.REGISTRY_FILE, reg)
    try:
        v = zoo.registry.add_variant("pipnet_r18_300w", "st", path=reg)
        assert v.name == "pipnet_r18_300w.st" and not v.published and v.hub.sha256 is None
        assert v.hub.repo_id == "facezoo/pipnet_r18_300w.st" and v.preprocess == zoo.registry.get("pipnet_r18_300w").preprocess
        assert zoo.registry.add_variant("pipnet_r18_300w", "st", path=reg) == v          # idempotent
        names = [d["name"] for d in json.loads(reg.read_text())["entries"]]
        assert names.index("pipnet_r18_300w.st") == names.index("pipnet_r18_300w") + 1
    finally:
        zoo.registry.reload()


def test_provenance_follows_the_chain_of_starting_models(tmp_path):
    """A card must say how to reproduce a round once the run folders are gone: every command, first first."""
    from train.publish import provenance

    def folder(name, start=None):
        f = tmp_path / name
        f.mkdir()
        training = {"epochs": 2, "data": f"data of {name}"}
        if start:
            training["self_training"] = {"start": str(tmp_path / start)}
        cfg = {"name": "x", "init": f"init of {name}", "training": training}
        (f / "config.json").write_text(json.dumps(cfg))
        (f / "train_command.txt").write_text(f"cmd {name}\n")
        return f, cfg

    folder("fewshot")
    folder("round1", "fewshot")
    run, cfg = folder("round1b", "round1")
    out = provenance(run, cfg)["training"]
    assert out["commands"] == ["cmd fewshot", "cmd round1", "cmd round1b"]
    assert out["self_training"]["start_record"] == {"epochs": 2, "init": "init of round1", "data": "data of round1"}
    plain, cfg = folder("plain")
    assert provenance(plain, cfg)["training"]["commands"] == ["cmd plain"]
