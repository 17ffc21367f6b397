"""ONNX export (dynamic batch) with a check against torch, and an onnxruntime runner."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .registry import ZooError

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
            info["landmark_max_abs_err"] = float((model.decode(ref) - model.decode(got)).abs().max()) \
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
