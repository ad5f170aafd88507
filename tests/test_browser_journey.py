"""The customer journey in a real browser: Debian's Chromium driven by Playwright for
Python against pytest-django's live server, on the tenant host
`acme.localhost:<port>` (Chromium resolves *.localhost to loopback).

Lookup -> choose items (with a photo) -> submit -> confirmation -> tracking page ->
"I've dropped it off". Screenshots go to `$SCREENSHOT_DIR` (default
`docs/screenshots`), `tracking.png` among them. Never downloads a browser; with
`CI=true` a missing Chromium fails the test instead of skipping it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rma.models import ReturnRequest
from tests.conftest import IN_CI
from tests.factories import TenantFactory
from tests.portal_helpers import jpeg_bytes, order_with_lines

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "docs" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def require_browser():
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package is missing"
    if missing:
        if IN_CI:
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_journey_in_chromium(live_server):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    tenant = TenantFactory(slug="acme", name="Acme Outdoor", brand_color="#0b6e4f")
    now = timezone.now()
    _order, (shoe, jacket) = order_with_lines(
        tenant,
        email="dana@example.com",
        placed_at=now - timedelta(days=6),
        fulfilled_at=now - timedelta(days=5),
        shipping_name="Dana Rivera",
        shipping_address1="12 Harbor Street",
        shipping_city="Portland",
        shipping_zip="04101",
    )
    jacket.title = "Rain jacket"
    jacket.sku = "JKT-RAIN-M"
    jacket.save()
    port = live_server.url.rsplit(":", 1)[1]
    base = f"http://acme.localhost:{port}"
    shots = screenshot_dir()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": 900, "height": 1100},
                locale="en-US",
                timezone_id="Europe/Berlin",
            )
            page.goto(base + "/")
            expect(page.get_by_role("heading", name="Return an item")).to_be_visible()
            page.fill("#id_email", "Dana@Example.com")
            page.fill("#id_order_number", "#1001")
            page.screenshot(path=str(shots / "lookup.png"), full_page=True)
            page.click("text=Find my order")
            page.wait_for_url(base + "/return/")

            page.select_option(f"#id_q_{shoe.line_id}", "1")
            page.select_option(f"#id_r_{shoe.line_id}", "damaged")
            page.fill(f"#id_n_{shoe.line_id}", "The sole came loose after a week.")
            page.set_input_files(
                f"#id_p_{shoe.line_id}",
                files=[
                    {"name": "sole.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(gps=True)}
                ],
            )
            page.select_option(f"#id_q_{jacket.line_id}", "2")
            page.select_option(f"#id_r_{jacket.line_id}", "too_large")
            expect(page.locator(".pickup")).to_be_hidden()  # JavaScript hides pickup fields
            page.screenshot(path=str(shots / "return-form.png"), full_page=True)
            page.click("text=Request return")
            page.wait_for_url("**/confirmation/")

            # Playwright runs an event loop in this thread: no ORM calls until it is closed.
            token = page.url.rstrip("/").split("/")[-2]
            expect(page.locator("#label-link")).to_be_visible()
            expect(page.locator("img.qr")).to_be_visible()
            page.screenshot(path=str(shots / "confirmation.png"), full_page=True)

            page.click("#tracking-link")
            page.wait_for_url(f"{base}/r/{token}/")
            expect(page.locator('[data-milestone="label_created"]')).to_have_attribute(
                "data-state", "current"
            )
            expect(page.locator("#next-step")).to_contain_text(
                "stick it on the parcel and drop it off"
            )
            expect(page.locator("#parcel")).to_contain_text("Sandbox Post")
            # Times are rendered in the shop's zone and converted to the browser's by JavaScript.
            expect(page.locator('[data-milestone="requested"] time')).to_contain_text("GMT+1")
            page.screenshot(path=str(shots / "tracking.png"), full_page=True)

            page.click("#dropped-off")
            expect(page.locator("#next-step")).to_contain_text(
                "Dropped off. First scan expected within 24-72 hours."
            )
            page.screenshot(path=str(shots / "tracking-dropped-off.png"), full_page=True)
            status, head = page.evaluate(
                """async (url) => {
                    const r = await fetch(url);
                    const bytes = new Uint8Array(await r.arrayBuffer());
                    return [r.status, String.fromCharCode(...bytes.slice(0, 5))];
                }""",
                f"{base}/r/{token}/label.pdf",
            )
            assert (status, head) == (200, "%PDF-")
        finally:
            browser.close()

    rr = ReturnRequest.objects.get(tenant=tenant, token=token)
    assert rr.status == "dropped_off" and rr.customer_dropoff_claimed_at is not None
    assert rr.lines.count() == 2 and rr.lines.get(reason="damaged").photos.count() == 1
    assert (shots / "tracking.png").stat().st_size > 10_000
