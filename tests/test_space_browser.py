"""The Space in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium, `apt-get install -y
chromium`; no browser download) headless with a fresh profile, on a desktop and on a phone-sized viewport.
The page opens on an example's result; a photo is uploaded and compared; a mistake shows inline.

Screenshots go to artifacts/ (or $SPACE_SCREENSHOT_DIR): the README's docs/space_desktop.png and
docs/space_phone.png are made by `SPACE_SCREENSHOT_DIR=docs python -m pytest tests/test_space_browser.py`.
Skipped when playwright or the chromium binary is missing.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from space_fixtures import (TEST_MODELS, real_300w_sample, space_app, space_models,  # noqa: E402
                            synthetic_photo, write_pts)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / os.environ.get("SPACE_SCREENSHOT_DIR", "artifacts")
PHOTO = "296814969_3.jpg"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason=f"{CHROMIUM} not found (apt-get install -y chromium)")
sync_api = pytest.importorskip("playwright.sync_api")
__all__ = ["space_app", "space_models"]


@pytest.fixture(scope="module")
def pw():
    """One Playwright per module: a second sync_playwright() inside the first one's loop is refused."""
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                args=ARGS, viewport={"width": 1440, "height": 1000})
    yield ctx
    ctx.close()


def _open(ctx, url: str, **viewport):
    pg = ctx.new_page()
    if viewport:
        pg.set_viewport_size(viewport)
    pg.requests = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.set_default_timeout(90_000)
    pg.goto(url, wait_until="domcontentloaded")
    pg.locator("#run").wait_for()
    return pg


def _wait_result(pg) -> None:
    """The status says done, the overlay picture and the leaderboard are filled, every image has loaded."""
    pg.wait_for_function("() => (document.querySelector('#status') || {}).innerText?.includes('✔')")
    pg.locator("#panel img").first.wait_for()
    pg.wait_for_function("names => names.some(n => document.querySelector('#leaderboard').innerText.includes(n))",
                         arg=list(TEST_MODELS))
    for sel in ("#panel", "#chart", "#grid"):               # images load lazily: bring each into view
        pg.locator(f"{sel} img").first.scroll_into_view_if_needed()
        pg.wait_for_function("sel => [...document.querySelectorAll(sel + ' img')].every("
                             "i => i.complete && i.naturalWidth > 0)", arg=sel)
    pg.evaluate("window.scrollTo(0, 0)")


def _shot(pg, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    pg.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 50_000
    return path


def _no_other_hosts(pg, url: str) -> None:
    here = urlparse(url).netloc
    elsewhere = [u for u in pg.requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                 and urlparse(u).netloc != here]
    assert elsewhere == [], f"the page fetched from other hosts: {elsewhere[:5]}"


def _inputs(tmp: Path) -> tuple[Path, Path, bool]:
    """The issue's 300-W test photo and its .pts when ../shared has them, else the drawn face (whole image)."""
    sample = real_300w_sample(PHOTO)
    if sample is not None:
        return sample[0], sample[1], False
    img, pts = synthetic_photo(tmp / "drawn.png")
    return img, write_pts(tmp / "drawn.pts", pts), True


def test_page_opens_on_a_result_and_compares_an_upload(browser, space_app, tmp_path):
    pg = _open(browser, space_app.url)
    _wait_result(pg)                                          # the first example's result, shown at once
    assert "computed once" in pg.locator("#status").inner_text()
    assert pg.title() == "Facial landmark zoo"

    image, pts, whole = _inputs(tmp_path)
    pg.locator("#photo input[type=file]").set_input_files(str(image))
    pg.wait_for_function("() => document.querySelector('#status').innerText.includes('Press Compare')")
    assert pg.locator("#panel img").count() == 0              # the old result is gone with the new photo
    pg.get_by_text("More photos and ground truth").click()
    pg.locator("#ground_truth input[type=file]").set_input_files(str(pts))
    if whole:
        pg.get_by_text("Face detector, backend and timing").click()
        pg.locator("#whole_image input[type=checkbox]").check()
    from space.models import available_space_peers

    chosen = [*TEST_MODELS, *available_space_peers()][:4]           # the peers too, when this machine has them
    _check_models(pg, chosen)
    pg.locator("#run").click()
    _wait_result(pg)
    board = pg.locator("#leaderboard").inner_text()
    assert all(m in board for m in chosen) and "NME % on your photos" in board
    assert "computed once" not in pg.locator("#status").inner_text()
    assert pg.locator(".toast-body.error").count() == 0
    _no_other_hosts(pg, space_app.url)
    pg.close()


def _check_models(pg, names) -> None:
    from space.app import _model_label

    models = pg.locator("#models")
    for box in models.locator("input[type=checkbox]").all():
        box.uncheck()
    for name in names:
        models.get_by_label(_model_label(name), exact=True).check()


def test_desktop_screenshot_of_the_shipped_photo(browser, space_app):
    """The README's picture: the public-domain example (never a ../shared photo) with up to four models."""
    from space.models import available_space_peers

    pg = _open(browser, space_app.url)
    _wait_result(pg)                                          # opens on the shipped photo's result
    _check_models(pg, [*TEST_MODELS, *available_space_peers()][:4])
    pg.locator("#run").click()
    _wait_result(pg)
    _shot(pg, "space_desktop.png")
    pg.close()


def test_phone_layout(browser, space_app):
    """On a phone the result sits right under the Compare button and the table stays readable."""
    pg = _open(browser, space_app.url, width=390, height=844)
    _wait_result(pg)
    run = pg.locator("#run").bounding_box()
    panel = pg.locator("#panel").bounding_box()
    assert panel["y"] > run["y"] and panel["y"] - (run["y"] + run["height"]) < 700, (run, panel)
    assert panel["width"] <= 390
    size = pg.locator("#leaderboard").get_by_text(TEST_MODELS[0]).first.evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 13
    _shot(pg, "space_phone.png")
    _no_other_hosts(pg, space_app.url)
    pg.close()


def test_error_reaches_the_visitor_inline(browser, space_app):
    """No model picked: a readable message next to the button, no stale result, and the page still works."""
    pg = _open(browser, space_app.url)
    _wait_result(pg)
    models = pg.locator("#models")
    for box in models.locator("input[type=checkbox]").all():
        box.uncheck()
    pg.locator("#run").click()
    pg.locator("#status").get_by_text("pick at least one model").wait_for()
    assert pg.locator("#panel img").count() == 0
    assert "Traceback" not in pg.content()
    models.get_by_label(TEST_MODELS[0], exact=True).check()
    pg.get_by_text("Model cards").click()
    pg.locator("#cards").get_by_text(TEST_MODELS[0]).first.wait_for()
    pg.close()


# ------------------------------------------------------------------------------------------- live tab
def _y4m_clip(path: Path, frames: int = 20) -> Path:
    """A short clip Chromium's fake camera can play: the shipped photo panned a little, as 4:2:0 Y4M."""
    import cv2
    import numpy as np

    img = cv2.imread(str(ROOT / "space" / "examples" / "astronaut.jpg"))
    h, w = 360, 480
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            m = np.float32([[0.9, 0, 10 + 2 * i], [0, 0.9, -20]])
            frame = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
            yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
            f.write(b"FRAME\n" + yuv.tobytes())
    return path


def test_live_tab_draws_frames_in_the_page(pw, space_app, tmp_path):
    """The webcam tab in a real browser with a fake camera fed a real clip: drawn frames arrive in the page
    (not only on the server), the caption fits the frame, and the stream leaves no pile of files behind."""
    clip = _y4m_clip(tmp_path / "clip.y4m")
    args = [*ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"]
    ctx = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                headless=True, args=args, viewport={"width": 1280, "height": 900})
    ctx.grant_permissions(["camera"])
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    # The in-browser tab, served by the Space itself: onnxruntime-web, the graphs and config.json load from
    # this server (Gradio's file route), the camera's frames are tracked and drawn inside the page. Its own
    # page, closed before the server stream starts (its wasm would compete for the CPU).
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(space_app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Live in your browser").click()
    frame = page.frame_locator("#browser_live")
    frame.locator("#start").wait_for()
    inner = next(f for f in page.frames if "live.html" in f.url)
    inner.wait_for_function("() => window.zooReady || window.zooError")
    assert inner.evaluate("window.zooError || null") is None
    frame.locator("#start").click()
    inner.wait_for_function("() => window.zooStats().frames >= 10 && window.zooStats().last")
    assert "FPS" in frame.locator("#stats").inner_text()
    if os.environ.get("SPACE_SCREENSHOT_DIR"):
        _shot(page, "space_browser_live.png", full_page=False)
        page.set_viewport_size({"width": 390, "height": 844})              # a phone: the view fits its width
        page.wait_for_timeout(500)
        _shot(page, "space_browser_live_phone.png", full_page=True)
    host = space_app.url.rstrip("/")
    assert [u for u in page.requests if not u.startswith((host, "data:", "blob:"))] == []
    page.close()

    pg.goto(space_app.url, wait_until="domcontentloaded")
    pg.get_by_role("tab", name="Live webcam").click()
    cam = pg.locator("#live_cam")
    cam.get_by_text("Click to Access Webcam").click()
    cam.locator("button.capture-button").click()          # Gradio's "start recording": streaming begins
    # Frames drawn by the server show up in the output pane: its picture changes, and it is taller than the
    # camera frame by the caption band (the whole caption, wrapped, fits under the picture).
    pg.wait_for_function("() => { const i = document.querySelector('#live_out img');"
                         " return i && i.complete && i.naturalWidth > 0; }")
    first = pg.locator("#live_out img").get_attribute("src")
    pg.wait_for_function("src => { const i = document.querySelector('#live_out img');"
                         " return i && i.src !== src && i.naturalWidth > 0; }", arg=first)
    size = pg.locator("#live_out img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert size[0] == 480 and size[1] > 360, size
    assert pg.locator("#live_out .eta-bar, #live_out .wrap.default .progress-text").count() == 0   # no spinner
    if os.environ.get("SPACE_SCREENSHOT_DIR"):
        _shot(pg, "space_live.png", full_page=False)
        pg.set_viewport_size({"width": 390, "height": 844})
        pg.locator("#live_out img").scroll_into_view_if_needed()
        _shot(pg, "space_live_phone.png", full_page=False)
    pg.close()
    ctx.close()
    from space.app import LIVE_FRAMES_KEPT

    live = next(b for b in space_app.demo.blocks.values() if getattr(b, "elem_id", None) == "live_out")
    assert 0 < len(live.frames) <= LIVE_FRAMES_KEPT                 # older frames were deleted from the cache
    assert all(Path(f).is_file() for f in live.frames)
