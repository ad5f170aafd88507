"""The customer portal over HTTP (Django's test client, Host header per tenant):
lookup -> return -> label and QR -> tracking page; refusals; rate limits; photos;
cross-tenant 404s; fixed query counts (DESIGN.md section 10; issue 3)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage
from PIL import Image
from pypdf import PdfReader

from refunds.models import Refund
from rma.documents import qr_svg
from rma.models import (
    Milestone,
    Notification,
    ReturnLine,
    ReturnPhoto,
    ReturnPolicy,
    ReturnRequest,
    Shipment,
)
from rma.services import ReturnLineInput, milestone_reach, return_request_create
from tests.portal_helpers import (
    NOW,
    huge_png_header_bytes,
    jpeg_bytes,
    order_with_lines,
    polyglot_html_jpeg,
    svg_bytes,
    upload,
)

pytestmark = pytest.mark.django_db

HOST = "acme.localhost"
OTHER_HOST = "globex.localhost"
MODELS = (ReturnRequest, ReturnLine, ReturnPhoto, Milestone, Shipment, Notification, Refund)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def counts():
    return {m.__name__: m.objects.count() for m in MODELS}


def lookup(client, email="buyer@example.com", number="1001", host=HOST, **extra):
    return client.post("/", {"email": email, "order_number": number}, HTTP_HOST=host, **extra)


def nonce_of(page) -> str:
    return re.search(rb'name="nonce" value="([^"]+)"', page.content).group(1).decode()


def form_data(page, lines, method="drop_off", **extra):
    data = {"nonce": nonce_of(page), "method": method}
    for line, quantity, reason in lines:
        data[f"q_{line.line_id}"] = str(quantity)
        data[f"r_{line.line_id}"] = reason
    data.update(extra)
    return data


def test_journey_lookup_return_label_qr_tracking(client, tenant, frozen, media_root):
    order, (l1, l2) = order_with_lines(tenant, email="Buyer@Example.com")
    home = client.get("/", HTTP_HOST=HOST)
    assert home.status_code == 200 and b'name="order_number"' in home.content

    found = lookup(client, email="BUYER@example.com ", number="#1001")
    assert found.status_code == 302 and found["Location"] == "/return/"
    assert str(order.pk) not in found["Location"]

    page = client.get("/return/", HTTP_HOST=HOST)
    assert page.status_code == 200
    assert b"Trail shoe 1" in page.content and b"Trail shoe 2" in page.content
    assert b"from shipping" in page.content  # the window basis is told

    data = form_data(page, [(l1, 1, "damaged"), (l2, 2, "too_small")])
    data[f"n_{l1.line_id}"] = "Sole came off"
    data[f"p_{l1.line_id}"] = upload("IMG_0001.jpg", jpeg_bytes(gps=True, orientation=6))
    submitted = client.post("/return/", data, HTTP_HOST=HOST)
    assert submitted.status_code == 302, submitted.content.decode()[:2000]
    rr = ReturnRequest.objects.get()
    assert submitted["Location"] == f"/r/{rr.token}/confirmation/"

    confirmation = client.get(submitted["Location"], HTTP_HOST=HOST)
    assert confirmation.status_code == 200
    assert f"/r/{rr.token}/".encode() in confirmation.content
    assert f"/r/{rr.token}/label.pdf".encode() in confirmation.content
    assert f"/r/{rr.token}/qr.svg".encode() in confirmation.content
    assert rr.rma_number.encode() in confirmation.content

    label = client.get(f"/r/{rr.token}/label.pdf", HTTP_HOST=HOST)
    assert label.status_code == 200 and label["Content-Type"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(label.content))
    assert len(pdf.pages) == 2  # the carrier's label, then the packing slip
    shipment = rr.shipments.get()
    assert shipment.tracking_number in pdf.pages[0].extract_text()
    slip = pdf.pages[1].extract_text()
    assert rr.rma_number in slip and "SKU-1" in slip and "Packing slip" in slip

    qr = client.get(f"/r/{rr.token}/qr.svg", HTTP_HOST=HOST)
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml"
    assert qr.content == qr_svg(f"RMA:acme:{rr.rma_number}")

    tracking = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST)
    assert tracking.status_code == 200
    body = tracking.content.decode()
    assert 'data-milestone="label_created" data-state="current"' in body
    assert 'data-milestone="dropped_off" data-state="next"' in body
    assert "Print it, stick it on the parcel and drop it off" in body
    assert "Sandbox Post" in body and shipment.tracking_number in body
    assert 'hx-trigger="every 30s"' in body
    assert "I&#x27;ve dropped it off" in body or "I've dropped it off" in body

    # The photo was stored without its GPS EXIF and with the orientation applied.
    photo = ReturnPhoto.objects.get()
    with default_storage.open(photo.file.name, "rb") as handle:
        stored = Image.open(io.BytesIO(handle.read()))
        stored.load()
    assert len(stored.getexif()) == 0 and (stored.width, stored.height) == (20, 40)
    served = client.get(f"/r/{rr.token}/photos/{photo.public_id}/", HTTP_HOST=HOST)
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"

    # The confirmation e-mail is owed, with the absolute tracking link.
    mail = Notification.objects.get(key=f"return_confirmation:{rr.pk}")
    assert f"http://acme.localhost:8000/r/{rr.token}/" in mail.body_text

    # "I've dropped it off" records the customer's claim.
    claimed = client.post(f"/r/{rr.token}/dropped-off/", HTTP_HOST=HOST)
    assert claimed.status_code == 302
    again = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST).content.decode()
    assert "Dropped off. First scan expected within 24-72 hours." in again
    assert rr.milestones.get(name="dropped_off").source == "customer"


def test_htmx_gets_partials(client, tenant, frozen):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")],
        method="drop_off",
        source="customer",
        now=NOW,
    )
    partial = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert partial.content.lstrip().startswith(b'<section id="tracking"')
    assert b"<html" not in partial.content
    pending = client.get(f"/r/{rr.token}/confirmation/", HTTP_HOST=HOST, HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in pending.content  # label pending: the box polls
    assert b"Refresh" in pending.content  # and works without JavaScript
    found = lookup(client, HTTP_HX_REQUEST="true")
    assert found.status_code == 200 and found["HX-Redirect"] == "/return/"


def test_wrong_email_and_unknown_number_answer_alike(client, tenant, frozen):
    order_with_lines(tenant)
    order_with_lines(tenant, number="#1002", email="")  # no e-mail: never looked up
    answers = [
        lookup(client, email="intruder@example.com", number="1001"),
        lookup(client, email="buyer@example.com", number="9999"),
        lookup(client, email="buyer@example.com", number="1002"),
    ]
    # Same page apart from what the visitor typed and the per-response CSRF token.
    scrub = re.compile(rb'value="[^"]*"|"X-CSRFToken": "[^"]+"')
    bodies = {scrub.sub(b"", a.content) for a in answers}
    assert {a.status_code for a in answers} == {200}
    assert len(bodies) == 1
    assert b"couldn&#x27;t find an order" in answers[0].content
    assert "portal_lookup" not in client.session


def test_refusals_show_messages_and_write_nothing(client, tenant, frozen, media_root):
    order, (l1, l2, l3) = order_with_lines(tenant, lines=3)
    ReturnPolicy.objects.filter(tenant=tenant).update(final_sale_skus=["SKU-3"])
    ReturnLine.objects.create(
        tenant=tenant,
        return_request=return_request_create(
            tenant=tenant,
            order=order,
            email="buyer@example.com",
            lines=[ReturnLineInput(line_id=l2.line_id, quantity=1, reason="other")],
            method="drop_off",
            source="customer",
            now=NOW,
        ),
        order_line=l2,
        quantity=1,
        reason="other",
    )
    lookup(client)
    page = client.get("/return/", HTTP_HOST=HOST)
    content = page.content.decode()
    assert "Final sale: this item can&#x27;t be returned." in content  # l3
    assert "Already returned." in content  # l2: both units are in a return
    assert f'name="q_{l3.line_id}"' not in content
    before = counts()

    # Photo missing for a reason that requires one.
    missing = client.post("/return/", form_data(page, [(l1, 1, "damaged")]), HTTP_HOST=HOST)
    assert missing.status_code == 400
    assert "Please add a photo for" in missing.content.decode()
    # Quantity above what is left (forged past the select's choices).
    too_many = client.post("/return/", form_data(page, [(l1, 5, "other")]), HTTP_HOST=HOST)
    assert too_many.status_code == 400 and b"Select a valid choice" in too_many.content
    # Nothing chosen.
    nothing = client.post("/return/", form_data(page, []), HTTP_HOST=HOST)
    assert nothing.status_code == 400 and b"Choose at least one item" in nothing.content
    assert counts() == before


def test_window_closed_is_said_with_its_date(client, tenant):
    _order, (_l1, _l2) = order_with_lines(tenant)
    with time_machine.travel(NOW + timedelta(days=60), tick=False):
        lookup(client)
        page = client.get("/return/", HTTP_HOST=HOST).content.decode()
    assert "The return window closed on Dec. 2, 2026." in page
    assert "Nothing in this order can be returned right now." in page


def test_quantity_race_between_page_and_submit_is_refused(client, tenant, frozen):
    """The form allowed 2, but another return took them meanwhile: the service refuses."""
    order, (l1, _l2) = order_with_lines(tenant)
    lookup(client)
    page = client.get("/return/", HTTP_HOST=HOST)
    return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=l1.line_id, quantity=2, reason="other")],
        method="drop_off",
        source="customer",
        now=NOW,
    )
    before = counts()
    late = client.post("/return/", form_data(page, [(l1, 2, "other")]), HTTP_HOST=HOST)
    assert late.status_code == 400
    assert b"Already returned." in late.content
    assert counts() == before


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("drawing.svg", svg_bytes(), b"JPEG, PNG, WebP or HEIC"),
        ("photo.jpg", polyglot_html_jpeg(), b"not a plain image"),
        ("big.png", huge_png_header_bytes(), b"at most 40 megapixels"),
    ],
    ids=["svg", "polyglot", "12000x12000"],
)
def test_bad_photos_are_a_400_form_error(client, tenant, frozen, media_root, name, data, words):
    _order, (l1, _l2) = order_with_lines(tenant)
    lookup(client)
    page = client.get("/return/", HTTP_HOST=HOST)
    before = counts()
    payload = form_data(page, [(l1, 1, "damaged")])
    payload[f"p_{l1.line_id}"] = upload(name, data, "image/png")
    response = client.post("/return/", payload, HTTP_HOST=HOST)
    assert response.status_code == 400
    assert words in response.content
    assert counts() == before
    assert not (media_root / "tenants").exists()


def test_double_submit_creates_one_return(client, tenant, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    lookup(client)
    page = client.get("/return/", HTTP_HOST=HOST)
    data = form_data(page, [(l1, 1, "other")])
    first = client.post("/return/", data, HTTP_HOST=HOST)
    second = client.post("/return/", data, HTTP_HOST=HOST)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert ReturnRequest.objects.count() == 1 and ReturnLine.objects.count() == 1


def test_lookup_rate_limit_per_ip(client, tenant, frozen):
    order_with_lines(tenant)
    for i in range(10):
        assert lookup(client, number=f"{5000 + i}").status_code == 200
    blocked = lookup(client, number="1001")
    assert blocked.status_code == 429
    wait = int(blocked["Retry-After"])
    assert 60 <= wait <= 120
    # Another address is not affected.
    assert lookup(client, number="1001", REMOTE_ADDR="10.9.9.9").status_code == 302
    # Retry-After tells the truth: one second early is still refused, then it passes.
    frozen.shift(wait - 1)
    assert lookup(client, number="7777").status_code == 429
    frozen.shift(1)
    assert lookup(client, number="7777").status_code == 200


def test_lookup_rate_limit_per_order_number_same_body(client, tenant, frozen):
    order_with_lines(tenant)
    for i in range(5):
        r = lookup(client, email="guess@example.com", number="#1001", REMOTE_ADDR=f"10.0.0.{i}")
        assert r.status_code == 200
    per_order = lookup(client, number="1001", REMOTE_ADDR="10.0.1.1")
    assert per_order.status_code == 429 and int(per_order["Retry-After"]) > 60
    for _ in range(10):
        lookup(client, number="42", REMOTE_ADDR="10.0.2.2")
    per_ip = lookup(client, number="43", REMOTE_ADDR="10.0.2.2")
    assert per_ip.status_code == 429
    assert per_ip.content == per_order.content


def test_trusted_proxy_count_picks_the_forwarded_address(client, tenant, frozen, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    order_with_lines(tenant)
    for i in range(10):
        lookup(client, number=f"{6000 + i}", HTTP_X_FORWARDED_FOR=f"spoof{i}, 203.0.113.7")
    assert lookup(client, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert lookup(client, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302


def test_session_lookup_is_per_tenant_and_expires(client, tenant, other_tenant, frozen):
    order_with_lines(tenant)
    order_with_lines(other_tenant)
    lookup(client)
    assert client.get("/return/", HTTP_HOST=HOST).status_code == 200
    assert client.get("/return/", HTTP_HOST=OTHER_HOST)["Location"] == "/"
    frozen.shift(31 * 60)
    assert client.get("/return/", HTTP_HOST=HOST)["Location"] == "/"


def test_cross_tenant_tokens_are_the_same_404_as_missing(client, tenant, other_tenant, frozen):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")],
        method="drop_off",
        source="customer",
        now=NOW,
    )
    photo = ReturnPhoto.objects.create(
        tenant=tenant,
        return_line=rr.lines.get(),
        file="tenants/x/photos/none.jpg",
        content_type="image/jpeg",
        width=1,
        height=1,
        size_bytes=1,
    )
    paths = [
        "/r/{}/",
        "/r/{}/confirmation/",
        "/r/{}/label.pdf",
        "/r/{}/qr.svg",
        f"/r/{{}}/photos/{photo.public_id}/",
    ]
    for template in paths:
        foreign = client.get(template.format(rr.token), HTTP_HOST=OTHER_HOST)
        missing = client.get(template.format("x" * 32), HTTP_HOST=OTHER_HOST)
        assert foreign.status_code == missing.status_code == 404, template
        assert foreign.content == missing.content
    post = client.post(f"/r/{rr.token}/dropped-off/", HTTP_HOST=OTHER_HOST)
    assert post.status_code == 404
    # The portal does not exist on BASE_DOMAIN or unknown hosts.
    assert client.get(f"/r/{rr.token}/", HTTP_HOST="localhost").status_code == 404
    assert client.get(f"/r/{rr.token}/", HTTP_HOST="nope.localhost").status_code == 404


def test_tracking_page_runs_a_fixed_number_of_queries(
    client, tenant, frozen, django_assert_num_queries
):
    def make(number, n_lines, n_events):
        order, lines = order_with_lines(tenant, number=number, lines=n_lines)
        rr = return_request_create(
            tenant=tenant,
            order=order,
            email="buyer@example.com",
            lines=[ReturnLineInput(line_id=ln.line_id, quantity=1, reason="other") for ln in lines],
            method="drop_off",
            source="customer",
            now=NOW,
        )
        names = ["label_created", "dropped_off", "first_scan", "in_transit", "delivered"]
        for name in names[:n_events]:
            milestone_reach(
                tenant=tenant,
                return_request=rr,
                name=name,
                reached_at=NOW,
                source="carrier",
                now=NOW,
            )
        Shipment.objects.filter(return_request=rr).update(
            tracking_number=f"SB{number[1:]}",
            label_state="ready",
            last_scan_at=datetime(2026, 11, 9, 8, 0, tzinfo=UTC),
            last_scan_time_zone="Europe/Berlin",
            last_scan_location="Köln, DE",
        )
        return rr

    small = make("#3001", 1, 1)
    big = make("#3002", 6, 5)
    with django_assert_num_queries(7):  # tenant by host + the selector's six
        small_page = client.get(f"/r/{small.token}/", HTTP_HOST=HOST)
    with django_assert_num_queries(7):
        big_page = client.get(f"/r/{big.token}/", HTTP_HOST=HOST)
    assert small_page.status_code == big_page.status_code == 200
    body = big_page.content.decode()
    assert "Köln, DE" in body and "CET" in body  # in the scan location's zone
    assert 'datetime="2026-11-09T08:00:00Z"' in body  # for JavaScript
    assert 'data-milestone="delivered" data-state="current"' in body


def test_tracking_page_shows_open_exceptions_and_refund_estimate_in_plain_words(
    client, tenant, frozen
):
    from rma.services import exception_open, return_refund_summary_update

    order, (l1, _l2) = order_with_lines(tenant)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")],
        method="drop_off",
        source="customer",
        now=NOW,
    )
    exception_open(tenant=tenant, return_request=rr, kind="no_first_scan", opened_at=NOW)
    exception_open(
        tenant=tenant,
        return_request=rr,
        kind="carrier_exception",
        reason="failed_attempt",
        opened_at=NOW,
    )
    return_refund_summary_update(
        return_request=rr,
        now=NOW,
        refund_state="approved",
        refund_estimate_text="Refund expected by 14 November.",
    )
    body = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST).content.decode()
    assert "The carrier has not scanned your parcel yet." in body
    assert "The carrier reported a failed delivery attempt. We are looking into it." in body
    assert "Refund expected by 14 November." in body
    assert "Refund approved. Your bank may take 1-3 days." in body


def test_latest_scan_is_shown_in_the_scan_zone_not_the_tenant_zone(client, tenant, frozen):
    """08:00 UTC in Köln is 09:00 CET; the page must not show the tenant's clock time
    (03:00 in New York) with the scan zone's abbreviation."""
    assert tenant.time_zone != "Europe/Berlin"
    order, lines = order_with_lines(tenant, number="#3101", lines=1)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=lines[0].line_id, quantity=1, reason="other")],
        method="drop_off",
        source="customer",
        now=NOW,
    )
    Shipment.objects.filter(return_request=rr).update(
        tracking_number="SB3101",
        label_state="ready",
        last_scan_at=datetime(2026, 11, 9, 8, 0, tzinfo=UTC),
        last_scan_time_zone="Europe/Berlin",
        last_scan_location="Köln, DE",
    )
    body = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST).content.decode()
    assert "Nov. 9, 2026, 9 a.m. CET" in body


def test_pickup_window_beyond_the_calendar_is_a_form_error(client, tenant, frozen):
    """9999-12-31 23:59 in the tenant's zone is past year 9999 in UTC: a 400 form error,
    not a 500 (OverflowError) when the return is written."""
    _order, (l1, _l2) = order_with_lines(tenant)
    lookup(client)
    page = client.get("/return/", HTTP_HOST=HOST)
    data = form_data(
        page,
        [(l1, 1, "too_small")],
        method="pickup",
        pickup_address="1 Main St",
        pickup_start="9999-12-31T20:00",
        pickup_end="9999-12-31T23:59",
    )
    before = counts()
    response = client.post("/return/", data, HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "Datetime value out of range." in response.content.decode()
    assert counts() == before


def test_pickup_window_years_ahead_is_refused(client, tenant, frozen):
    """The portal took a pickup in year 9999; the service bounds it for the portal and API."""
    _order, (l1, _l2) = order_with_lines(tenant)
    lookup(client)
    page = client.get("/return/", HTTP_HOST=HOST)
    data = form_data(
        page,
        [(l1, 1, "too_small")],
        method="pickup",
        pickup_address="1 Main St",
        pickup_start="9999-06-01T09:00",
        pickup_end="9999-06-01T13:00",
    )
    before = counts()
    response = client.post("/return/", data, HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "The pickup must start within 30 days." in response.content.decode()
    assert counts() == before
