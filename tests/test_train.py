"""train/: losses on hand-made cases, a step lowers the loss, resume is exact, and the whole
train -> evaluate -> Hub folder -> publish path on a few real faces (CI never runs a full training)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from train.loop import Trainer
from train.losses import feature_similarity_loss, gaussian_heatmaps, pipnet_loss, pipnet_targets
from train.recipes import RECIPES, get_recipe
from train_fixtures import quiet_recipe, tiny_data

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "300w").is_dir(), reason="../shared not present")


def test_pipnet_targets_by_hand():
    lms = torch.tensor([[[0.30, 0.55], [0.99, 0.01]]])             # (1, 2, 2)
    nb = torch.tensor([[1], [0]])
    flat, own, nbo = pipnet_targets(lms, nb, 8, 8)
    assert flat.tolist() == [[4 * 8 + 2, 0 * 8 + 7]]               # cells (x2, y4) and (x7, y0)
    assert torch.allclose(own, torch.tensor([[[0.4, 0.4], [0.92, 0.08]]]), atol=1e-5)
    # neighbour 1 seen from landmark 0's cell (2, 4): (7.92 - 2, 0.08 - 4)
    assert torch.allclose(nbo[0, 0, 0], torch.tensor([5.92, -3.92]), atol=1e-5)


def test_pipnet_loss_is_zero_for_perfect_outputs_and_weighted():
    lms = torch.tensor([[[0.30, 0.55], [0.99, 0.01]]])
    nb = torch.tensor([[1], [0]])
    flat, own, nbo = pipnet_targets(lms, nb, 8, 8)
    cls = torch.zeros(1, 2, 8, 8).view(1, 2, 64)
    cls[0, 0, flat[0, 0]] = cls[0, 1, flat[0, 1]] = 1
    ox = own[..., 0][..., None, None].expand(1, 2, 8, 8).contiguous()
    oy = own[..., 1][..., None, None].expand(1, 2, 8, 8).contiguous()
    nbx = nbo[..., 0].reshape(1, 2, 1, 1).expand(1, 2, 8, 8).contiguous()
    nby = nbo[..., 1].reshape(1, 2, 1, 1).expand(1, 2, 8, 8).contiguous()
    perfect = (cls.view(1, 2, 8, 8), ox, oy, nbx, nby)
    loss, parts = pipnet_loss(perfect, lms, nb)
    assert loss.item() == pytest.approx(0, abs=1e-6)
    zero_cls = (torch.zeros(1, 2, 8, 8), ox, oy, nbx, nby)
    loss, parts = pipnet_loss(zero_cls, lms, nb, cls_weight=10)
    assert loss.item() == pytest.approx(10 * 2 / 128)               # MSE of two ones among 128 cells


def test_feature_similarity_ignores_channel_count_and_scale():
    f = torch.randn(2, 16, 8, 8)
    assert feature_similarity_loss(f, f.repeat(1, 3, 1, 1) * 5).item() == pytest.approx(0, abs=1e-5)
    assert feature_similarity_loss(f, torch.randn(2, 32, 8, 8)).item() > 0.01


def test_gaussian_targets_peak_at_landmark():
    hm = gaussian_heatmaps(torch.tensor([[[0.5 + 0.5 / 64, 0.25 + 0.5 / 64]]]), 64, 64, 1.5)
    y, x = divmod(int(hm.flatten().argmax()), 64)
    assert (x, y) == (32, 16) and hm.max().item() == pytest.approx(1.0)


def test_every_zoo_landmarker_has_a_recipe():
    import zoo
    assert set(RECIPES) == {n for n in zoo.list_models() if "." not in n}
    for name in zoo.list_models():               # a tagged variant trains by its base's recipe
        assert get_recipe(name).name == name.split(".")[0]


def test_training_steps_lower_the_loss(tmp_path):
    torch.set_num_threads(2)
    data = tiny_data(4)
    t = Trainer(quiet_recipe(epochs=8, lr=1e-3, warmup_epochs=0, schedule="step", milestones=(100,)), data,
                tmp_path, bf16=False)
    losses = [t.train_epoch(progress=False)["loss"] for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_resume_reproduces_the_state(tmp_path):
    torch.set_num_threads(2)
    data = tiny_data(8)
    r = quiet_recipe("mobilefan_300w", epochs=2, teacher=None, fa_weight=0.0, fs_weight=0.0)
    straight = Trainer(r, data, tmp_path / "a", bf16=False)
    straight.fit(progress=False)
    first = Trainer(r, data, tmp_path / "b", bf16=False)
    first.train_epoch(progress=False)
    first.save_checkpoint()
    resumed = Trainer(r, data, tmp_path / "b", bf16=False)
    assert resumed.load_checkpoint() and resumed.epoch == 1
    resumed.fit(progress=False)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    assert resumed.history[-1]["loss"] == pytest.approx(straight.history[-1]["loss"], rel=1e-4)


def test_best_teacher_is_chosen_on_the_held_out_split(monkeypatch, tmp_path):
    import train.recipes as recipes
    from types import SimpleNamespace
    published = recipes.registry.list_models(dataset="300w", arch="pipnet", published=True)
    test_best = min(published, key=lambda n: recipes.registry.get(n).metrics["nme"])
    held_out = {n: (0.05 if n == test_best else 0.04 + 0.001 * i) for i, n in enumerate(published)}
    asked = []
    monkeypatch.setattr(recipes, "read_dataset", lambda d, root, split: asked.append((d, root, split)) or [])
    monkeypatch.setattr(recipes, "load_landmarker", lambda name: name)
    monkeypatch.setattr(recipes, "evaluate", lambda lm, samples, progress: SimpleNamespace(nme=held_out[lm]))
    chosen = recipes.resolve_teacher(get_recipe("mobilefan_300w"), tmp_path).teacher
    assert asked == [("300w", tmp_path, "val")]          # the recipe's val split, never common or challenging
    assert chosen == min(held_out, key=held_out.get) and chosen != test_best
    named = get_recipe("mobilefan_300w", teacher="pipnet_r18_300w")
    assert recipes.resolve_teacher(named, tmp_path) is named and len(asked) == 1


def test_a_resumed_run_keeps_its_teacher_and_no_distill_ranks_none(tmp_path, monkeypatch):
    import train.__main__ as cli
    import train.recipes as recipes
    seen = []
    real = cli.resolve_teacher

    def resolved(recipe, data):
        out = real(recipe, data)
        seen.append(out.teacher)
        return out

    def stop(*args, **kwargs):
        raise RuntimeError("stop after the recipe")

    monkeypatch.setattr(recipes, "best_teacher", lambda *args: seen.append("ranked") or "pipnet_mbv2_300w")
    monkeypatch.setattr(cli, "resolve_teacher", resolved)
    monkeypatch.setattr(cli, "init_from_env", stop)
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"teacher": "pipnet_r18_300w"}))
    for extra, expect in ((["--resume"], ["pipnet_r18_300w"]), (["--no-distill"], [None]),
                          ([], ["ranked", "pipnet_mbv2_300w"])):
        seen.clear()
        with pytest.raises(RuntimeError, match="stop"):
            cli.main(["mobilefan_300w", "--data", str(tmp_path), "--out", str(run), *extra])
        assert seen == expect, extra


def test_distillation_trains_student_and_aligner(tmp_path):
    from zoo.nets import build_model
    teacher = build_model("pipnet", 68, backbone="resnet18").eval()
    r = quiet_recipe("mobilefan_300w", epochs=1, fa_weight=1.0, fs_weight=1.0)
    t = Trainer(r, tiny_data(4), tmp_path, bf16=False, teacher=teacher)
    before = t.aligner.proj[0].weight.clone()
    t.train_epoch(progress=False)
    assert not torch.equal(before, t.aligner.proj[0].weight)


def scratch_registry(tmp_path, monkeypatch) -> None:
    """Publishing in a test writes a copy of the registry and a scratch bundle folder, never the real ones."""
    import shutil

    import zoo

    reg = tmp_path / "registry.json"
    shutil.copy(zoo.registry.REGISTRY_FILE, reg)
    monkeypatch.setattr(zoo.registry, "REGISTRY_FILE", reg)
    monkeypatch.setattr(zoo.registry, "_ENTRIES", None)
    monkeypatch.setattr("zoo.files.BUNDLED_DIR", tmp_path / "bundle")
    monkeypatch.setattr("train.publish.BUNDLED_DIR", tmp_path / "bundle")


@needs_shared
def test_cli_train_evaluate_publish_on_real_faces(tmp_path, monkeypatch):
    """python -m train on 16 real faces, 1 epoch, then publish into a scratch registry and bundle dir."""
    import zoo
    from train.__main__ import main as train_main
    from train.publish import publish

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("train.cache.CACHE_DIR", tmp_path / "cache")
    data = SHARED / "data" / "300w"
    assert train_main(["pipnet_mbv2_300w", "--data", str(data), "--epochs", "1", "--limit", "16", "--batch-size", "8",
                       "--quiet", "--no-eval", "--threads", "2"]) == 0
    final = tmp_path / "runs" / "pipnet_mbv2_300w" / "final"
    assert {p.name for p in final.iterdir()} >= {"model.safetensors", "config.json", "README.md"}
    cfg = json.loads((final / "config.json").read_text())
    assert cfg["training"]["epochs"] == 1 and cfg["recipe"]["pretrained"] is False

    scratch_registry(tmp_path, monkeypatch)
    metrics = publish("pipnet_mbv2_300w", final, data, split="common", limit=6)
    e = zoo.registry.get("pipnet_mbv2_300w")
    assert e.status == "published" and len(e.hub.sha256) == 64 and e.metrics["n"] == 6
    assert np.isfinite(metrics["nme"]) and np.isfinite(metrics["nme_fp32"])   # 1 epoch: no accuracy to compare
    assert "train.evaluate pipnet_mbv2_300w" in e.metrics["command"]
    card = (tmp_path / "bundle" / "pipnet_mbv2_300w" / "README.md").read_text()
    assert card.startswith("---") and "model-index" in card
    monkeypatch.setattr(zoo.registry, "_ENTRIES", None)


def test_ablation_card_section_averages_the_seeds_of_an_arm():
    from train.ablation import card_section

    cols = ["300w/val", "300w/common"]
    rows = [{"label": f"both, seed {s}", "arm": "both", "data": "fit", "model": f"runs/both_s{s}/final",
             "scores": {"300w/val": v, "300w/common": c}} for s, v, c in ((0, 0.040, 0.036), (1, 0.042, 0.038))]
    rows.append({"label": "old", "data": "train", "model": "mobilefan_300w", "scores": {"300w/val": 0.05}})
    rows.append({"label": "by |yaw|", "data": "fit", "model": "runs/pose/final", "scores": {}})
    md = card_section({"columns": cols, "rows": rows, "command": "python -m train.ablation --rows r.json"})
    assert md.startswith("## Ablation") and "`python -m train.ablation --rows r.json`" in md
    assert "| both, seed 1 | fit | 4.20 | 3.80 |" in md
    assert "| **both**, mean of 2 seeds | fit | 4.10 | 3.70 |" in md
    assert "| old | train | 5.00 | – |" in md            # a score it lacks stays empty, never invented
    assert "| by \\|yaw\\| | fit | – | – |" in md       # a | in a label stays in its cell

def test_card_says_whose_labels_a_peer_taught_model_learned_from(tmp_path):
    import json

    from train.card import pseudo_label_note

    (tmp_path / "summary.json").write_text(json.dumps({
        "teachers": ["pfld_ghostone", "mediapipe_98"], "faces": 10, "kept": 8, "kept_unlabelled": 5,
        "val_nme": {"pfld_ghostone": 0.05, "combined": 0.04}, "val": ["wflw/fewshot_val"], "command": "python -m x"}))
    note = pseudo_label_note(tmp_path / "pool.npz")
    assert "pfld_ghostone and mediapipe_98" in note and "learned from labels made by other models" in note
    assert "combined 4.00%" in note and "`python -m x`" in note
    assert "was not found" in pseudo_label_note(tmp_path / "elsewhere" / "pool.npz")


@needs_shared
def test_a_smaller_input_trains_and_publishes_as_a_variant(tmp_path, monkeypatch):
    """--input-size trains the entry at another size; the run's folder and the published `.fast` variant carry
    that size (arch and preprocessing), the base entry keeps its own, and the variant loads and runs."""
    import zoo
    from train.__main__ import main as train_main
    from train.publish import publish

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("train.cache.CACHE_DIR", tmp_path / "cache")
    data = SHARED / "data" / "300w"
    assert train_main(["pipnet_mbv2_300w", "--data", str(data), "--epochs", "1", "--limit", "16", "--batch-size", "8",
                       "--input-size", "128", "--quiet", "--no-eval", "--threads", "2"]) == 0
    final = tmp_path / "runs" / "pipnet_mbv2_300w" / "final"
    cfg = json.loads((final / "config.json").read_text())
    assert cfg["preprocess"]["input_size"] == cfg["arch_args"]["input_size"] == cfg["recipe"]["input_size"] == 128

    scratch_registry(tmp_path, monkeypatch)
    publish("pipnet_mbv2_300w", final, data, split="common", limit=4, variant="fast")
    v, base = zoo.registry.get("pipnet_mbv2_300w.fast"), zoo.registry.get("pipnet_mbv2_300w")
    assert v.published and v.preprocess.input_size == v.arch_args["input_size"] == 128
    assert base.preprocess.input_size == 256
    lm = zoo.load("pipnet_mbv2_300w.fast", detector=None)
    faces = lm(np.zeros((200, 180, 3), np.uint8), boxes=np.array([[20, 30, 150, 170]], np.float32))
    assert faces[0].landmarks.shape == (68, 2) and np.isfinite(faces[0].landmarks).all()
    monkeypatch.setattr(zoo.registry, "_ENTRIES", None)


def test_pose_balanced_epoch_repeats_faces_by_yaw_and_keeps_unposable_ones_once():
    from train.loop import TrainData, pose_balanced
    from train.pose import MODEL_68, estimate_pose

    def face(yaw_deg: float) -> np.ndarray:       # the pose model's six points seen under yaw, in a 68-pt face
        t = np.radians(yaw_deg)
        X = np.array(list(MODEL_68.values()))
        x = np.stack([X[:, 0] * np.cos(t) + X[:, 2] * np.sin(t), X[:, 1]], 1) / 1000 + 0.5
        lm = np.full((68, 2), 0.5, np.float32)
        lm[list(MODEL_68)] = x
        return lm

    lms = np.stack([face(0), face(20), face(60), face(60)])
    lms[3, 8] = np.nan                              # its chin unlabelled: no pose, seen once
    assert abs(abs(estimate_pose(lms[2])[0]) - 60) < 1
    data = TrainData(torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 3, 2, 2).contiguous(),
                     torch.from_numpy(lms), 4, "four faces", torch.tensor([False, False, True, True]))
    out = pose_balanced(data, "68", (1, 2, 3, 4))
    assert out.images[:, 0, 0, 0].tolist() == [0, 1, 1, 2, 2, 2, 2, 3]
    assert out.n_images == 8 and out.coarse.tolist() == [False] * 3 + [True] * 5 and "pose-balanced" in out.source
    with pytest.raises(ValueError, match="one count"):
        pose_balanced(data, "68", (1, 2))
