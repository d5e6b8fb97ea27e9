"""The built docs site in the real browser the UI test uses: the getting-started page and the job's diagrams
render from ``file://`` with the network closed (Mermaid's script is the site's own), and screenshots of both
are kept (``$ABR_SCREENSHOTS`` or ``build/screenshots/``: ``docs-getting-started.png``, ``docs-job-diagram.png``,
``docs-lifecycle-diagram.png``). The lifecycle diagram is generated from the code: a diagram Mermaid cannot parse is
not drawn (no visible ``div.mermaid``), and this test fails.

``make test-system`` builds the site first (``make docs``); run alone, build it with ``make docs``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.system.cluster import ROOT
from tests.system.test_ui import browser, screenshot_dir  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

SITE = ROOT / "build" / "site"


def page_url(path: str) -> str:
    page = SITE / path
    if not page.exists():
        pytest.fail(f"{page} is missing: build the site first (make docs)")
    return page.as_uri()


def test_the_getting_started_page_and_the_diagrams_render_offline(browser: Browser) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requested: list[str] = []

    def only_files(route: Route) -> None:
        requested.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_files)
    page = context.new_page()
    shots = screenshot_dir()
    try:
        page.goto(page_url("getting-started/index.html"))
        expect(page.locator("h1")).to_contain_text("Getting started")
        expect(page.locator("code", has_text="make demo").first).to_be_visible()
        page.screenshot(path=str(shots / "docs-getting-started.png"), full_page=True)

        page.goto(page_url("explanations/job-layout.html"))
        # Material replaces each ``pre.mermaid`` source with a ``div.mermaid`` holding the drawn diagram.
        diagrams = page.locator("div.mermaid")
        expect(diagrams).to_have_count(2)
        expect(page.locator("pre.mermaid")).to_have_count(0)
        for index in range(2):
            box = diagrams.nth(index).bounding_box()
            assert box is not None and box["height"] > 150, box
        diagrams.first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "docs-job-diagram.png"), full_page=True)

        page.goto(page_url("explanations/waiting-and-logs.html"))
        lifecycle = page.locator("div.mermaid")
        expect(lifecycle).to_have_count(1)
        expect(page.locator("pre.mermaid")).to_have_count(0)
        # Material draws inside a closed shadow root: the picture is checked by its size (about 1,700 px high).
        box = lifecycle.bounding_box()
        assert box is not None and box["height"] > 600, box
        lifecycle.screenshot(path=str(shots / "docs-lifecycle-diagram.png"))
    finally:
        context.close()
    outside = [url for url in requested if not url.startswith("file://")]
    assert outside == [], f"the site asked the network for {outside}"
