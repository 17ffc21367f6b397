"""The Space, served in-process on 127.0.0.1 and driven through gradio_client like any API user.

Models are the two test models of space_fixtures (random-init weights unless real ones are bundled), so
only shapes, fields and messages are checked here, never landmark quality.
"""
from __future__ import annotations

import json
import math
import os
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
            whole=False, backend="torch"):
    """(the endpoint's outputs, the parsed JSON download)."""
    out = client.predict(handle_file(str(image)), None, [handle_file(str(p)) for p in gt] if gt else None,
                         list(models), detector, backend, whole, api_name="/compare")
    return out, json.loads(Path(out[7]).read_text())


# ------------------------------------------------------------------------------------------ offline
def test_available_models_lists_local_weights_only(space_models):
    from zoo import registry

    from space.models import available_detectors, available_models
    from zoo.hub import local_weights

    names = available_models()
    for n in TEST_MODELS:
        assert n in names
    for n in registry.list_models(kind="landmarker"):
        e = registry.get(n)
        if n not in names:
            assert local_weights(e) is None and not e.published
    assert "haar" in available_detectors()


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


# ------------------------------------------------------------------------------------------ the API
def test_compare_two_models(client, photo):
    out, data = compare(client, photo[0], gt=[photo[1]], whole=True)
    gallery, summary, timing = out[0], out[1], out[2]
    assert len(gallery) == 2 and all(Path(g["image"]).is_file() for g in gallery)
    assert "Timings from:" in summary and "thread" in summary
    assert data["models"] == list(TEST_MODELS) and data["hardware"]["cpus"] >= 1
    (image,) = data["images"]
    assert image["name"] == "drawn.png" and (image["width"], image["height"]) == (384, 384)
    for m in TEST_MODELS:
        res = image["results"][m]
        assert len(res["faces"]) == 1
        face = res["faces"][0]
        assert np.asarray(face["landmarks"]).shape == (68, 2) and len(face["box"]) == 4
        assert set(STAGES) <= set(res["timings_ms"]) and res["timings_ms"]["total"] > 0
    rows = {r["model"]: r for r in data["timings"]}
    assert set(rows) == set(TEST_MODELS)
    for r in rows.values():
        assert r["total_ms"] > 0 and r["fps"] > 0 and r["faces"] == 1
    assert timing["headers"][:2] == ["model", "backend"] and len(timing["data"]) == 2
    nmes = [r["nme_pct"] for r in data["accuracy"]]
    assert len(nmes) == 2 and all(math.isfinite(v) and v >= 0 for v in nmes)
    assert len(out[6]) == 2                                          # error pictures, one per model
    assert len(out[8]) == 1 and Path(out[8][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "### pipnet_mbv2_300w" in out[9] and "Licence" in out[9]


def test_disagreement_without_ground_truth(client, photo):
    _, data = compare(client, photo[0], whole=True)
    assert data["accuracy"] == []
    (row,) = data["disagreement"]
    assert {row["model_a"], row["model_b"]} == set(TEST_MODELS) and row["scheme"] == "68"
    assert math.isfinite(row["disagreement_pct"])


@pytest.mark.skipif(real_300w_sample() is None, reason="../shared/data/300w not present")
def test_real_photo_with_detector_and_pts(client):
    img, pts = real_300w_sample()
    _, data = compare(client, img, gt=[pts], models=TEST_MODELS[:1])
    (image,) = data["images"]
    faces = image["results"][TEST_MODELS[0]]["faces"]
    assert len(faces) >= 1 and np.asarray(faces[0]["landmarks"]).shape == (68, 2)
    assert data["timings"][0]["detect_ms"] > 0
    (acc,) = data["accuracy"]
    assert acc["matched_face"] is not None and math.isfinite(acc["nme_pct"])


@pytest.mark.skipif(real_300w_sample() is None, reason="../shared/data/300w not present")
def test_faceboxes_detector(client):
    from space.models import available_detectors

    if "faceboxes_v2" not in available_detectors():
        pytest.skip("faceboxes_v2 weights do not resolve here")
    _, data = compare(client, real_300w_sample()[0], models=TEST_MODELS[:1], detector="faceboxes_v2")
    assert data["detector"] == "faceboxes_v2" and len(data["images"][0]["boxes"]) >= 1


def test_no_face_warns_and_returns_empty_result(client, tmp_path):
    out, data = compare(client, blank_photo(tmp_path / "wall.png"))
    assert any("no face found in wall.png" in w for w in data["warnings"])
    assert data["images"][0]["results"] == {} and data["timings"] == []
    assert len(out[0]) == 2                                          # the photo, un-annotated, per model
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
    }


@pytest.mark.parametrize("case", ["non-image", "truncated jpeg", "huge png", "wrong pts", "bad json", "no model",
                                  "unknown model"])
def test_bad_input_gives_readable_error(client, photo, tmp_path, case):
    kwargs, message = _bad_inputs(tmp_path, photo)[case]
    with pytest.raises(AppError) as err:
        compare(client, **kwargs)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


def test_still_serving_after_errors(client, photo):
    _, data = compare(client, photo[0], whole=True, models=TEST_MODELS[1:])
    assert len(data["images"][0]["results"][TEST_MODELS[1]]["faces"]) == 1


def test_cards_endpoint(client):
    md = client.predict(list(TEST_MODELS), api_name="/cards")
    assert all(f"### {m}" in md for m in TEST_MODELS) and "Input:** 256×256" in md


def test_live_frame_handler(space_app):
    """The webcam stream's handler (gradio_client cannot drive streaming inputs): a frame in, a frame out."""
    from space.render import synthetic_face

    live = space_app.demo.handlers.live
    frame = synthetic_face(480)[0]
    out = live(frame, TEST_MODELS[0], "haar", "torch", True)
    assert out.shape == frame.shape and not np.array_equal(out, frame)
    assert live(None, TEST_MODELS[0], "haar", "torch", True) is None
    assert live(frame, "no_such_model", "haar", "torch", True).shape == frame.shape


def test_page_makes_no_font_requests_elsewhere(space_app):
    css = urllib.request.urlopen(space_app.url.rstrip("/") + "/theme.css", timeout=10).read().decode()
    assert "fonts.googleapis" not in css and "ui-sans-serif" in css
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
