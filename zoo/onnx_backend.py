"""ONNX export (dynamic batch) with a check against torch, an onnxruntime runner, and static int8 quantisation.

The runner takes numpy in and gives numpy out, and preprocessing on this path is numpy too: torch's OpenMP
threads, once woken by a torch op, spin and fight onnxruntime's threads for the same cores (measured in
issue 11: 3-4 ms a face on 2 cores).

int8 (`zoo.load(name, backend="onnx-int8")`): static QDQ quantisation, per-channel weights, U8S8 (activations
uint8, weights int8; S8S8 ran 2-3x slower on the 2-core machine of issue 11 and dynamic quantisation slower
than fp32), calibrated with MinMax on ground-truth crops of the entry's training faces (300-W train under
`../shared/data/300w` beside the checkout, or `$ZOO_CALIB_DATA`). Without calibration crops no int8 graph is
made: the fp32 graph runs and a warning says why. The graph is cached beside the fp32 export, keyed by the
weights' hash, with a JSON note of what it was calibrated on.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .crop import normalise_crops
from .registry import Entry, ZooError

log = logging.getLogger(__name__)


def output_names(model: nn.Module) -> list[str]:
    n = len(model(torch.zeros(1, 3, 64, 64)))
    return ["scores", "offset_x", "offset_y", "nb_x", "nb_y"] if n == 5 else [f"out{i}" for i in range(n)]


def export_onnx(model: nn.Module, path: Path, input_size: int = 256, check: bool = True,
                opset: int = 17) -> dict[str, Any]:
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        names = output_names(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the TorchScript exporter is deprecated but needs no onnxscript
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=names, dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    info: dict[str, Any] = {"path": str(path), "opset": opset, "bytes": path.stat().st_size}
    if check:
        xb = torch.randn(3, 3, input_size, input_size, generator=torch.Generator().manual_seed(1))  # another batch size
        with torch.inference_mode():
            ref = [t.numpy() for t in model(xb)]
            got = OnnxRunner(path)(xb.numpy())
            info["max_abs_err"] = float(max(np.abs(a - b).max() for a, b in zip(ref, got)))
            info["landmark_max_abs_err"] = float(np.abs(model.decode(ref)[0] - model.decode(got)[0]).max()) \
                if hasattr(model, "decode") else None
        log.info("exported %s: max abs error vs torch %.2e", path, info["max_abs_err"])
    return info


class OnnxRunner:
    def __init__(self, path: str | Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ZooError("backend='onnx' needs onnxruntime: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # No busy-waiting between calls: spinning threads would steal the detector's CPU and skew timings.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})


# ------------------------------------------------------------------------------------------------- int8
CALIB_FACES = 64
TRAIN_FOLDERS = {"300w": ("afw", "helen/trainset", "lfpw/trainset")}   # training faces only, never test
# Datasets without a training layout here calibrate on another's training faces: the WFLW entries were
# trained mostly on 300-W's, and calibration only needs the activation ranges of real face crops.
CALIB_DATASET = {"wflw": "300w"}
INT8_MAX_NME_COST = 0.0005      # 0.05 NME points (fractions): a costlier int8 graph is refused


def calibration_root(dataset: str | None) -> Path | None:
    """Where the training faces for calibration are: $ZOO_CALIB_DATA, else ../shared/data/DATASET beside the
    checkout; None when absent or when the dataset has no known training layout."""
    if dataset not in TRAIN_FOLDERS:
        return None
    env = os.environ.get("ZOO_CALIB_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / dataset
    return root if any((root / f).is_dir() for f in TRAIN_FOLDERS[dataset]) else None


def calibration_crops(entry: Entry, n: int = CALIB_FACES) -> tuple[np.ndarray, str] | None:
    """(n,S,S,3) uint8 ground-truth crops (landmark box x gt_box_scale) of training faces spread evenly over
    the training folders, and a description of them; None when no training data is found."""
    from .crop import crop_faces, gt_crop_box
    from .images import load_image
    from .pts import read_pts

    dataset = CALIB_DATASET.get(entry.dataset, entry.dataset)
    root = calibration_root(dataset)
    if root is None:
        return None
    files = sorted(p for f in TRAIN_FOLDERS[dataset] for p in (root / f).glob("*.pts"))
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)]
    pre, crops = entry.preprocess, []
    for pts in picks:
        img = next((p for p in (pts.with_suffix(e) for e in (".jpg", ".png", ".jpeg")) if p.exists()), None)
        if img is None:
            continue
        box = gt_crop_box(read_pts(pts), pre.gt_box_scale)
        crops.append(crop_faces(load_image(img), box[None], pre.input_size)[0])
    if not crops:
        return None
    return np.stack(crops), f"{len(crops)} ground-truth crops of {dataset} training faces under {root}"


def quantize_int8(fp32_path: Path, out_path: Path, calib: np.ndarray) -> None:
    """Static QDQ int8 (per-channel, U8S8, MinMax) of an fp32 graph, calibrated on `calib` (M,3,S,S)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.batches, None)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)   # fold + infer shapes first
        part = out_path.with_suffix(".part")
        quantize_static(str(pre), str(part), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        os.replace(part, out_path)


def int8_refusal(entry: Entry) -> str | None:
    """Why the int8 graph of `entry` must not be used (it costs more than 0.05 NME points by the registry's
    measurement), or None."""
    m = entry.metrics
    if m.get("nme") is None or m.get("nme_int8") is None:
        return None
    cost = float(m["nme_int8"]) - float(m["nme"])
    if cost > INT8_MAX_NME_COST:
        return (f"int8 costs {100 * cost:+.3f} NME points on {m.get('dataset', '')} {m.get('split', '')} "
                f"(> {100 * INT8_MAX_NME_COST:.2f}; {m.get('nme_int8_command', 'measured')})")
    return None


def int8_graph(entry: Entry, fp32_path: Path) -> Path | None:
    """The cached int8 graph beside `fp32_path` (made now if missing), or None when it cannot be calibrated."""
    path = fp32_path.with_name(fp32_path.stem + "-int8.onnx")
    if path.exists():
        return path
    got = calibration_crops(entry)
    if got is None:
        return None
    crops, source = got
    pre = entry.preprocess
    quantize_int8(fp32_path, path, normalise_crops(crops, pre.mean, pre.std))
    path.with_suffix(".json").write_text(json.dumps({
        "from": fp32_path.name, "format": "QDQ per-channel U8S8 (activations uint8, weights int8), MinMax",
        "calibration": source}, indent=1) + "\n")
    log.info("%s: int8 graph %s calibrated on %s", entry.name, path, source)
    return path
