"""The Gradio app: pick 2–4 landmark models (zoo entries and peers), give photos (an example, an upload, a
webcam snapshot or a paste), and see every model on one overlay in its own colour with a zoom on each face,
a leaderboard (size, benchmark NME, NME on your photos, speed), a timing chart, a photo x model grid, model
cards, and JSON/PNG downloads. A second tab runs one model on the live webcam with the same drawing.

API endpoints (gradio_client): "/compare" (the comparison; errors raise) and "/cards" (model cards). The
page's own Compare button runs the same code but reports errors inline; the webcam stream is undocumented.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")      # before gradio is imported: no telemetry

import functools
import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from zoo.draw import LOW_CONFIDENCE
from zoo.cpu import configure, default_threads
from zoo.registry import ZooError
from zoo.track import Tracker

from . import browser, compare, render
from .models import (BACKENDS, CACHE, DEFAULT_BACKEND, DETECTORS, available_detectors, available_models, is_peer,
                     uses_own_detector)

log = logging.getLogger(__name__)

TITLE = "Facial landmark zoo"                   # the README's title too (a test holds them together)
WORK_DIR = Path(tempfile.gettempdir()) / "facezoo-space"
SHARED = Path(os.environ.get("SPACE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SHIPPED_PHOTO = Path(__file__).with_name("examples") / "astronaut.jpg"     # public domain: see examples/README.md
KEEP_S = 3600                                   # result files older than this are deleted
DEFAULT_MAX_FACES = 8

# System fonts only: the page makes no request outside this server (no web fonts, no CDN).
SYSTEM_FONT = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONT = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CSS = """
.gradio-container { max-width: 1500px !important; }
#title h1 { margin-bottom: 0.1em; }
#status { min-height: 2.2em; }
#status p { margin: 0.15em 0; }
#cards { font-size: 0.92em; }
#leaderboard table { font-size: 15px; }
#leaderboard th { white-space: normal !important; }
#run { font-size: 1.1em; }
.heading p { margin: 0.1em 0 0 0; }
@media (max-width: 720px) {
  #panel, #panel .image-container, #panel .upload-container { height: auto !important; }
  #leaderboard table { font-size: 14px; }
  .gradio-container { padding: 6px !important; }
}
"""

LEADER_HEADERS = {"model": "Model", "params_m": "Params (M)", "size_mb": "Size (MB)",
                  **{t: t for t in compare.BENCHMARKS.values()}, "your_nme_pct": "NME % on your photos",
                  "model_ms": "Model ms (median)", "spread": "Fastest–slowest ms", "detect_ms": "Detection ms",
                  "fps": "FPS (with detection)"}
# Each column is ranked on its own: one test set per NME column, so no colour compares two sets.
LOWER_IS_BETTER = ("Params (M)", "Size (MB)", *compare.BENCHMARKS.values(), "NME % on your photos",
                   "Model ms (median)")
HIGHER_IS_BETTER = ("FPS (with detection)",)
BEST_STYLE = "background-color: #c8f0c8; font-weight: 700"
# The outputs of a comparison, in the order every handler returns them.
OUTPUTS = ("json_file", "status", "panel", "leaderboard", "chart", "grid", "accuracy_md", "accuracy",
           "errors", "png_files", "cards")


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=SYSTEM_FONT, font_mono=MONO_FONT, primary_hue="indigo")


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


def _message(e: BaseException, fn_name: str) -> str:
    """What the visitor reads for an exception: ours verbatim, anything else short (traceback in the log)."""
    if isinstance(e, gr.Error):
        return str(e.message)
    if isinstance(e, (ZooError, Failure)):
        return str(e)
    if isinstance(e, MemoryError):
        return "out of memory: try a smaller photo or fewer models"
    log.error("handler %s failed", fn_name, exc_info=e)
    first = (str(e).splitlines() or [""])[0][:200]
    return (f"internal error ({type(e).__name__}: {first}); the app is still running — try again or with other "
            "inputs")


def _guard(fn):
    """Handler wrapper: every exception becomes a gr.Error with a readable message, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - the boundary: the visitor gets a message, the log the traceback
            raise gr.Error(_message(e, fn.__name__), title="Cannot compare", print_exception=False) from None
    return wrapper


def keep_last_frames(image: gr.Image, keep: int) -> gr.Image:
    """Make `image` (the live tab's output) keep only its last `keep` frames in Gradio's cache. Each streamed frame
    is a new file there; by the time a later frame is written the page has fetched the earlier one, so a
    two-minute stream leaves a handful of files, not hundreds. A wrapper on this one instance, not a Component
    subclass (Gradio writes a .pyi copy of any module that defines one)."""
    image.frames = []
    lock = threading.Lock()
    postprocess = image.postprocess

    def keeping(value: Any) -> Any:
        out = postprocess(value)
        path = getattr(out, "path", None)
        if path:
            with lock:
                image.frames.append(path)
                old, image.frames = image.frames[:-keep], image.frames[-keep:]
            for f in old:
                _remove_cached(Path(f))
        return out

    image.postprocess = keeping
    return image


LIVE_FRAMES_KEPT = 8


def _remove_cached(path: Path) -> None:
    try:
        path.unlink()
        path.parent.rmdir()           # Gradio keeps each file in a folder named by its hash
    except OSError:
        pass


def _fmt(v: Any, digits: int = 2) -> Any:
    return None if v is None else round(float(v), digits)


def leaderboard_frame(rows: list[dict[str, Any]]) -> pd.io.formats.style.Styler | pd.DataFrame:
    """The leaderboard as a styled table: each model's name on its colour, the best value per column green."""
    if not rows:
        return pd.DataFrame(columns=list(LEADER_HEADERS.values()))
    data = []
    for r in rows:
        spread = (f"{r['model_ms_min']:.1f}–{r['model_ms_max']:.1f}" if r.get("model_ms_min") is not None else None)
        data.append({"model": r["model"], "params_m": r["params_m"], "size_mb": r["size_mb"],
                     **{t: r.get("benchmarks", {}).get(t) for t in compare.BENCHMARKS.values()},
                     "your_nme_pct": r["your_nme_pct"],
                     "model_ms": _fmt(r["model_ms"], 1), "spread": spread,
                     "detect_ms": _fmt(r["detect_ms"], 1) if r.get("detector") != "own" else _fmt(r["detect_ms"], 1),
                     "fps": _fmt(r["fps"], 1)})
    df = pd.DataFrame(data).rename(columns=LEADER_HEADERS)
    colors = {r["model"]: r["color"] for r in rows}

    def style_col(col: pd.Series) -> list[str]:
        if col.name == "Model":
            return [f"background-color: {colors[v]}; color: white; font-weight: 700" for v in col]
        vals = pd.to_numeric(col, errors="coerce")
        if vals.notna().sum() < 2 or vals.nunique() < 2:
            return [""] * len(col)
        best = vals.min() if col.name in LOWER_IS_BETTER else vals.max() if col.name in HIGHER_IS_BETTER else None
        return [BEST_STYLE if best is not None and v == best else "" for v in vals]

    fmt = {c: "{:.2f}" for c in ("Params (M)", *compare.BENCHMARKS.values(), "NME % on your photos")}
    fmt.update({c: "{:.1f}" for c in ("Size (MB)", "Model ms (median)", "Detection ms", "FPS (with detection)")})
    return df.style.apply(style_col, axis=0).format(fmt, na_rep="—")


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df.rename(columns=lambda c: c.replace("_pct", " %").replace("_", " ")) if not df.empty else df


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- handlers
class Handlers:
    """The app's event handlers over one model cache; choices are read at construction (restart the app
    after adding weights). Results for the example photos are kept (computed at start-up for the default
    choice), so clicking an example shows its result at once."""

    def __init__(self, cache=None, detectors=None):
        self.cache = cache or CACHE
        self.detectors = detectors or DETECTORS
        self.models_here = available_models()
        self.dets_here = available_detectors()
        self.hw_line = compare.hardware_line()
        self.default_models = [m for m in self.models_here if not is_peer(m)][:2] or self.models_here[:2]
        self.examples = example_rows()
        self._example_hashes = {_file_hash(Path(p)) for row in self.examples for p in [row[0], *(row[1] or [])]}
        self._memo: dict[str, tuple] = {}
        self._memo_lock = threading.Lock()
        self.precomputed = threading.Event()

    # ---------------------------------------------------------------- the comparison
    def _compare(self, image, more_images, ground_truth, models, detector, backend, whole_image,
                 score_threshold, max_faces, repeats, progress) -> tuple:
        models = compare.validate_choice(models, self.models_here)
        whole = bool(whole_image)
        if not whole and detector not in self.dets_here and not all(uses_own_detector(m) for m in models):
            raise Failure(f"detector {detector!r} is not available here; available: {', '.join(self.dets_here)}")
        if backend not in BACKENDS:
            raise Failure(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        try:
            threshold = float(score_threshold if score_threshold is not None else 0.0)
            faces_max = int(max_faces if max_faces is not None else DEFAULT_MAX_FACES)
            reps = int(repeats if repeats is not None else compare.REPEATS)
        except (TypeError, ValueError):
            raise Failure("score threshold, max faces and repeats must be numbers") from None
        if not (0.0 <= threshold <= 1.0 and np.isfinite(threshold)):
            raise Failure(f"score threshold must be between 0 and 1, not {threshold}")
        files = _payload_list(image) + _payload_list(more_images)
        if not files:
            raise Failure("give a photo: click an example, upload one, take a webcam snapshot, or paste one")
        gt_files = _payload_list(ground_truth)
        key = self._memo_key(files, gt_files, models, detector, backend, whole, threshold, faces_max, reps)
        if key is not None and key in self._memo:
            return self._memo[key]
        progress(0.0, desc="reading photos")
        warnings: list[str] = []
        dropped = compare.too_many_photos([n for _, n in files])
        if dropped:                              # read only what is compared; the report says what was left out
            warnings.append(dropped)
            files = files[:compare.MAX_IMAGES]
        images = [compare.read_image(p, name) for p, name in files]
        gts = [(name, compare.read_ground_truth(p, name)) for p, name in gt_files]
        warnings += compare.pair_ground_truth(images, gts)
        report = compare.run_comparison(images, models, detector, backend, whole, self.cache, self.detectors,
                                        progress=lambda f, d: progress(f, desc=d), score_threshold=threshold,
                                        max_faces=faces_max, repeats=reps, warnings=warnings)
        out_dir = _work_dir() if key is None else WORK_DIR / "examples" / f"result-{key[:16]}"
        out_dir.mkdir(parents=True, exist_ok=True)
        result = self._outputs(report, out_dir, precomputed=key is not None)
        if key is not None:
            with self._memo_lock:
                self._memo[key] = result
        return result

    def _memo_key(self, files, gt_files, *options) -> str | None:
        """A key for results worth keeping: only when every file is one of the example files."""
        try:
            hashes = [_file_hash(p) for p, _ in files] + [_file_hash(p) for p, _ in gt_files]
        except OSError:
            return None
        if not hashes or not set(hashes) <= self._example_hashes:
            return None
        names = [n for _, n in files] + [n for _, n in gt_files]
        return hashlib.sha256(json.dumps([hashes, names, *options], default=str).encode()).hexdigest()

    def _outputs(self, report: compare.Report, out: Path, precomputed: bool = False) -> tuple:
        data = report.to_json()
        json_path = out / "landmarks.json"
        json_path.write_text(json.dumps(data, indent=1))
        # Pictures go out as files we wrote: Gradio copies files into its cache atomically, whereas arrays are
        # re-encoded onto one content-hashed path, which two identical concurrent requests can race on.
        panels = report.panels()
        pngs = [str(render.save_png(img, out / f"compare_{i}_{compare.safe_name(name)}.png"))
                for i, (name, img) in enumerate(panels)]
        grid = str(render.save_png(report.grid(), out / "grid.png"))
        chart_img = report.chart()
        chart = str(render.save_png(chart_img, out / "timing.png")) if chart_img is not None else None
        pngs += [grid] + ([chart] if chart else [])
        errors = [(str(render.save_png(img, out / f"errors_{i}.png")), cap)
                  for i, (img, cap) in enumerate(report.error_gallery())]
        if any(r.inp.gt for r in report.results):
            acc_md = ("NME in % of the scheme's normaliser (inter-ocular distance for 68 points) against your "
                      "ground truth; each ground-truth face is matched to the model's face on it.")
            acc_df = _frame(report.accuracy_rows())
        else:
            acc_md = ("No ground truth given: how far the models' points are from each other's on the same faces "
                      "(% of the normaliser; 98-point models compared on their 68-point subset).")
            acc_df = _frame(report.disagreement_rows())
        return (str(json_path), self._status(report, precomputed), pngs[0] if pngs else None,
                leaderboard_frame(report.leaderboard_rows()), chart, grid, acc_md, acc_df, errors, pngs,
                compare.cards_markdown(report.models, report.info, self.cache))

    def _status(self, report: compare.Report, precomputed: bool) -> str:
        n_faces = sum(len(r.boxes) for r in report.results)
        det = ("none (whole image)" if report.whole_image else
               f"{report.detector} (score ≥ {report.score_threshold:.2f}, at most {report.max_faces} faces)")
        lines = [f"✔ **{len(report.models)} model(s) · {len(report.results)} photo(s) · {n_faces} face(s)** · "
                 f"detector: {det} · backend: {report.backend}"]
        own = [m for m in report.models if any(m in r.runs and r.runs[m].own_detector for r in report.results)]
        if own:
            lines.append(f"{', '.join(own)} found faces with its own detector (its time includes that).")
        lines.append(f"Timing: {report.timing_note()}")
        if precomputed:
            lines.append("An example's result, computed once and kept.")
        if report.load_ms and not precomputed:
            lines.append("Loaded now (not timed): " + ", ".join(f"{m} {ms / 1000:.1f} s"
                                                                for m, ms in report.load_ms.items()))
        lines += [f"⚠ {w}" for w in report.warnings]
        return "\n\n".join(lines)

    @_guard
    def compare_api(self, image, more_images=None, ground_truth=None, models=None, detector="haar",
                    backend=DEFAULT_BACKEND, whole_image=False, score_threshold=0.0, max_faces=DEFAULT_MAX_FACES,
                    repeats=compare.REPEATS, progress=gr.Progress()):
        """Compare landmark models on photos. Returns the JSON download first (boxes, landmarks, timings,
        leaderboard, accuracy, warnings), then the page's status, pictures, tables and cards."""
        return self._compare(image, more_images, ground_truth, models, detector, backend, whole_image,
                             score_threshold, max_faces, repeats, progress)

    def compare_ui(self, image, more_images, ground_truth, models, detector, backend, whole_image,
                   score_threshold, max_faces, repeats, progress=gr.Progress()):
        """The page's Compare: the same comparison, with any error shown in the status line."""
        try:
            return self._compare(image, more_images, ground_truth, models, detector, backend, whole_image,
                                 score_threshold, max_faces, repeats, progress)
        except Exception as e:  # noqa: BLE001 - shown inline: the visitor reads it next to the button
            return self.cleared(f"✖ **Cannot compare:** {_message(e, 'compare_ui')}", models)

    def cleared(self, status: str, models=None) -> tuple:
        """Every output emptied (no stale result stays on the page) and `status` shown."""
        cards = self.cards_md(models) if models is not None else gr.update()
        return (None, status, None, leaderboard_frame([]), None, None, "", pd.DataFrame(), [], None, cards)

    def running(self) -> tuple:
        return self.cleared("Comparing… (models load on first use; each is timed several times)")

    def stale(self) -> tuple:
        return self.cleared("Inputs changed: press **Compare** for a new result.")

    def check_upload(self, image, ground_truth=None) -> tuple:
        """On upload: decode the photo now, so a bad file is reported before anyone presses Compare; ground
        truth named for another photo (an example's) is dropped."""
        files = _payload_list(image)
        gts = _payload_list(ground_truth)
        if files:
            stem = Path(files[0][1]).stem
            gts = [(p, n) for p, n in gts if Path(n).stem == stem]
        kept = [str(p) for p, _ in gts] or None
        if not files:
            return (kept, *self.stale())
        try:
            inp = compare.read_image(*files[0])
        except Exception as e:  # noqa: BLE001 - a message for the visitor
            return (kept, *self.cleared(f"✖ {_message(e, 'check_upload')}"))
        w, h = inp.original_size
        note = f" (processed at {inp.image.shape[1]}×{inp.image.shape[0]})" if inp.scale < 1 else ""
        return (kept, *self.cleared(f"{inp.name}: {w}×{h} px{note}. Press **Compare**."))

    def check_ground_truth(self, files) -> str:
        msgs = []
        for p, name in _payload_list(files):
            try:
                faces = compare.read_ground_truth(p, name)
                msgs.append(f"{name}: {len(faces)} face(s), {len(faces[0])} points")
            except Exception as e:  # noqa: BLE001
                msgs.append(f"✖ {_message(e, 'check_ground_truth')}")
        return ("Ground truth: " + "; ".join(msgs) + ". Press **Compare**.") if msgs else \
            "Inputs changed: press **Compare** for a new result."

    def cards_md(self, models) -> str:
        models = [m for m in (models or []) if m in self.models_here][:compare.MAX_MODELS]
        return compare.cards_markdown(models, compare.model_info(models, self.cache), self.cache)

    @_guard
    def cards(self, models):
        """The chosen models' cards (Markdown)."""
        return self.cards_md(models)

    # ---------------------------------------------------------------- examples
    def precompute(self) -> None:
        """Compute the first example with the default choice (start-up thread): the page opens on a result."""
        try:
            if self.examples and len(self.default_models) >= 1:
                row = self.examples[0]
                self._compare(row[0], None, row[1], self.default_models, self.dets_here[0], "torch", row[2], 0.0,
                              DEFAULT_MAX_FACES, compare.REPEATS, lambda *a, **k: None)
        except Exception:  # noqa: BLE001 - the page then opens without a result
            log.exception("pre-computing the first example failed")
        finally:
            self.precomputed.set()

    def initial(self) -> tuple:
        """On page load: the first example's photo and its result when ready, else an invitation."""
        if not self.examples or not self.precomputed.wait(timeout=20):
            return (gr.update(), gr.update(), *self.cleared("Click an example or upload a photo, then **Compare**."))
        row = self.examples[0]
        try:
            out = self._compare(row[0], None, row[1], self.default_models, self.dets_here[0], "torch", row[2], 0.0,
                                DEFAULT_MAX_FACES, compare.REPEATS, lambda *a, **k: None)
        except Exception as e:  # noqa: BLE001
            return (gr.update(), gr.update(), *self.cleared(f"✖ {_message(e, 'initial')}"))
        return (row[0], row[1], *out)

    # ---------------------------------------------------------------- live
    def live(self, frame, model, detector, backend, whole_image, state=None):
        """One webcam frame -> (the frame with one model's landmarks, drawn as on the Compare tab, with its
        speed written under the picture; the session's tracking state). Zoo models follow the face from frame
        to frame with zoo.track.Tracker (the detector runs only when a face is lost, or every 30 frames) and
        smooth it; peers on their own detector and "no detection" run on every frame. Never raises."""
        if frame is None:
            return None, state
        try:
            img = np.ascontiguousarray(np.asarray(frame)[..., :3], np.uint8)
            img, _ = render.fit_width(img, 640) if img.shape[1] > 640 else (img, 1.0)
            if model not in self.models_here:
                return render.caption(img, "pick a model"), None
            if uses_own_detector(model) or whole_image:
                return self._live_frame(img, model, detector, backend, whole_image), None
            key = (model, detector, backend)
            if not state or state.get("key") != key:          # a new choice starts a new track
                state = {"key": key, "view": _LiveView(_SpaceDetector(self.detectors, detector)), "tracker": None}
            t0 = time.perf_counter()
            with self.cache.use(model, backend) as lm:
                view = state["view"].using(lm)
                if state["tracker"] is None:
                    state["tracker"] = Tracker(view, max_faces=4)
                faces = state["tracker"].update(img)
                scheme = lm.scheme
            ms = (time.perf_counter() - t0) * 1000.0
            stats = state["tracker"].stats
            if not faces:
                return render.caption(img, f"no face ({detector}, {ms:.0f} ms)"), state
            out = render.overlay(img, [render.Layer(model, faces, scheme, render.model_color(0))], None,
                                 width=img.shape[1])
            return render.caption(out, f"{model} | {ms:.0f} ms | {1000 / max(ms, 1e-3):.1f} FPS | tracked: "
                                       f"{detector} ran on {stats['detections']} of {stats['frames']} frames"), state
        except ZooError as e:
            return render.caption(np.zeros((240, 320, 3), np.uint8), str(e)[:60]), None
        except Exception:  # noqa: BLE001 - a stream must go on
            log.exception("live frame failed")
            return frame, None

    def _live_frame(self, img: np.ndarray, model: str, detector: str, backend: str, whole_image: bool) -> np.ndarray:
        """A frame without tracking: the shared detector (or the whole frame, or a peer's own detector) each time."""
        inp = compare.InputImage("webcam", img, 1.0, (img.shape[1], img.shape[0]))
        own = uses_own_detector(model) and not whole_image
        boxes, _, det_ms, _, rolls = (np.zeros((0, 4), np.float32), None, 0.0, 0, np.zeros(0)) if own else \
            compare.detect(inp, detector, bool(whole_image), self.detectors, max_faces=4)
        with self.cache.use(model, backend) as lm:
            faces = lm(img, max_faces=4) if own else (
                lm(img, boxes=boxes, box_rule=None if whole_image else detector, rolls=rolls) if len(boxes) else [])
            t = dict(lm.timings)
        if not own and len(boxes) == 0:
            return render.caption(img, f"no face ({detector}, {det_ms:.0f} ms)")
        total = (0.0 if own else det_ms) + sum(t.get(k, 0.0) for k in compare.STAGES)
        layer = render.Layer(model, faces, lm.scheme, render.model_color(0))
        out = render.overlay(img, [layer], None if own or whole_image else boxes, width=img.shape[1])
        return render.caption(out, f"{model} | {total:.0f} ms | {1000 / max(total, 1e-3):.1f} FPS")


class _SpaceDetector:
    """The Space's shared, locked detector as a zoo detector: image -> (boxes, scores), with its name."""

    def __init__(self, detectors, name: str):
        self.detectors, self.name = detectors, name

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores, _, _ = self.detectors.detect(self.name, image)
        return boxes, scores

    def detect_rolls(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes, scores, _, rolls = self.detectors.detect(self.name, image)
        return boxes, scores, rolls


class _LiveView:
    """A cached landmarker as one session's tracker sees it: the cache's object (shared, possibly reloaded
    between frames) with the live tab's detector in front of it."""

    def __init__(self, detector: _SpaceDetector):
        self.detector = self._detector = detector
        self.lm = None

    def using(self, lm) -> "_LiveView":
        self.lm = lm
        return self

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "lm":       # copy/pickle probes, or before __init__ ran
            raise AttributeError(name)
        return getattr(self.lm, name)

    def __call__(self, *args, **kwargs):
        return self.lm(*args, **kwargs)


def browser_live_page() -> str | None:
    """The in-browser live page's URL (space/browser.py), its graphs exported and served; None when it is off
    (SPACE_BROWSER_LIVE=0) or nothing could be exported."""
    if os.environ.get("SPACE_BROWSER_LIVE", "1") == "0":
        return None
    folder = WORK_DIR / "browser"
    try:
        config = browser.prepare(folder)
    except Exception:  # noqa: BLE001 - the page is an extra: the server path stays
        log.exception("in-browser live view not prepared")
        return None
    if config is None:
        return None
    gr.set_static_paths(browser.static_paths(folder))
    return browser.page_url(config)


def build_demo(cache=None, detectors=None, precompute: bool | None = None) -> gr.Blocks:
    """The Blocks app (handlers in `demo.handlers`). `precompute` (default: $SPACE_PRECOMPUTE, on) computes the
    first example at start-up in a background thread."""
    h = Handlers(cache, detectors)
    live_page = browser_live_page()
    models_here, dets_here = h.models_here, h.dets_here
    choices = [(_model_label(m), m) for m in models_here]
    intro = (f"# {TITLE}\nCompare face-landmark models on your photos: every model on one picture in its own "
             "colour, a zoom on each face, accuracy (with ground truth) and speed measured here. "
             f"Hardware: {h.hw_line}.")
    if not models_here:
        intro += ("\n\n**No model weights were found on this machine.** Bundle them in `zoo/weights/<name>/`, put "
                  "them in `$ZOO_HOME/<name>/`, or publish the registry entries.")
    elif any(not _published(m) for m in models_here):
        intro += ("\n\n⚠ Some models run local, unpublished weights (see their cards): their output may be "
                  "meaningless.")

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, KEEP_S)) as demo:
        demo.handlers = h
        gr.Markdown(intro, elem_id="title")
        with gr.Tab("Compare"):
            image = gr.Image(label="Photo", type="filepath", sources=["upload", "webcam", "clipboard"],
                             image_mode=None, height=300, elem_id="photo", render=False)
            ground_truth = gr.File(label="Ground truth (optional): iBUG .pts or JSON [[x, y], ...] per photo, "
                                         "matched by file name", file_count="multiple", file_types=[".pts", ".json"],
                                   elem_id="ground_truth", render=False)
            whole_image = gr.Checkbox(False, label="No detection: the whole image is one face (photos cropped to "
                                                   "a face)", elem_id="whole_image", render=False)
            if h.examples:
                examples = gr.Examples([r[:3] for r in h.examples], inputs=[image, ground_truth, whole_image],
                                       label="Examples: click one", example_labels=[r[3] for r in h.examples],
                                       examples_per_page=6, cache_examples=False, elem_id="examples")
            with gr.Row(equal_height=False):
                with gr.Column(scale=4, min_width=300):
                    image.render()
                    models = gr.CheckboxGroup(choices, value=h.default_models, label="Models (pick 2–4)",
                                              elem_id="models")
                    run = gr.Button("Compare", variant="primary", elem_id="run")
                    status = gr.Markdown("Click an example or upload a photo, then **Compare**.", elem_id="status")
                    with gr.Accordion("Face detector, backend and timing", open=False):
                        detector = gr.Radio(dets_here, value=dets_here[0] if dets_here else None,
                                            label="Face detector (shared by all models)", elem_id="detector")
                        score = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Minimum face score",
                                          elem_id="score_threshold")
                        max_faces = gr.Slider(1, compare.MAX_FACES, value=DEFAULT_MAX_FACES, step=1,
                                              label="At most this many faces per photo", elem_id="max_faces")
                        backend = gr.Radio(list(BACKENDS), value=DEFAULT_BACKEND, label="Backend", elem_id="backend")
                        repeats = gr.Slider(1, compare.MAX_REPEATS, value=compare.REPEATS, step=1,
                                            label="Timed runs per model (median reported)", elem_id="repeats")
                        whole_image.render()
                    with gr.Accordion("More photos and ground truth", open=False):
                        more = gr.File(label="More photos (optional; up to "
                                             f"{compare.MAX_IMAGES} in all)", file_count="multiple",
                                       file_types=["image"], elem_id="more_photos")
                        ground_truth.render()
                with gr.Column(scale=7, min_width=320):
                    gr.Markdown("**All models on one picture** (a colour per model), a zoom on each face below; "
                                f"a hollow ring is a point its model doubts (confidence < {LOW_CONFIDENCE:g})",
                                elem_classes=["heading"])
                    panel = gr.Image(label="Comparison", show_label=False, type="filepath", format="png", height=760,
                                     elem_id="panel", buttons=["download", "fullscreen"])
            leaderboard = gr.Dataframe(label="Leaderboard (best in green; click a header to sort)",
                                       interactive=False, elem_id="leaderboard", wrap=True, pinned_columns=1)
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=320):
                    gr.Markdown("**Speed**: each model's own time per photo; the shared face detection in grey",
                                elem_classes=["heading"])
                    chart = gr.Image(label="Speed", show_label=False, type="filepath", format="png", elem_id="chart",
                                     buttons=["download", "fullscreen"])
                with gr.Column(scale=3, min_width=320):
                    gr.Markdown("**Photo × model**: each model alone on each photo", elem_classes=["heading"])
                    grid = gr.Image(label="Photo × model grid", show_label=False, type="filepath", format="png",
                                    elem_id="grid", buttons=["download", "fullscreen"])
            with gr.Accordion("Accuracy details, ground truth vs prediction", open=False):
                accuracy_md = gr.Markdown()
                accuracy = gr.Dataframe(label="Accuracy / disagreement", interactive=False, elem_id="accuracy")
                errors = gr.Gallery(label="Ground truth (green) vs prediction (red)", columns=2, format="png",
                                    height=520, object_fit="contain", elem_id="errors")
            with gr.Row():
                json_file = gr.File(label="Results (JSON: boxes, landmarks, timings)", elem_id="json_file")
                png_files = gr.File(label="Pictures (PNG)", file_count="multiple", elem_id="png_files")
            with gr.Accordion("Model cards", open=False):
                cards = gr.Markdown(h.cards_md(h.default_models), elem_id="cards")
            api_button = gr.Button(visible=False)       # the documented /compare endpoint (errors raise)

        with gr.Tab("Live in your browser"):
            if live_page:
                gr.Markdown("YuNet and the model run **in your browser** (onnxruntime-web, served by this Space: "
                            "nothing is loaded from elsewhere, and no frame leaves your machine), with the "
                            "preprocessing and decode `zoo` uses. Press *Start camera*; switch the model at any "
                            "time. The **Live webcam** tab runs the same on the server, where a browser cannot.",
                            elem_id="browser_note")
                gr.HTML(f'<iframe src="{live_page}" title="Live landmarks in your browser" allow="camera; autoplay" '
                        'style="width:100%;height:640px;border:0" id="browser_live"></iframe>')
            else:
                gr.Markdown("The in-browser view is off here (no fast model could be exported); use **Live webcam**.")
        with gr.Tab("Live webcam"):
            gr.Markdown("One model on your webcam, drawn as on the Compare tab (frames are throttled). **One "
                        "stream runs at a time:** while another visitor streams, the picture shows your place in "
                        "the queue, and yours starts when theirs ends (streams stop after 2 minutes).",
                        elem_id="live_note")
            with gr.Row():
                live_model = gr.Dropdown(choices, value=models_here[0] if models_here else None, label="Model")
                live_detector = gr.Radio(dets_here, value=dets_here[0] if dets_here else None, label="Face detector")
                live_backend = gr.Radio(list(BACKENDS), value=DEFAULT_BACKEND, label="Backend")
                live_whole = gr.Checkbox(False, label="No detection (whole frame)")
            with gr.Row():
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live_cam")
                cam_out = keep_last_frames(gr.Image(label="Landmarks", type="numpy", format="jpeg", show_label=False,
                                                    elem_id="live_out"), LIVE_FRAMES_KEPT)

        inputs = [image, more, ground_truth, models, detector, backend, whole_image, score, max_faces, repeats]
        outputs = [json_file, status, panel, leaderboard, chart, grid, accuracy_md, accuracy, errors, png_files, cards]
        assert len(outputs) == len(OUTPUTS)
        run.click(h.running, None, outputs, queue=False, api_visibility="private").then(
            h.compare_ui, inputs, outputs, api_visibility="private", preprocess=False)
        api_button.click(h.compare_api, inputs, outputs, api_name="compare", preprocess=False)
        if h.examples:
            examples.load_input_event.then(h.compare_ui, inputs, outputs, api_visibility="private", preprocess=False)
        image.upload(h.check_upload, [image, ground_truth], [ground_truth, *outputs], api_visibility="private",
                     preprocess=False, queue=False)
        image.clear(h.stale, None, outputs, api_visibility="private", queue=False)
        ground_truth.upload(h.check_ground_truth, [ground_truth], [status], api_visibility="private",
                            preprocess=False, queue=False)
        more.upload(h.stale, None, outputs, api_visibility="private", queue=False)
        for comp in (detector, backend, whole_image, score, max_faces, repeats):
            comp.input(h.stale, None, outputs, api_visibility="private", queue=False)
        models.input(h.stale, None, outputs, api_visibility="private", queue=False).then(
            h.cards, [models], [cards], api_name="cards", concurrency_limit=None)
        demo.load(h.initial, None, [image, ground_truth, *outputs], api_visibility="private")
        live_state = gr.State(None)                   # this session's tracker (faces followed between frames)
        cam.stream(h.live, [cam, live_model, live_detector, live_backend, live_whole, live_state], [cam_out, live_state],
                   api_name="live", api_visibility="undocumented", stream_every=0.25, time_limit=120,
                   concurrency_limit=1, show_progress="hidden")     # a spinner over the output hid the frames
    if precompute if precompute is not None else os.environ.get("SPACE_PRECOMPUTE", "1") != "0":
        threading.Thread(target=h.precompute, name="precompute-example", daemon=True).start()
    else:
        h.precomputed.set()
    return demo


def _model_label(name: str) -> str:
    if not is_peer(name):
        return name
    return f"{name} (peer{', own face detector' if uses_own_detector(name) else ''})"


def _published(name: str) -> bool:
    from zoo import registry

    return is_peer(name) or registry.get(name).published


# ------------------------------------------------------------------------------------------- examples
def example_rows() -> list[list[Any]]:
    """[photo, ground truth files or None, whole image?, label] per example.

    First the public-domain photo shipped in space/examples/ (see its README). With ../shared present, also
    300-W test photos with their .pts (real ground truth) and a WFLW crowd photo (several faces), read in
    place, never copied into the repository (non-commercial licences).
    """
    rows: list[list[Any]] = [[str(SHIPPED_PHOTO), None, False, "NASA astronaut portrait (public domain)"]]
    w300 = SHARED / "data" / "300w"
    for rel in ("helen/testset/296961468_1.jpg", "helen/testset/2968784797_1.jpg"):   # Haar finds no false face
        p = w300 / rel
        if not p.is_file():
            cands = sorted((w300 / Path(rel).parent).glob("*.jpg")) + sorted((w300 / Path(rel).parent).glob("*.png")) \
                if (w300 / Path(rel).parent).is_dir() else []
            p = next((c for c in cands if c.with_suffix(".pts").is_file() and str(c) not in
                      [r[0] for r in rows]), None)
        if p is not None and p.with_suffix(".pts").is_file() and str(p) not in [r[0] for r in rows]:
            rows.append([str(p), [str(p.with_suffix(".pts"))], False, f"300-W {Path(rel).parts[0]} · {p.name} (+ .pts)"])
    crowd = _wflw_crowd_photo()
    if crowd is not None:
        rows.append([str(crowd), None, False, f"WFLW crowd · {crowd.name}"])
    return rows


def _wflw_crowd_photo() -> Path | None:
    """The first WFLW test photo with three or more labelled faces, if ../shared holds WFLW."""
    lst = SHARED / "data" / "wflw" / "WFLW_annotations" / "list_98pt_test.txt"
    try:
        counts: dict[str, int] = {}
        for line in lst.read_text().splitlines():
            parts = line.split()
            if parts:
                counts[parts[-1]] = counts.get(parts[-1], 0) + 1
    except OSError:
        return None
    for rel, n in counts.items():
        p = SHARED / "data" / "wflw" / "WFLW_images" / rel
        if n >= 3 and p.is_file():
            return p
    return None


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, **kwargs: Any):
    """Queue (bounded concurrency) and serve. Env: SPACE_CONCURRENCY (default 2), SPACE_QUEUE_SIZE (64).
    Each request's models get cores / SPACE_CONCURRENCY threads: more would spin-wait against the other
    request's threads and invert the timings the Space shows (zoo.cpu.default_threads)."""
    concurrency = int(os.environ.get("SPACE_CONCURRENCY", "2"))
    configure(default_threads(concurrency))
    demo.queue(default_concurrency_limit=concurrency, max_size=int(os.environ.get("SPACE_QUEUE_SIZE", "64")))
    kwargs.setdefault("max_file_size", os.environ.get("SPACE_MAX_FILE_SIZE", "25mb"))
    kwargs.setdefault("ssr_mode", False)
    kwargs.setdefault("show_error", False)
    kwargs.setdefault("allowed_paths", [str(SHARED / "data")] if SHARED.is_dir() else [])
    return demo.launch(server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                       server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                       theme=theme(), css=CSS, **kwargs)
