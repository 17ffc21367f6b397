"""The Gradio app: pick 2–4 landmark models, give photos (upload, webcam snapshot, paste, or an example),
see every model's landmarks side by side with per-stage timings, NME against ground truth (or the models'
disagreement), model cards, and JSON/PNG downloads. A second tab runs one model on the live webcam.

API endpoints (gradio_client): "/compare" (the comparison) and "/cards" (model cards); the webcam stream's
"/live" is undocumented (gradio_client cannot send streaming inputs).
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")      # before gradio is imported: no telemetry

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from zoo.registry import ZooError
from zoo.schemes import get_scheme

from . import compare, render
from .models import CACHE, DETECTORS, available_detectors, available_models, scheme_name

log = logging.getLogger(__name__)

TITLE = "Face landmark zoo — compare models"
WORK_DIR = Path(tempfile.gettempdir()) / "facezoo-space"
SHARED = Path(os.environ.get("SPACE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
KEEP_S = 3600                                   # result files older than this are deleted

# System fonts only: the page makes no request outside this server (no web fonts, no CDN).
SYSTEM_FONT = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONT = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CSS = """
#cards { font-size: 0.92em; }
#summary p { margin: 0.2em 0; }
"""

TIMING_HEADERS = {"model": "model", "backend": "backend", "photos": "photos", "faces": "faces",
                  "detect_ms": "detect ms", "preprocess_ms": "preprocess ms", "model_ms": "model ms",
                  "decode_ms": "decode ms", "total_ms": "total ms", "fps": "FPS"}


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=SYSTEM_FONT, font_mono=MONO_FONT)


# ------------------------------------------------------------------------------------------- helpers
class Failure(Exception):
    """A message for the visitor (raised as gr.Error at the handler boundary)."""


def _payload_path(p: Any) -> tuple[Path, str] | None:
    """(server path, visitor's file name) of an un-preprocessed file/image payload, or None."""
    if p is None:
        return None
    if isinstance(p, (str, Path)):
        return Path(p), Path(p).name
    if isinstance(p, dict):
        path = p.get("path")
        if not path:
            url = p.get("url") or ""
            return _from_data_url(url, str(p.get("orig_name") or "image")) if url.startswith("data:") else None
        return Path(path), str(p.get("orig_name") or Path(path).name)
    raise Failure(f"unexpected input of type {type(p).__name__}")


def _from_data_url(url: str, name: str) -> tuple[Path, str]:
    """A base64 data: URL (some browsers' webcam/paste payloads) written to a temp file."""
    import base64
    import binascii

    header, _, data = url.partition(",")
    if ";base64" not in header or len(data) > 34_000_000:       # about 25 MB decoded
        raise Failure(f"{name}: unsupported or too large data: URL; upload the file instead")
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise Failure(f"{name}: data: URL is not valid base64") from None
    path = _work_dir() / "upload"
    path.write_bytes(raw)
    return path, name


def _payload_list(p: Any) -> list[tuple[Path, str]]:
    if p is None:
        return []
    items = p if isinstance(p, list) else [p]
    return [x for x in (_payload_path(i) for i in items) if x is not None]


def _work_dir() -> Path:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in WORK_DIR.glob("run-*"):                   # results are copied into Gradio's cache on return
        try:
            if now - old.stat().st_mtime > KEEP_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="run-", dir=WORK_DIR))


def _guard(fn):
    """Handler wrapper: ZooError/Failure -> gr.Error with its message; anything else -> a short gr.Error
    (the traceback goes to the server log only)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ZooError, Failure) as e:
            raise gr.Error(str(e), title="Cannot compare", print_exception=False) from None
        except MemoryError:
            raise gr.Error("out of memory: try a smaller photo or fewer models", print_exception=False) from None
        except Exception as e:  # a bug, not the visitor's fault: no traceback on the page
            log.exception("handler %s failed", fn.__name__)
            first = (str(e).splitlines() or [""])[0][:200]
            raise gr.Error(f"internal error ({type(e).__name__}: {first}); the app is still running — try "
                           "again or with other inputs", print_exception=False) from None
    return wrapper


def _frame(rows: list[dict[str, Any]], headers: dict[str, str] | None = None) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df.rename(columns=headers) if headers and not df.empty else df


def _timing_plot_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    data = [{"model": r["model"], "stage": s, "ms": r[f"{s}_ms"]}
            for r in rows for s in ("detect", "preprocess", "model", "decode")]
    return pd.DataFrame(data, columns=["model", "stage", "ms"])


# ------------------------------------------------------------------------------------------- handlers
class Handlers:
    """The app's event handlers over one model cache; choices are read at construction (restart the app
    after adding weights)."""

    def __init__(self, cache=None, detectors=None):
        self.cache = cache or CACHE
        self.detectors = detectors or DETECTORS
        self.models_here = available_models()
        self.dets_here = available_detectors()
        self.hw_line = compare.hardware_line()

    @_guard
    def run_compare(self, image, more_images, ground_truth, models, detector, backend, whole_image,
                    progress=gr.Progress()):
        """The /compare endpoint: photos + choices -> pictures, tables, downloads (see build_demo)."""
        models = compare.validate_choice(models, self.models_here)
        if detector not in self.dets_here and not whole_image:
            raise Failure(f"detector {detector!r} is not available here; "
                          f"available: {', '.join(self.dets_here)}")
        if backend not in ("torch", "onnx"):
            raise Failure(f"backend must be 'torch' or 'onnx', not {backend!r}")
        files = _payload_list(image) + _payload_list(more_images)
        if not files:
            raise Failure("give a photo: upload one, take a webcam snapshot, paste one, or click an example")
        if len(files) > compare.MAX_IMAGES:
            gr.Warning(f"only the first {compare.MAX_IMAGES} photos are compared")
            files = files[:compare.MAX_IMAGES]
        progress(0.0, desc="reading photos")
        images = [compare.read_image(p, name) for p, name in files]
        gts = [(name, compare.read_ground_truth(p, name)) for p, name in _payload_list(ground_truth)]
        pair_warnings = compare.pair_ground_truth(images, gts)

        report = compare.run_comparison(images, models, detector, backend, bool(whole_image), self.cache,
                                        self.detectors, progress=lambda f, d: progress(f, desc=d))
        report.warnings[:0] = pair_warnings
        for w in report.warnings:
            gr.Warning(w)

        out = _work_dir()
        data = report.to_json()
        json_path = out / "landmarks.json"
        json_path.write_text(json.dumps(data, indent=1))
        pngs = [str(render.save_png(img, out / f"annotated_{i}_{compare.safe_name(name)}.png"))
                for i, (name, img) in enumerate(report.composites())]

        timing_rows = report.timing_rows()
        acc_rows = report.accuracy_rows()
        has_gt = any(r.inp.gt for r in report.results)
        if has_gt:
            acc_md = ("### Accuracy against your ground truth\nNME in % of the scheme's normaliser "
                      "(e.g. inter-ocular distance for 68 points); each ground-truth face is matched to the "
                      "nearest detected face.")
            acc_df = _frame(acc_rows)
        else:
            acc_md = ("### Disagreement between models (no ground truth uploaded)\nMean distance between two "
                      "models' points on the same faces, in % of the scheme's normaliser; only models with the "
                      "same landmark scheme are compared.")
            acc_df = _frame(report.disagreement_rows())
        n_faces = sum(len(r.boxes) for r in report.results)
        lines = [f"**{len(images)} photo(s), {n_faces} face(s), {len(models)} model(s)** · detector: "
                 f"{'none (whole image)' if whole_image else detector} · backend: {backend}",
                 f"Timings from: {self.hw_line}. Detection runs once per photo and every model gets the same "
                 "face boxes; its time is in each model's total. Models are warmed up (one untimed call) when "
                 "loaded."]
        if report.load_ms:
            lines.append("Loaded now (not timed): " + ", ".join(f"{m} {ms / 1000:.1f} s" for m, ms in
                                                                report.load_ms.items()))
        if report.warnings:
            lines += [f"⚠️ {w}" for w in report.warnings]
        # Pictures go out as files we wrote: Gradio copies files into its cache atomically, whereas arrays are
        # re-encoded onto one content-hashed path, which two identical concurrent requests can race on.
        gallery = [(str(render.save_png(img, out / f"model_{i}.png")), cap)
                   for i, (img, cap) in enumerate(report.gallery())]
        errors = [(str(render.save_png(img, out / f"errors_{i}.png")), cap)
                  for i, (img, cap) in enumerate(report.error_gallery())]
        return (gallery,
                "\n\n".join(lines),
                _frame(timing_rows, TIMING_HEADERS),
                _timing_plot_frame(timing_rows),
                acc_md,
                acc_df,
                errors,
                str(json_path),
                pngs,
                render.cards_markdown(models, compare.model_info(models, self.cache)))

    @_guard
    def cards(self, models):
        models = [m for m in (models or []) if m in self.models_here][:compare.MAX_MODELS]
        return render.cards_markdown(models, compare.model_info(models, self.cache))

    def live(self, frame, model, detector, backend, whole_image):
        """One webcam frame -> the frame with one model's landmarks and its speed (never raises)."""
        if frame is None:
            return None
        try:
            inp = compare.from_array(np.asarray(frame), "webcam")
            small, s = render.fit_width(inp.image, 640) if inp.image.shape[1] > 640 else (inp.image, 1.0)
            inp = compare.InputImage("webcam", small, s, inp.original_size)
            if model not in self.models_here:
                return render.put_text(small, "pick a model")
            boxes, scores, det_ms = compare.detect(inp, detector, bool(whole_image), self.detectors, max_faces=4)
            if len(boxes) == 0:
                return render.put_text(small, f"no face ({detector} {det_ms:.0f} ms)")
            with self.cache.use(model, backend) as lm:
                faces = lm(small, boxes=boxes)
                t = dict(lm.timings)
            total = det_ms + sum(t.get(k, 0.0) for k in ("preprocess", "model", "decode"))
            out = render.draw_faces(small, faces, get_scheme(scheme_name(model)))
            return render.put_text(out, f"{model} · {total:.0f} ms · {1000 / max(total, 1e-3):.1f} FPS")
        except ZooError as e:
            return render.put_text(np.zeros((240, 320, 3), np.uint8), str(e)[:60])
        except Exception:
            log.exception("live frame failed")
            return frame


def build_demo(cache=None, detectors=None) -> gr.Blocks:
    """The Blocks app (handlers in `demo.handlers`)."""
    h = Handlers(cache, detectors)
    models_here, dets_here, hw_line, cache = h.models_here, h.dets_here, h.hw_line, h.cache
    default_models = models_here[:2]
    intro = (f"# {TITLE}\nUpload photos (or take a webcam snapshot, or click an example), pick 2–4 models, and "
             "compare their landmarks, speed and accuracy. Add ground truth (.pts or JSON list of [x, y]) to get "
             f"NME. Timings are measured on this Space's hardware: {hw_line}.")
    if not models_here:
        intro += ("\n\n**No model weights were found on this machine.** Bundle them in `zoo/weights/<name>/`, put "
                  "them in `$ZOO_HOME/<name>/`, or publish the registry entries.")
    elif any(not _published(m) for m in models_here):
        intro += ("\n\n⚠️ Some models run local, unpublished weights (see their cards): their output may be "
                  "meaningless.")

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, KEEP_S)) as demo:
        demo.handlers = h
        gr.Markdown(intro)
        with gr.Tab("Compare"):
            with gr.Row():
                with gr.Column(scale=5):
                    image = gr.Image(label="Photo (upload, webcam snapshot, or paste)", type="filepath",
                                     sources=["upload", "webcam", "clipboard"], image_mode=None, height=340,
                                     elem_id="photo")
                    more = gr.File(label="More photos (optional)", file_count="multiple", file_types=["image"],
                                   elem_id="more_photos")
                    ground_truth = gr.File(label="Ground truth (optional): iBUG .pts or JSON [[x, y], ...] per "
                                                 "photo, matched by file name", file_count="multiple",
                                           file_types=[".pts", ".json"], elem_id="ground_truth")
                with gr.Column(scale=4):
                    models = gr.CheckboxGroup(models_here, value=default_models, label="Models (pick 2–4)",
                                              elem_id="models")
                    with gr.Row():
                        detector = gr.Radio(dets_here, value=dets_here[0] if dets_here else None,
                                            label="Face detector", elem_id="detector")
                        backend = gr.Radio(["torch", "onnx"], value="torch", label="Backend", elem_id="backend")
                    whole_image = gr.Checkbox(False, label="No detection: treat the whole image as one face "
                                                           "(for photos cropped to one face)", elem_id="whole_image")
                    run = gr.Button("Compare", variant="primary", elem_id="run")
                    cards = gr.Markdown(render.cards_markdown(default_models,
                                                              compare.model_info(default_models, cache)),
                                        label="Model cards", elem_id="cards")
            gallery = gr.Gallery(label="Landmarks, one picture per model", columns=2, format="png", height=640,
                                 object_fit="contain", elem_id="gallery")
            summary = gr.Markdown(label="Summary", elem_id="summary")
            timing_table = gr.Dataframe(label="Timing per photo (mean ms per stage; FPS = 1000 / total)",
                                        interactive=False, elem_id="timing_table")
            timing_plot = gr.BarPlot(x="model", y="ms", color="stage", title="ms per photo, by stage",
                                     label="Timing", elem_id="timing_plot", sort=None)
            accuracy_md = gr.Markdown(label="Accuracy heading")
            accuracy_table = gr.Dataframe(label="Accuracy / disagreement", interactive=False, elem_id="accuracy")
            error_gallery = gr.Gallery(label="Ground truth (green) vs prediction (red), when ground truth is given",
                                       columns=2, format="png", height=640, object_fit="contain", elem_id="errors")
            with gr.Row():
                json_file = gr.File(label="Results (JSON: boxes, landmarks, timings)", elem_id="json_file")
                png_files = gr.File(label="Annotated PNG (models side by side)", file_count="multiple",
                                    elem_id="png_files")
            examples = _examples()
            if examples:
                gr.Examples(examples, inputs=[image, ground_truth, whole_image],
                            label="Examples (click, then Compare)", cache_examples=False)
        with gr.Tab("Live webcam"):
            gr.Markdown("One model on your webcam stream (frames are throttled; one stream is processed at a "
                        "time). Timings shown on each frame.")
            with gr.Row():
                live_model = gr.Dropdown(models_here, value=models_here[0] if models_here else None, label="Model")
                live_detector = gr.Radio(dets_here, value=dets_here[0] if dets_here else None, label="Face detector")
                live_backend = gr.Radio(["torch", "onnx"], value="torch", label="Backend")
                live_whole = gr.Checkbox(False, label="No detection (whole frame)")
            with gr.Row():
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
                cam_out = gr.Image(label="Landmarks", type="numpy", format="jpeg")

        run.click(h.run_compare, [image, more, ground_truth, models, detector, backend, whole_image],
                  [gallery, summary, timing_table, timing_plot, accuracy_md, accuracy_table, error_gallery,
                   json_file, png_files, cards],
                  api_name="compare", preprocess=False)
        models.change(h.cards, [models], [cards], api_name="cards", concurrency_limit=None)
        cam.stream(h.live, [cam, live_model, live_detector, live_backend, live_whole], [cam_out],
                   api_name="live", api_visibility="undocumented", stream_every=0.25, time_limit=120,
                   concurrency_limit=1)
    return demo


def _published(name: str) -> bool:
    from zoo import registry

    from .models import is_peer

    return is_peer(name) or registry.get(name).published


def _examples() -> list[list[Any]]:
    """A drawn face (always) and a few 300-W test photos with ground truth (when ../shared has them); files
    are written/copied to a temp folder at start-up, never committed."""
    import cv2

    folder = WORK_DIR / "examples"
    folder.mkdir(parents=True, exist_ok=True)

    def put(path: Path, data: bytes) -> str:            # atomic: several app processes may share the folder
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return str(path)

    img, pts = render.synthetic_face(384)
    syn = put(folder / "drawn_face.png", cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes())
    syn_pts = put(folder / "drawn_face.pts", ("version: 1\nn_points: 68\n{\n" + "\n".join(
        f"{x + 1:.2f} {y + 1:.2f}" for x, y in pts) + "\n}\n").encode())
    rows: list[list[Any]] = [[syn, [syn_pts], True]]
    src = SHARED / "data" / "300w" / "helen" / "testset"
    if src.is_dir():
        for jpg in sorted(src.glob("*.jpg"))[:2]:
            if jpg.with_suffix(".pts").is_file():
                rows.append([put(folder / jpg.name, jpg.read_bytes()),
                             [put(folder / f"{jpg.stem}.pts", jpg.with_suffix(".pts").read_bytes())], False])
    return rows


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, **kwargs: Any):
    """Queue (bounded concurrency) and serve. Env: SPACE_CONCURRENCY (default 2), SPACE_QUEUE_SIZE (64)."""
    demo.queue(default_concurrency_limit=int(os.environ.get("SPACE_CONCURRENCY", "2")),
               max_size=int(os.environ.get("SPACE_QUEUE_SIZE", "64")))
    kwargs.setdefault("max_file_size", os.environ.get("SPACE_MAX_FILE_SIZE", "25mb"))
    kwargs.setdefault("ssr_mode", False)
    kwargs.setdefault("show_error", False)
    return demo.launch(server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                       server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                       theme=theme(), css=CSS, **kwargs)
