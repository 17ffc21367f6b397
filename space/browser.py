"""The live tab's in-browser path: the page (space/static/live.html + live.js) runs YuNet and the fast zoo entries
with onnxruntime-web, vendored in space/static/ort/, so it loads nothing from outside. Everything the page must
agree on with `zoo` (input size, normalisation, crop rules, neighbour merging, contours) is written here into
one config.json from the registry and the weight files: the JS holds no second copy of those numbers."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import zoo
from zoo.detectors import load_detector
from zoo.draw import LOW_CONFIDENCE
from zoo.nets.pipnet import SPREAD_FLOOR

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# The small entries, the fastest first (the page starts with it); r18 is 3x slower.
BROWSER_MODELS = ("pipnet_mbv2_300w.fast", "pipnet_mbv2_300w", "pipnet_mbv2_wflw", "mobilefan_300w")
# The page's tracking: the detector runs while no face is held and every REDETECT frames; One Euro smoothing.
TRACKING = {"redetect_every": 30, "min_cutoff": 1.0, "beta": 10.0, "d_cutoff": 1.0, "min_mean_peak": 0.2}


def file_url(path: Path) -> str:
    """The URL under which Gradio serves a file in one of its static paths."""
    return f"/gradio_api/file={path.resolve()}"


def model_config(lm: zoo.Landmarker, onnx: str) -> dict[str, Any]:
    """What live.js needs of one entry: its ONNX graph's URL, preprocessing, decode and drawing."""
    p = lm.preprocess
    out: dict[str, Any] = {"onnx": onnx, "arch": lm.entry.arch, "input_size": p.input_size,
                           "mean": list(p.mean), "std": list(p.std), "gt_box_scale": p.gt_box_scale,
                           "num_points": lm.scheme.num_points, "norm_points": lm.scheme.norm_points,
                           "contours": [{"indices": list(c.indices), "closed": c.closed} for c in lm.scheme.contours]}
    conf = lm.confidence                    # None unless fitted for this very weight file
    out["confidence"] = {"weights": list(conf.weights), "bias": conf.bias, "features": list(conf.features)} \
        if conf is not None else None
    if lm.entry.arch == "pipnet":
        out["spread_floor"] = SPREAD_FLOOR
        merge = lm.model.merge.detach().cpu().numpy()
        out["num_nb"] = int(lm.model.num_nb)
        out["merge"] = [[[int(c), float(merge[j, c])] for c in np.flatnonzero(merge[j])] for j in range(len(merge))]
    return out


def prepare(folder: Path, models: Sequence[str] = BROWSER_MODELS, url_of: Callable[[Path], str] = file_url
             ) -> Path | None:
    """Export the models' ONNX graphs and write config.json into `folder` (`url_of`: how the page will fetch a
    file there); None when no model can load here."""
    folder.mkdir(parents=True, exist_ok=True)
    det = load_detector("yunet")
    det_file = folder / "yunet.onnx"
    shutil.copyfile(det.path, det_file)               # the original graph: a fixed 320 x 320 input
    config: dict[str, Any] = {
        "detector": {"name": det.name, "onnx": url_of(det_file), "input_size": 320,
                     "score_threshold": det.score_threshold, "nms_threshold": det.nms_threshold,
                     "crop_rule": list(det.crop_rule)},
        "tracking": TRACKING, "low_confidence": LOW_CONFIDENCE, "upright_from_deg": zoo.Landmarker.upright_from_deg,
        "models": {}}
    for name in models:
        try:
            lm = zoo.load(name, backend="onnx", detector=None)
        except zoo.ZooError as e:
            log.warning("browser live view: %s left out: %s", name, e)
            continue
        onnx = folder / f"{name}.onnx"
        shutil.copyfile(lm.runner.path, onnx)
        config["models"][name] = model_config(lm, url_of(onnx))
    if not config["models"]:
        return None
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


def page_url(config: Path, model: str | None = None) -> str:
    q = f"?config={file_url(config)}" + (f"&model={model}" if model else "")
    return file_url(STATIC / "live.html") + q


def static_paths(folder: Path) -> list[str]:
    """What Gradio must serve for the page: the page, its script and onnxruntime-web; the graphs and config."""
    return [str(STATIC), str(folder)]


# ------------------------------------------------------------------------- a site of its own (tests, FPS)
def write_y4m(path: Path, frames: Sequence[np.ndarray], fps: int = 30) -> Path:
    """An uncompressed YUV 4:2:0 clip of RGB frames, which Chromium's fake camera plays in a loop."""
    import cv2

    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for fr in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(fr, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def serve_site(root: Path, models: Sequence[str] = BROWSER_MODELS):
    """The page, onnxruntime-web, the graphs and config.json under `root`, served on loopback by a plain HTTP
    server: (server, base URL, page URL). `server.shutdown()` stops it."""
    import functools
    import http.server
    import threading

    shutil.copytree(STATIC, root / "static", dirs_exist_ok=True)
    config = prepare(root / "browser", models, url_of=lambda p: "/" + p.relative_to(root).as_posix())
    if config is None:
        raise zoo.ZooError(f"none of {list(models)} could be exported for the browser")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    return server, base, f"{base}/static/live.html?config=/browser/config.json"
