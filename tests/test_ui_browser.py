"""The web UI in a real browser: Debian's chromium driven by playwright loads the page, uploads a tiny image,
runs a fit, sees the before/after slider and the metrics, and saves a screenshot; a bad upload shows a readable
message in the page. Skips (with the reason) where chromium or playwright is missing."""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("gradio")
from app.screenshot import (CHROMIUM, VIEWPORT, fit_in_browser, free_port, open_app,  # noqa: E402
                            open_browser, upload)

if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium; .ci/run does it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

from helpers import smooth_rgb  # noqa: E402
from PIL import Image  # noqa: E402

from inrcodec import Signal, save  # noqa: E402


@pytest.fixture(scope="module")
def server():
    import torch

    from app.main import launch

    # One intra-op thread: on a busy 2-core machine two spinning OpenMP threads make each step many times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    demo = launch(host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo
    demo.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = open_browser(p)
        pg = browser.new_page(viewport=VIEWPORT)
        open_app(pg, server.local_url)
        yield pg
        browser.close()


def test_page_has_three_tabs(page):
    for name in ("Fit & compress", "Decode", "Compare"):
        assert page.get_by_role("tab", name=name, exact=True).is_visible()


def test_fit_in_the_browser(page, tmp_path):
    image = tmp_path / "tiny.png"
    save(Signal(smooth_rgb(24, 32, seed=7)), image)
    fit_in_browser(page, image, time_budget=3, steps=60)
    slider = page.locator("#slider img")
    assert slider.count() == 2 and all(slider.nth(i).is_visible() for i in range(2))
    assert page.get_by_text("Bits per pixel", exact=True).is_visible()
    assert page.locator("#status [role=progressbar]").get_attribute("aria-valuenow") == "100"
    # Download links of the compressed and the decoded file.
    assert "tiny.inrc" in page.locator("#inrc-file a").first.get_attribute("href")
    assert "tiny.decoded.png" in page.locator("#decoded-file a").first.get_attribute("href")
    shot = tmp_path / "ui-fit.png"
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size[0] == VIEWPORT["width"]
        # The slider's pictures are in it: the page is not a blank or error screen.
        assert np.asarray(im.convert("L")).std() > 10


def test_bad_upload_shows_a_message(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image\n")
    page.get_by_role("tab", name="Fit & compress", exact=True).click()
    upload(page, "#fit-file", fake)
    page.get_by_role("button", name="Fit & compress", exact=True).click()
    toast = page.get_by_text("notes.png: not a PNG image")
    toast.first.wait_for(timeout=60_000)
    assert page.get_by_text("Traceback").count() == 0
