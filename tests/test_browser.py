"""The demo in a real browser (headless Chromium over DevTools, as `demo.screenshot` does):
a 600x800 photo with two faces upscaled x4 in the default "already low-resolution" mode,
and an error that stays on the page after a bad upload. One server for the module, on the
shipped checkpoints (the x4 test needs a real x4 model)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hub_models
from demo_files import EXAMPLES, two_face_photo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt-get install chromium)"),
    pytest.mark.skipif("rafsr-x4" not in hub_models.list_checkpoints(), reason="needs the shipped rafsr-x4"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import demo
    from demo import screenshot, whole

    old_budget, whole.MAX_SECONDS = whole.MAX_SECONDS, 1800.0  # the cap has its own test; here the full size
    app = demo.build_app()
    _, url, _ = demo.launch(app, server_port=screenshot.free_port(), prevent_thread_lock=True, quiet=True)
    browser = screenshot.Chromium(CHROMIUM, 1400, 1000)
    try:
        browser.open(url, 1400, 1000)
        assert browser.wait_for("document.querySelector('#run')", timeout=90), "the page did not load"
        yield browser, app, url
    finally:
        browser.close()
        app.close()
        whole.MAX_SECONDS = old_budget


def status(browser) -> str:
    return browser.js("document.querySelector('#status').innerText") or ""


INPUT_SRC = "(document.querySelector('#input-image img') || {}).src || ''"


def upload_and_run(browser, path: Path) -> None:
    """Choose `path` in the upload widget, wait until the page shows the new upload, press Upscale."""
    before = browser.js(INPUT_SRC)
    browser.upload("#input-image input[type=file]", path)
    assert browser.wait_for(f"(() => {{ const s = {INPUT_SRC}; return s && s !== {before!r}; }})()", timeout=30), \
        "the upload did not show"
    time.sleep(0.5)
    browser.js("document.querySelector('#run').click()")


def test_two_face_photo_is_upscaled_x4_whole_in_the_default_mode(page, tmp_path):
    browser, app, _ = page
    from hub_models import faces

    photo = two_face_photo(tmp_path / "two_faces.jpg")
    assert len(faces.detect_faces(np.asarray(Image.open(photo).convert("RGB")))) == 2
    assert app.zoo.default_model() == "rafsr-x4"  # best on every score of the shipped cards
    upload_and_run(browser, photo)
    assert browser.wait_for("document.querySelector('#status').innerText.includes('about')", timeout=60), status(browser)
    seen = status(browser)  # the estimate comes before the result
    assert "600×800 → 2400×3200 px" in seen and "⏳" in seen
    assert browser.wait_for("document.querySelector('#status').innerText.includes(' px in ')", timeout=400), status(browser)
    assert "RAFSR" in status(browser) and "600×800 → 2400×3200 px" in status(browser)
    assert browser.wait_for("(() => { const i = document.querySelector('#result img');"
                            " return i && i.complete && i.naturalWidth > 0; })()", timeout=60)
    size = browser.js("(() => { const i = document.querySelector('#result img');"
                      " return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [2400, 3200]


def test_error_stays_on_the_page_and_clears_the_old_result(page, tmp_path):
    browser, _, url = page
    upload_and_run(browser, EXAMPLES / "lowres_32px_201608.png")  # a result on the page first (32 -> 128 px)
    assert browser.wait_for("document.querySelector('#status').innerText.includes('32×32 → 128×128 px in')",
                            timeout=120), status(browser)
    assert browser.wait_for("Boolean(document.querySelector('#result img'))", timeout=30)
    bad = tmp_path / "holiday.png"
    bad.write_text("this is not an image\n" * 20)
    upload_and_run(browser, bad)
    assert browser.wait_for("document.querySelector('#status').innerText.includes('not an image')", timeout=60), \
        status(browser)
    time.sleep(20)
    assert "not an image" in status(browser) and "Cannot process this image" in status(browser)
    assert not browser.js("Boolean(document.querySelector('#result img'))")  # no stale result under the error
    import httpx

    assert httpx.get(url, timeout=30).status_code == 200  # the server is still serving
