"""The Space in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium, `apt-get install -y
chromium`; no browser download) headless with a fresh profile. Uploads a photo, picks models, compares,
waits for the annotated pictures and the timing table, and saves a screenshot to artifacts/.

Skipped when playwright or the chromium binary is missing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from space_fixtures import (TEST_MODELS, real_300w_sample, space_app, space_models,  # noqa: E402
                            synthetic_photo, write_pts)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason=f"{CHROMIUM} not found (apt-get install -y chromium)")
sync_api = pytest.importorskip("playwright.sync_api")
__all__ = ["space_app", "space_models"]


@pytest.fixture(scope="module")
def page(space_app, tmp_path_factory):
    """A page on the app in a fresh Chromium profile; records every request's URL."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                    args=ARGS, viewport={"width": 1400, "height": 1000})
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.requests = []
        pg.on("request", lambda r: pg.requests.append(r.url))
        pg.set_default_timeout(60_000)
        pg.goto(space_app.url, wait_until="domcontentloaded")
        pg.locator("#run").wait_for()
        yield pg
        ctx.close()


def _inputs(tmp: Path) -> tuple[Path, Path, bool]:
    """A real 300-W test photo and its .pts when ../shared has them, else the drawn face (whole image)."""
    sample = real_300w_sample()
    if sample is not None:
        return sample[0], sample[1], False
    img, pts = synthetic_photo(tmp / "drawn.png")
    return img, write_pts(tmp / "drawn.pts", pts), True


def test_compare_in_browser(page, space_app, tmp_path):
    image, pts, whole = _inputs(tmp_path)
    page.locator("#photo input[type=file]").set_input_files(str(image))
    page.locator("#ground_truth input[type=file]").set_input_files(str(pts))
    models = page.locator("#models")
    for box in models.locator("input[type=checkbox]").all():
        box.uncheck()
    for name in TEST_MODELS:
        models.get_by_label(name, exact=True).check()
    if whole:
        page.locator("#whole_image input[type=checkbox]").check()
    page.locator("#photo img").first.wait_for()               # the upload has landed
    page.locator("#run").click()

    page.locator("#gallery img").nth(len(TEST_MODELS) - 1).wait_for()
    page.wait_for_function("names => names.every(n => document.querySelector('#timing_table').innerText.includes(n))",
                           arg=list(TEST_MODELS))
    page.locator("#errors img").first.wait_for()
    page.locator("#json_file a, #json_file .file-preview").first.wait_for()
    assert "Timings from:" in page.locator("#summary").inner_text()
    assert page.locator(".toast-body.error").count() == 0

    for sel in ("#gallery", "#errors"):                   # galleries load lazily: bring them into view
        page.locator(sel).scroll_into_view_if_needed()
        page.wait_for_function("sel => [...document.querySelectorAll(sel + ' img')].every(i => i.complete && "
                               "i.naturalWidth > 0)", arg=sel)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "space_compare.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, tmp_path / shot.name)
    assert shot.stat().st_size > 50_000

    here = urlparse(space_app.url).netloc
    elsewhere = [u for u in page.requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                 and urlparse(u).netloc != here]
    assert elsewhere == [], f"the page fetched from other hosts: {elsewhere[:5]}"


def test_error_reaches_the_visitor(page):
    """No model picked: a readable error toast, and the page still works afterwards."""
    models = page.locator("#models")
    for box in models.locator("input[type=checkbox]").all():
        box.uncheck()
    page.locator("#run").click()
    toast = page.get_by_text("pick at least one model")
    toast.first.wait_for()
    assert "Traceback" not in page.content()
    models.get_by_label(TEST_MODELS[0], exact=True).check()
    page.locator("#cards").get_by_text(f"{TEST_MODELS[0]}").first.wait_for()
