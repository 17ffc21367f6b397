"""int8 (backend="onnx-int8"): static QDQ U8S8 graph calibrated on training crops, cached under the weights'
hash; refused (fp32 ONNX runs, with a warning) where the registry says it costs > 0.05 NME points, or when no
training crops can be found; numpy preprocessing on the ONNX path equals torch's."""
import json
import logging
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

import zoo
from zoo.crop import normalise_crops, normalise_tensor
from zoo.onnx_backend import OnnxRunner, int8_refusal
from zoo.pts import write_pts
from zoo_fixtures import face_image, random_zoo, write_random_weights  # noqa: F401 (fixture)

NAME = "pipnet_mbv2_300w"


def calibration_folder(root, n=3):
    """A 300-W-like training folder: afw/*.jpg + .pts (random pixels, a face-sized landmark cloud)."""
    rng = np.random.default_rng(0)
    (root / "afw").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(root / "afw" / f"f{i}.jpg")
        write_pts(root / "afw" / f"f{i}.pts", rng.uniform(40, 120, (68, 2)).astype(np.float32))
    return root


def with_metrics(monkeypatch, **metrics):
    e = zoo.registry._ENTRIES[NAME]
    monkeypatch.setitem(zoo.registry._ENTRIES, NAME, replace(e, metrics={**e.metrics, **metrics}))


def test_refusal_rule():
    e = zoo.card(NAME)
    assert int8_refusal(replace(e, metrics={"nme": 0.0300, "nme_int8": 0.0304})) is None        # +0.04 points
    why = int8_refusal(replace(e, metrics={"nme": 0.0300, "nme_int8": 0.0306, "nme_int8_command": "cmd"}))
    assert why and "+0.060" in why and "cmd" in why
    assert int8_refusal(replace(e, metrics={"nme": 0.03})) is None                              # not measured


def test_numpy_preprocessing_equals_torch():
    crops = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ref = normalise_tensor(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0, mean, std)
    np.testing.assert_allclose(normalise_crops(crops, mean, std), ref.numpy(), atol=1e-6)


def test_int8_graph_built_cached_and_guarded(random_zoo, tmp_path, monkeypatch, caplog):
    write_random_weights(NAME)
    monkeypatch.setenv("ZOO_CALIB_DATA", str(calibration_folder(tmp_path / "calib")))
    with_metrics(monkeypatch, nme=0.04, nme_int8=0.0402)
    lm = zoo.load(NAME, backend="onnx-int8", detector=None)
    assert lm.backend == "onnx-int8"
    path = lm.runner.path
    assert path.parent == random_zoo / NAME and path.name.endswith("-int8.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    note = json.loads(path.with_suffix(".json").read_text())
    assert "3 ground-truth crops" in note["calibration"] and "U8S8" in note["format"]
    img, boxes = face_image(), [[100, 50, 260, 230]]
    assert lm(img, boxes=boxes)[0].landmarks.shape == (68, 2)
    mtime = path.stat().st_mtime_ns
    assert zoo.load(NAME, backend="onnx-int8", detector=None).runner.path == path and path.stat().st_mtime_ns == mtime

    with_metrics(monkeypatch, nme=0.04, nme_int8=0.0410)           # +0.1 points: refused, fp32 ONNX instead
    with caplog.at_level(logging.WARNING, logger="zoo"):
        refused = zoo.load(NAME, backend="onnx-int8", detector=None)
    assert refused.backend == "onnx" and "int8" not in refused.runner.path.name
    assert "not int8" in caplog.text and "+0.100" in caplog.text
    assert zoo.load(NAME, backend="onnx-int8", detector=None, int8_guard=False).backend == "onnx-int8"


def test_no_calibration_data_falls_back_to_fp32(random_zoo, tmp_path, monkeypatch, caplog):
    write_random_weights(NAME)
    with_metrics(monkeypatch, nme=0.04, nme_int8=0.04)              # the guard passes: calibration is what fails
    monkeypatch.setenv("ZOO_CALIB_DATA", str(tmp_path / "empty"))
    with caplog.at_level(logging.WARNING, logger="zoo"):
        lm = zoo.load(NAME, backend="onnx-int8", detector=None)
    assert lm.backend == "onnx" and "no training faces to calibrate on" in caplog.text
    with pytest.raises(zoo.ZooError, match="onnx-int8"):
        zoo.load(NAME, backend="tflite", detector=None)
