"""The Space, served in-process on 127.0.0.1 and driven through gradio_client like any API user.

Models are the two test models of space_fixtures: the bundled trained weights when present (then the
landmarks are checked against the library's on a real photo), else random-init ones (shapes, fields and
messages only).
"""
from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from space_fixtures import (TEST_MODELS, blank_photo, huge_png_header, real_300w_sample,  # noqa: E402
                            space_app, space_models, synthetic_photo, truncated_jpeg, write_pts)

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

__all__ = ["space_app", "space_models"]          # fixtures used by name below
STAGES = ("detect", "preprocess", "model", "decode", "total")
ROOT = Path(__file__).resolve().parents[1]
PARITY_PHOTO = "296814969_3.jpg"                 # the photo: the Space once cropped it worse than the library


@pytest.fixture(scope="module")
def client(space_app, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(space_app.url, analytics_enabled=False, verbose=False,
                  download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The drawn face and its 68-point ground truth (.pts)."""
    d = tmp_path_factory.mktemp("inputs")
    img, pts = synthetic_photo(d / "drawn.png")
    return img, write_pts(d / "drawn.pts", pts)


def compare(client: Client, image: Path, gt: list[Path] | None = None, models=TEST_MODELS, detector="haar",
            whole=False, backend="torch", more: list[Path] | None = None, **options):
    """(the endpoint's outputs, the parsed JSON download: always the first output)."""
    out = client.predict(image=handle_file(str(image)),
                         more_images=[handle_file(str(p)) for p in more] if more else None,
                         ground_truth=[handle_file(str(p)) for p in gt] if gt else None,
                         models=list(models), detector=detector, backend=backend, whole_image=whole,
                         **options, api_name="/compare")
    return out, json.loads(Path(out[0]).read_text())


def _real_weights(names=TEST_MODELS) -> bool:
    from zoo import registry
    from zoo.hub import local_weights

    return all(registry.get(n).published and local_weights(registry.get(n)) is not None for n in names)


# ------------------------------------------------------------------------------------------ offline
def test_available_models_lists_local_weights_only(space_models):
    from zoo import registry
    from zoo.hub import local_weights

    from space.models import available_detectors, available_models, available_space_peers

    names = available_models()
    for n in TEST_MODELS:
        assert n in names
    for n in registry.list_models(kind="landmarker"):
        e = registry.get(n)
        if n not in names:
            assert local_weights(e) is None and not e.published
    assert "haar" in available_detectors()
    assert names[-len(available_space_peers()) or len(names):] == available_space_peers()


def test_availability_is_offline_and_respects_hf_hub_offline(space_models, monkeypatch):
    """A published entry counts as available (fetched on first use) unless HF_HUB_OFFLINE is set and it is
    not in the HF cache; nothing is downloaded to decide."""
    from dataclasses import replace

    from zoo import registry

    from space.models import available_models, is_available

    name = "pipnet_r101_wflw"
    entry = registry.get(name)
    published = replace(entry, status="published", hub=replace(entry.hub, revision="0" * 40, sha256="0" * 64))
    monkeypatch.setitem(registry.entries(), name, published)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert is_available(published) and name in available_models()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not is_available(published) and name not in available_models()


def test_model_cache_is_bounded(space_models):
    from space.models import ModelCache

    cache = ModelCache(max_models=1, max_bytes=None, warmup=False)
    cache.get(TEST_MODELS[0])
    cache.get(TEST_MODELS[0])
    assert cache.loads == 1
    cache.get(TEST_MODELS[1])
    assert cache.keys() == [(TEST_MODELS[1], "torch")] and cache.loads == 2
    small = ModelCache(max_models=4, max_bytes=1, warmup=False)      # over the byte budget: keeps the newest
    small.get(TEST_MODELS[0])
    small.get(TEST_MODELS[1])
    assert small.keys() == [(TEST_MODELS[1], "torch")]


def test_ground_truth_formats_and_pairing(tmp_path):
    from zoo.registry import ZooError

    from space.compare import InputImage, pair_ground_truth, read_ground_truth

    one = tmp_path / "a.json"
    one.write_text(json.dumps([[1, 2], [3, 4], [5, 6]]))
    two = tmp_path / "b.json"
    two.write_text(json.dumps({"landmarks": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}))
    pts = write_pts(tmp_path / "c.pts", np.array([[10.0, 20.0], [30.0, 40.0]]))
    assert [f.shape for f in read_ground_truth(one)] == [(3, 2)]
    assert [f.shape for f in read_ground_truth(two)] == [(2, 2), (2, 2)]
    assert np.allclose(read_ground_truth(pts)[0], [[10, 20], [30, 40]], atol=1e-3)     # .pts is 1-based
    bad = tmp_path / "d.txt"
    bad.write_text("1 2")
    with pytest.raises(ZooError, match="d.txt: ground truth must be"):
        read_ground_truth(bad)
    ims = [InputImage(n, np.zeros((20, 20, 3), np.uint8), scale=0.5) for n in ("a.jpg", "c.png", "x.jpg")]
    warnings = pair_ground_truth(ims, [("a.json", read_ground_truth(one)), ("c.pts", read_ground_truth(pts)),
                                       ("zzz.json", read_ground_truth(one))])
    assert [im.gt_name for im in ims] == ["a.json", "c.pts", None]
    assert np.allclose(ims[1].gt[0], [[5, 10], [15, 20]], atol=1e-3)                  # to processed pixels
    assert warnings == ["zzz.json: no uploaded photo named zzz.*; ground truth ignored"]


def test_activity_notes_overlapping_comparisons():
    from space.compare import Activity

    act = Activity()
    with act.track() as first:
        assert first() == 0
        with act.track() as second:
            assert second() == 1 and act.running() == 2
        assert first() == 1                       # the other one ran while this one did: its timings say so
    with act.track() as alone:
        assert alone() == 0


def test_render_colours_and_text():
    """One colour per model in pictures, table and chart; text through a TrueType font (no '?' glyphs)."""
    from PIL import ImageFont

    from space import render
    from space.app import leaderboard_frame

    assert isinstance(render.font(18), ImageFont.FreeTypeFont)
    strip = render.legend([render.Layer("a", [], None, render.model_color(0)),       # type: ignore[arg-type]
                           render.Layer("b", [], None, render.model_color(1))], 400, "photo · 1")
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    assert render.model_color(0) in colours and render.model_color(1) in colours
    rows = [{"model": m, "color": render.hex_color(render.model_color(i)), "points": 68, "params_m": p,
             "size_mb": 1.0, "benchmark_nme_pct": None, "your_nme_pct": None, "model_ms": ms, "model_ms_min": ms,
             "model_ms_max": ms, "detect_ms": 5.0, "fps": 1000 / (ms + 5)}
            for i, (m, p, ms) in enumerate([("a", 12.0, 40.0), ("b", 4.0, 15.0)])]
    import gradio as gr

    table = gr.Dataframe().postprocess(leaderboard_frame(rows))          # what the page receives
    style = table.metadata["styling"]
    assert "#e69f00" in style[0][0] and "#0072b2" in style[1][0]           # the models' colours
    assert "Params (M)" in table.headers and "params_m" not in table.headers   # readable headers
    best = [table.headers[j] for j, css in enumerate(style[1]) if "c8f0c8" in css]
    assert best == ["Params (M)", "Model ms (median)", "FPS (with detection)"] and "c8f0c8" not in str(style[0])


def test_examples_point_at_shared_or_fall_back(monkeypatch, tmp_path):
    from space import app

    monkeypatch.setattr(app, "SHARED", tmp_path / "nothing_here")
    monkeypatch.setattr(app, "WORK_DIR", tmp_path / "work")
    rows = app.example_rows()
    assert len(rows) == 1 and rows[0][0] == str(app.SHIPPED_PHOTO) and Path(rows[0][0]).is_file()   # shipped
    assert rows[0][1] is None and rows[0][2] is False
    if real_300w_sample() is not None:
        monkeypatch.setattr(app, "SHARED", Path(real_300w_sample()[0]).parents[4])
        rows = app.example_rows()
        assert rows[0][0] == str(app.SHIPPED_PHOTO)
        assert rows[1][0].endswith(".jpg") and rows[1][1][0].endswith(".pts") and rows[1][2] is False
        assert all(str(app.SHARED) in r[0] for r in rows[1:])            # read in place, never copied


def test_title_agrees_with_readme():
    from space.app import TITLE

    readme = (ROOT / "README.md").read_text()
    front = re.search(r"^title:\s*(.+)$", readme, re.M).group(1).strip()
    heading = re.search(r"^# (.+)$", readme, re.M).group(1).strip()
    assert front == heading == TITLE


# ------------------------------------------------------------------------------------------ the API
def test_compare_two_models(client, photo):
    out, data = compare(client, photo[0], gt=[photo[1]], whole=True)
    status, panel, leaderboard, chart, grid = out[1], out[2], out[3], out[4], out[5]
    assert "timed run" in status and "whiskers" in status
    assert data["hardware_line"] and "thread" in data["hardware_line"]
    for pic in (panel, chart, grid):
        assert Path(pic).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["models"] == list(TEST_MODELS) and data["hardware"]["cpus"] >= 1
    (image,) = data["images"]
    assert image["name"] == "drawn.png" and (image["width"], image["height"]) == (384, 384)
    for m in TEST_MODELS:
        res = image["results"][m]
        assert len(res["faces"]) == 1
        face = res["faces"][0]
        assert np.asarray(face["landmarks"]).shape == (68, 2) and len(face["box"]) == 4
        assert set(STAGES) <= set(res["timings_ms"]) and res["timings_ms"]["total"] > 0
        assert len(res["landmark_ms_runs"]) == data["repeats"] == 3           # timed repeats, all reported
    rows = {r["model"]: r for r in data["timings"]}
    assert set(rows) == set(TEST_MODELS)
    for r in rows.values():
        assert r["total_ms"] > 0 and r["fps"] > 0 and r["faces"] == 1
        assert r["landmark_ms_min"] <= r["landmark_ms"] <= r["landmark_ms_max"]
    board = {r["model"]: r for r in data["leaderboard"]}
    assert [board[m]["color"] for m in TEST_MODELS] == [data["colors"][m] for m in TEST_MODELS]
    assert len(set(data["colors"].values())) == 2
    assert all(board[m]["your_nme_pct"] is not None and board[m]["params_m"] > 0 for m in TEST_MODELS)
    assert leaderboard["headers"][:2] == ["Model", "Params (M)"] and len(leaderboard["data"]) == 2
    nmes = [r["nme_pct"] for r in data["accuracy"]]
    assert len(nmes) == 2 and all(math.isfinite(v) and v >= 0 for v in nmes)
    assert len(out[8]) == 2                                          # error pictures, one per model
    assert len(out[9]) == 3 and all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out[9])
    assert "### pipnet_mbv2_300w" in out[10] and "Licence" in out[10]


@pytest.mark.skipif(real_300w_sample(PARITY_PHOTO) is None, reason="../shared/data/300w not present")
@pytest.mark.parametrize("detector", ["haar", "default"])
def test_same_landmarks_as_the_library(client, space_app, detector):
    """The Space detects once and passes the boxes with the detector's crop rule: every model's landmarks
    are the library's own `lm(photo)` on the same photo (Haar: the issue's case; and the Space's default
    detector, which is the library's detector="auto"), and so is its NME."""
    import zoo

    img, pts = real_300w_sample(PARITY_PHOTO)
    default = space_app.demo.handlers.dets_here[0]
    _, data = compare(client, img, gt=[pts], repeats=1, detector=default if detector == "default" else detector)
    (image,) = data["images"]
    for m in TEST_MODELS:
        lib = zoo.load(m, detector="auto" if detector == "default" else detector)
        faces = lib(str(img))
        assert lib.detector.name == data["detector"]
        got = image["results"][m]["faces"]
        assert len(got) == len(faces) >= 1
        for g, f in zip(got, faces):
            assert np.allclose(g["box"], f.box, atol=0.01)
            assert np.allclose(g["landmarks"], f.landmarks, atol=0.01)
    if _real_weights() and detector == "haar":       # the numbers: the library's 2.74% / 3.36%
        board = {r["model"]: r["your_nme_pct"] for r in data["leaderboard"]}
        assert board["pipnet_r18_300w"] < 3.0 and board["pipnet_mbv2_300w"] < 3.6


def test_disagreement_without_ground_truth(client, photo):
    _, data = compare(client, photo[0], whole=True, repeats=1)
    assert data["accuracy"] == []
    (row,) = data["disagreement"]
    assert {row["model_a"], row["model_b"]} == set(TEST_MODELS) and row["scheme"] == "68"
    assert math.isfinite(row["disagreement_pct"])


def test_too_many_photos_are_reported(client, tmp_path):
    """10 photos through the API: 8 are compared, and the JSON's warnings and the status say so."""
    photos = [synthetic_photo(tmp_path / f"face_{i:02d}.png", size=96)[0] for i in range(10)]
    out, data = compare(client, photos[0], more=photos[1:], models=TEST_MODELS[1:], whole=True, repeats=1)
    assert len(data["images"]) == 8
    (warning,) = [w for w in data["warnings"] if "photos given" in w]
    assert "10 photos given: only the first 8" in warning and "face_08.png" in warning
    assert "10 photos given" in out[1]


def test_detector_controls(client, space_app):
    """At most N faces, and a minimum score, on a crowd photo (the app's first example with several faces)."""
    from space.app import _wflw_crowd_photo

    crowd = _wflw_crowd_photo()
    if crowd is None:
        pytest.skip("no WFLW crowd photo in ../shared")
    det = space_app.demo.handlers.dets_here[0]
    _, all_faces = compare(client, crowd, models=TEST_MODELS[:1], repeats=1, detector=det)
    found = len(all_faces["images"][0]["boxes"])
    if found < 2:
        pytest.skip(f"{det} finds {found} face(s) in {crowd.name}")
    _, one = compare(client, crowd, models=TEST_MODELS[:1], repeats=1, max_faces=1, detector=det)
    assert len(one["images"][0]["boxes"]) == 1 and one["max_faces"] == 1
    assert any(f"{found} face(s) found, 1 compared" in w for w in one["warnings"])
    scores = sorted(f["score"] for f in all_faces["images"][0]["results"][TEST_MODELS[0]]["faces"])
    cut = (scores[0] + scores[-1]) / 2
    _, strict = compare(client, crowd, models=TEST_MODELS[:1], repeats=1, score_threshold=round(cut, 3), detector=det)
    kept = [f["score"] for f in strict["images"][0]["results"][TEST_MODELS[0]]["faces"]]
    assert kept and all(s >= round(cut, 3) for s in kept) and len(kept) < found


def test_peers_beside_zoo_models(client, space_models):
    """dlib on its own HOG detector and PFLD-GhostOne (98 points, scored on 68-point truth through the point
    map) next to a zoo model, when this machine has them."""
    from space.models import available_space_peers

    peers = available_space_peers()
    if not peers:
        pytest.skip("no peer usable here (dlib / PFLD-GhostOne file)")
    sample = real_300w_sample(PARITY_PHOTO)
    if sample is None:
        pytest.skip("../shared/data/300w not present")
    img, pts = sample
    out, data = compare(client, img, gt=[pts], models=[TEST_MODELS[0], *peers], repeats=1)
    res = data["images"][0]["results"]
    if "dlib" in peers:
        assert res["dlib"]["own_detector"] is True and res["dlib"]["timings_ms"]["detect"] > 0
        assert "own detector" in out[1]
    if "pfld_ghostone" in peers:
        assert np.asarray(res["pfld_ghostone"]["faces"][0]["landmarks"]).shape == (98, 2)
    scored = {r["model"] for r in data["accuracy"] if r["nme_pct"] is not None}
    assert set(peers) <= scored
    assert all(r["your_nme_pct"] < 10 for r in data["leaderboard"] if r["model"] in peers)
    assert {r["model_b"] for r in data["disagreement"]} >= set(peers)


def test_no_face_warns_and_returns_empty_result(client, tmp_path):
    out, data = compare(client, blank_photo(tmp_path / "wall.png"), repeats=1)
    assert any("no face found in wall.png" in w for w in data["warnings"])
    assert data["images"][0]["results"] == {} and data["timings"] == []
    assert "no face found" in out[1]


def _bad_inputs(tmp: Path, photo: tuple[Path, Path]):
    text = tmp / "notes.jpg"
    text.write_text("these are not pixels\n")
    wrong_pts = write_pts(tmp / "drawn.pts", np.random.default_rng(0).uniform(10, 300, (10, 2)))
    bad_json = tmp / "gt.json"
    bad_json.write_text("[[1, 2], [3,")
    return {
        "non-image": (dict(image=text), "notes.jpg: not an image file"),
        "truncated jpeg": (dict(image=truncated_jpeg(tmp / "cut.jpg")), "cut.jpg: unreadable or truncated image"),
        "huge png": (dict(image=huge_png_header(tmp / "huge.png")), "huge.png: image too large"),
        "wrong pts": (dict(image=photo[0], gt=[wrong_pts], whole=True), "drawn.pts: ground truth has 10 points"),
        "bad json": (dict(image=photo[0], gt=[bad_json], whole=True), "gt.json: not valid JSON"),
        "no model": (dict(image=photo[0], models=[]), "pick at least one model"),
        "unknown model": (dict(image=photo[0], models=["pipnet_nope"]), "not available here: pipnet_nope"),
        "bad threshold": (dict(image=photo[0], score_threshold=2.0), "score threshold must be between 0 and 1"),
    }


@pytest.mark.parametrize("case", ["non-image", "truncated jpeg", "huge png", "wrong pts", "bad json", "no model",
                                  "unknown model", "bad threshold"])
def test_bad_input_gives_readable_error(client, photo, tmp_path, case):
    kwargs, message = _bad_inputs(tmp_path, photo)[case]
    with pytest.raises(AppError) as err:
        compare(client, **kwargs)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


def test_fuzzed_images_through_the_api(client, tmp_path):
    """Seeded broken files (tests/fuzz_images.py: random bytes, truncated / bit-flipped JPEG PNG WebP ..., huge
    declared sizes) sent to /compare: each gives a result or a readable error naming the file, quickly."""
    from fuzz_images import fuzz_cases, write_cases

    paths = write_cases(tmp_path, fuzz_cases(n=8, seed=1))     # 34 fixed cases + 8 seeded random ones
    jobs = []
    for path in paths:                        # all queued at once: the server's queue works through them
        jobs.append((path, time.perf_counter(), client.submit(
            image=handle_file(str(path)), more_images=None, ground_truth=None, models=[TEST_MODELS[0]],
            detector="haar", backend="torch", whole_image=True, repeats=1, api_name="/compare")))
    results = []
    for path, t0, job in jobs:
        try:
            job.result(timeout=60)
            outcome = "ok"
        except AppError as e:
            outcome = str(e)
        results.append((path, outcome, time.perf_counter() - t0))
    assert len(results) >= 40
    for path, outcome, seconds in results:
        assert seconds < 60, f"{path.name} took {seconds:.1f} s (queued behind the others)"
        if outcome != "ok":
            assert path.name in outcome, f"{path.name}: {outcome}"
            assert "internal error" not in outcome and "Traceback" not in outcome, outcome
    assert any(o == "ok" for _, o, _ in results) and any(o != "ok" for _, o, _ in results)
    test_cards_endpoint(client)                                     # still serving


def test_optional_inputs_are_optional_in_the_api(client):
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/compare"]
    params = {p["parameter_name"]: p for p in info["parameters"]}
    assert not params["image"]["parameter_has_default"]
    for name in ("more_images", "ground_truth", "whole_image", "score_threshold", "max_faces", "repeats"):
        assert params[name]["parameter_has_default"], name
    assert params["repeats"]["parameter_default"] == 3


def test_still_serving_after_errors(client, photo):
    _, data = compare(client, photo[0], whole=True, models=TEST_MODELS[1:], repeats=1)
    assert len(data["images"][0]["results"][TEST_MODELS[1]]["faces"]) == 1


def test_cards_endpoint(client):
    md = client.predict(list(TEST_MODELS), api_name="/cards")
    assert all(f"### {m}" in md for m in TEST_MODELS) and "Input:** 256×256" in md


def test_page_opens_on_an_example_result(space_app):
    """The first example is computed at start-up; the page's load event shows it with its photo."""
    h = space_app.demo.handlers
    assert h.precomputed.wait(120)
    photo, gt, json_file, status, panel, *_ = h.initial()
    assert photo == h.examples[0][0] and Path(json_file).is_file() and Path(panel).is_file()
    assert status.startswith("✔") and "computed once" in status


def test_ui_compare_reports_errors_inline(space_app, photo):
    """The page's Compare shows an error next to the button and clears the old result."""
    out = space_app.demo.handlers.compare_ui({"path": str(photo[0]), "orig_name": "drawn.png"}, None, None, [],
                                             "haar", "torch", True, 0.0, 8, 1, progress=lambda *a, **k: None)
    assert out[0] is None and out[2] is None and "pick at least one model" in out[1] and out[1].startswith("✖")


def test_live_frame_handler(space_app):
    """The webcam stream's handler (gradio_client cannot drive streaming inputs): a frame in, the same drawing
    as the Compare tab out, with its caption under the picture (not under the panel's label)."""
    from space.render import synthetic_face

    live = space_app.demo.handlers.live
    frame = synthetic_face(480)[0]
    out, state = live(frame, TEST_MODELS[0], "haar", "torch", True)
    assert out.shape[1] == frame.shape[1] and out.shape[0] > frame.shape[0] and state is None   # no tracking
    assert not np.array_equal(out[:frame.shape[0]], frame)
    assert np.array_equal(out[:8, :8], frame[:8, :8])               # the top-left corner stays the photo
    assert out[frame.shape[0]:].mean() < 60                         # the caption band: dark, below the photo
    assert live(None, TEST_MODELS[0], "haar", "torch", True) == (None, None)
    assert live(frame, "no_such_model", "haar", "torch", True)[0].shape[1] == frame.shape[1]


def test_live_tab_tracks_the_face_between_frames(space_app):
    """A moving clip of the shipped photo through the stream handler: the session's tracker follows the face,
    so the detector runs on a few frames only, and every frame gets the face's landmarks."""
    import zoo
    from space.app import SHIPPED_PHOTO
    from zoo.images import load_image
    from zoo.track import moving_face_clip

    img = load_image(SHIPPED_PHOTO)
    truth = zoo.load(TEST_MODELS[0], detector="haar")(img)[0].landmarks
    clip, _ = moving_face_clip(img, truth, n_frames=12, size=(480, 360))
    live, state, outs = space_app.demo.handlers.live, None, []
    for frame in clip:
        out, state = live(frame, TEST_MODELS[0], "haar", "torch", False, state)
        outs.append(out)
    stats = state["tracker"].stats
    assert stats["frames"] == 12 and 1 <= stats["detections"] <= 3, stats
    assert all(o.shape[1] == 480 and o.shape[0] > 360 for o in outs)
    _, other = live(clip[0], TEST_MODELS[0], "haar", "onnx", False, state)
    assert other["tracker"] is not state["tracker"]                 # a new choice starts a new track


def test_page_makes_no_font_requests_elsewhere(space_app):
    css = urllib.request.urlopen(space_app.url.rstrip("/") + "/theme.css", timeout=10).read().decode()
    assert "fonts.googleapis" not in css and "ui-sans-serif" in css
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
    page = urllib.request.urlopen(space_app.url, timeout=10).read().decode()
    from space.app import TITLE

    assert f"<title>{TITLE}</title>" in page or TITLE in page
