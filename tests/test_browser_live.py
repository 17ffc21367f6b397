"""The in-browser live view (space/static/live.js + onnxruntime-web) in Debian's Chromium, driven by Playwright:
a still photo through the page's pipeline gives zoo's landmarks (parity), and a fake camera fed a clip made
from a real 300-W photo is tracked and drawn in the page, with nothing fetched from outside the server.
The page is served here by a plain HTTP server on loopback; tests/test_space_browser.py opens it in the Space."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import zoo
from space import browser as live
from zoo.track import moving_face_clip

CHROMIUM = Path("/usr/bin/chromium")
SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTO = SHARED / "data" / "300w" / "helen" / "testset" / "296814969_3.jpg"
pytestmark = [pytest.mark.skipif(not CHROMIUM.is_file(), reason="chromium not installed"),
              pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/data/300w not present")]
sync_api = pytest.importorskip("playwright.sync_api")
MODEL = "pipnet_mbv2_300w"
PARITY_PX = 1.0     # mean landmark distance, browser vs zoo, pixels of a ~250-px face (measured 0.22 to 0.65)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The page, onnxruntime-web, the exported graph and config.json under one loopback HTTP server."""
    root = tmp_path_factory.mktemp("site")
    shutil.copyfile(PHOTO, root / "photo.jpg")
    from PIL import Image

    from train.rolled import roll_photo
    Image.fromarray(roll_photo(zoo.load_image(PHOTO), np.zeros((1, 2)), 45)[0]).save(root / "rolled.png")
    server, base, page_url = live.serve_site(root)
    yield root, base, page_url
    server.shutdown()


@pytest.fixture(scope="module")
def page(site, tmp_path_factory):
    root, url, page_url = site
    img = zoo.load_image(PHOTO)
    face = zoo.load(MODEL, detector="yunet")(img)[0]
    clip, _ = moving_face_clip(img, face.landmarks, n_frames=60, seed=0)
    video = root / "clip.y4m"
    live.write_y4m(video, clip)
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={video}", "--disable-background-networking"])
        pg = ctx.new_page()
        pg.requests = []
        pg.on("request", lambda r: pg.requests.append(r.url))
        pg.set_default_timeout(120_000)
        pg.goto(page_url, wait_until="domcontentloaded")
        pg.wait_for_function("() => window.zooReady || window.zooError")
        assert pg.evaluate("window.zooError || null") is None
        yield pg
        ctx.close()


@pytest.mark.parametrize("name", live.BROWSER_MODELS)
def test_a_photo_in_the_browser_gives_zoos_landmarks(page, name):
    got = page.evaluate(f"async () => await window.zooRunImage('/photo.jpg', '{name}')")
    ref = zoo.load(name, backend="onnx", detector="yunet")(PHOTO)
    assert len(got["faces"]) == len(ref) >= 1
    for g, r in zip(got["faces"], ref):
        pts = np.asarray(g["landmarks"])
        assert pts.shape == r.landmarks.shape
        assert np.abs(np.asarray(g["box"]) - r.box).max() < 4.0                    # YuNet on a browser-resized copy
        assert np.linalg.norm(pts - r.landmarks, axis=1).mean() < PARITY_PX
        if r.scores is not None:                                                # Face.scores, same calibration
            assert np.abs(np.asarray(g["scores"]) - r.scores).mean() < 0.05
    assert got["ms"]["model"] > 0


def test_the_fake_camera_is_tracked_and_drawn_in_the_page(page, site):
    _, url, _ = site
    page.select_option("#model", MODEL)
    page.click("#start")
    page.wait_for_function("() => window.zooStats().frames >= 40 && window.zooStats().last")
    stats = page.evaluate("window.zooStats()")
    assert stats["detections"] < stats["frames"] / 2                       # tracked, not detected every frame
    assert len(stats["last"]) == 68 and stats["fps"] > 1
    drawn = page.evaluate("""() => { const c = document.getElementById('view');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let green = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 180 && d[i] < 90 && d[i + 2] < 90) green++;
        return green; }""")
    assert drawn > 200                                                      # landmarks and contours on the frame
    assert "FPS" in page.inner_text("#stats")
    outside = [r for r in page.requests if not r.startswith(url) and not r.startswith(("data:", "blob:"))]
    assert outside == []


def test_a_rolled_face_is_levelled_in_the_browser_as_in_zoo(page, site):
    """The keypoints' roll, the rolled crop and the second pass from the landmarks' eye line, in the page."""
    root = site[0]
    got = page.evaluate(f"async () => await window.zooRunImage('/rolled.png', '{MODEL}')")
    ref = zoo.load(MODEL, backend="onnx", detector="yunet")(root / "rolled.png")
    assert len(got["faces"]) == len(ref) == 1 and abs(ref[0].roll) > np.radians(15)
    assert np.linalg.norm(np.asarray(got["faces"][0]["landmarks"]) - ref[0].landmarks, axis=1).mean() < PARITY_PX
