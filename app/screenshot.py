"""Drive the UI in a real browser (playwright with Debian's chromium) and save a screenshot of a finished fit.

    python -m app.screenshot docs/ui-fit.png [--input scenes/shapes_128x160.png] [--time-budget 20]

Also the helpers of ``tests/test_ui_browser.py``. Needs ``/usr/bin/chromium`` (``apt-get install chromium``)
and the ``playwright`` Python package; never ``playwright install`` (it would download another browser).
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that phones home (the machines that run this have no way out anyway).
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1400, "height": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_app(page, url: str, timeout_s: float = 60) -> None:
    page.goto(url)
    page.get_by_role("button", name="Fit & compress", exact=True).wait_for(timeout=timeout_s * 1000)


def upload(page, elem_id: str, path: str | Path, timeout_s: float = 30) -> None:
    """Put ``path`` into the File component ``elem_id`` (clearing what it held) and wait until it shows."""
    clear = page.locator(elem_id).get_by_role("button", name="Clear", exact=True)
    if clear.count():
        clear.first.click()
    page.locator(f"{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f'{elem_id} [aria-label="{Path(path).name}"]').first.wait_for(timeout=timeout_s * 1000)


def fit_in_browser(page, input_path: str | Path, time_budget: float | None = None, steps: int | None = None,
                   timeout_s: float = 300) -> None:
    """Upload ``input_path`` on the Fit tab, set the budget (and steps), press the button, wait for the slider."""
    page.get_by_role("tab", name="Fit & compress", exact=True).click()
    upload(page, "#fit-file", input_path)
    if time_budget is not None:
        box = page.get_by_label("number input for Time budget (s)")
        box.fill(f"{time_budget:g}")
        box.press("Enter")
    if steps is not None:
        page.get_by_text("Advanced", exact=True).first.click()
        box = page.get_by_label("Max steps (0: model default)")
        box.fill(str(steps))
        box.press("Tab")
    page.get_by_role("button", name="Fit & compress", exact=True).click()
    page.locator("#slider img").nth(1).wait_for(timeout=timeout_s * 1000)
    page.locator("#status").get_by_text("Done").wait_for(timeout=30_000)


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    from .main import launch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("output", type=Path)
    ap.add_argument("--input", default=str(Path(__file__).resolve().parent.parent / "scenes" / "shapes_128x160.png"))
    ap.add_argument("--time-budget", type=float, default=None)
    args = ap.parse_args(argv)
    demo = launch(host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = open_browser(p)
            page = browser.new_page(viewport=VIEWPORT)
            open_app(page, demo.local_url)
            fit_in_browser(page, args.input, time_budget=args.time_budget)
            page.wait_for_timeout(500)  # let the slider's images finish painting
            args.output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.output), full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
