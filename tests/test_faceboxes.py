"""FaceBoxesV2: checkpoint conversion, strict loading, detection on real 300-W faces, NMS, priors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from zoo.convert import convert_checkpoint
from zoo.nets.faceboxes import FaceBoxesV2, detect, nms, prior_boxes

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights" / "faceboxes" / "FaceBoxesV2.pth"
LFPW_TEST = SHARED / "data" / "300w" / "lfpw" / "testset"

needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason="shared FaceBoxesV2 weights not present")


def read_pts(path: Path) -> np.ndarray:
    """iBUG .pts -> (N, 2) float, converted from 1-based to 0-based pixels."""
    lines = path.read_text().splitlines()
    start = lines.index("{") + 1
    end = lines.index("}", start)
    return np.array([[float(v) for v in line.split()] for line in lines[start:end]]) - 1.0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not WEIGHTS.is_file():
        pytest.skip("shared FaceBoxesV2 weights not present")
    dst = tmp_path_factory.mktemp("faceboxes") / "faceboxes_v2.safetensors"
    return dst, convert_checkpoint(WEIGHTS, dst)


@pytest.fixture(scope="module")
def model(converted: tuple[Path, dict]) -> FaceBoxesV2:
    net = FaceBoxesV2()
    net.load_state_dict(load_file(str(converted[0])), strict=True)
    return net.eval()


@needs_weights
def test_convert_metadata_and_keys(converted: tuple[Path, dict]) -> None:
    dst, info = converted
    assert info["keys"] == 192 and 1_000_000 < info["num_params"] < 1_100_000
    assert len(info["sha256"]) == 64
    with safe_open(str(dst), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert not any(k.startswith("module.") for k in f.keys())
    assert set(load_file(str(dst))) == set(FaceBoxesV2().state_dict())


@needs_weights
def test_convert_fp16_keeps_integer_buffers(tmp_path: Path, converted: tuple[Path, dict]) -> None:
    info = convert_checkpoint(WEIGHTS, tmp_path / "half.safetensors", dtype=torch.float16)
    tensors = load_file(str(tmp_path / "half.safetensors"))
    assert tensors["conv1.conv.weight"].dtype == torch.float16
    assert tensors["conv1.bn.num_batches_tracked"].dtype == torch.int64
    assert info["num_params"] == converted[1]["num_params"] and info["sha256"] != converted[1]["sha256"]


def test_convert_nested_state_dict(tmp_path: Path) -> None:
    src = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module.w": torch.ones(2, 3).t()}, "epoch": 3}, src)  # .t(): a non-contiguous view
    info = convert_checkpoint(src, tmp_path / "out.safetensors")
    out = load_file(str(tmp_path / "out.safetensors"))
    assert list(out) == ["w"] and out["w"].shape == (3, 2) and info["num_params"] == 6


def test_convert_rejects_garbage(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 40)
    with pytest.raises(ValueError, match="garbage.pth"):
        convert_checkpoint(garbage, tmp_path / "out.safetensors")
    not_weights = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(ValueError, match="list.pth"):
        convert_checkpoint(not_weights, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_nms_hand_made() -> None:
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # A: IoU 81/119 = 0.68 with B
            [1.0, 1.0, 11.0, 11.0],  # B: best score
            [20.0, 20.0, 30.0, 30.0],  # C: disjoint from all
            [0.0, 5.0, 10.0, 15.0],  # D: IoU 54/146 = 0.37 with B
        ]
    )
    scores = torch.tensor([0.9, 0.95, 0.5, 0.8])
    # B outranks A, so B survives and A goes; D survives only while the threshold exceeds 0.37.
    assert nms(boxes, scores, 0.4).tolist() == [1, 3, 2]
    assert nms(boxes, scores, 0.2).tolist() == [1, 2]
    assert nms(boxes[:0], scores[:0], 0.3).numel() == 0


def test_priors_match_head_outputs() -> None:
    net = FaceBoxesV2().eval()
    for h, w in [(100, 130), (64, 64), (257, 31)]:
        with torch.inference_mode():
            loc, conf = net(torch.zeros(1, 3, h, w))
        assert loc.shape[1] == conf.shape[1] == prior_boxes(h, w).shape[0]
    # 32x32 input: one cell per level, 21 + 1 + 1 anchors; the first is the top-left dense 32-px anchor,
    # the last the 512-px anchor centred in its 128-px cell (priors are not clipped).
    p = prior_boxes(32, 32)
    assert p.shape == (23, 4)
    assert torch.allclose(p[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.allclose(p[-1], torch.tensor([2.0, 2.0, 16.0, 16.0]))


@needs_weights
@pytest.mark.skipif(not LFPW_TEST.is_dir(), reason="shared 300-W data not present")
def test_detects_real_faces(model: FaceBoxesV2) -> None:
    images = sorted(LFPW_TEST.glob("*.jpg"))[:4]
    assert images
    for path in images:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        pts = read_pts(path.with_suffix(".pts"))
        assert pts.shape == (68, 2)
        lm_box = np.concatenate([pts.min(0), pts.max(0)])
        boxes, scores = detect(model, image)
        assert boxes.dtype == np.float32 and scores.dtype == np.float32
        assert len(boxes) >= 1, path.name
        assert np.all(np.diff(scores) <= 0)
        top = boxes[0]
        cx, cy = pts.mean(0)
        contains = top[0] <= cx <= top[2] and top[1] <= cy <= top[3]
        assert iou(top, lm_box) > 0.3 or contains, (path.name, top, lm_box)

    # Downscaled detection must map back to the same place in original pixels.
    image = cv2.cvtColor(cv2.imread(str(images[0])), cv2.COLOR_BGR2RGB)
    full, _ = detect(model, image)
    small, _ = detect(model, image, max_side=256)
    assert iou(full[0], small[0]) > 0.7


@needs_weights
def test_blank_image_has_no_faces(model: FaceBoxesV2) -> None:
    boxes, scores = detect(model, np.full((240, 320, 3), 128, dtype=np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
