"""Proactive customer alerts (one per exception; tenant switches; --no-notify) and the
plain-words messages the tracking page shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rma.exceptions_text import customer_exception_notices, customer_message
from rma.models import ExceptionKind, Notification, ReturnException, SlaPolicy
from rma.services import NOTIFICATION_SEND_TASK, exception_open
from tests.clock import T0, detect, ingest, labelled_return, scanned_return

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args: calls.append((name, args))
    )
    return calls


def test_no_scan_alert_with_drop_off_help_and_the_qr_code(
    tenant, sent, django_capture_on_commit_callbacks
):
    rr, _shipment = labelled_return(tenant, tracking_number="1Z999AA10123456784")
    with django_capture_on_commit_callbacks(execute=True):
        counts = detect(T0 + 72 * H)
    assert counts["no_first_scan"]["alerts"] == 1
    exc = ReturnException.objects.get()
    note = Notification.objects.get()
    assert (note.key, note.kind, note.to_email, note.state) == (
        f"alert:{exc.pk}",
        "alert_no_first_scan",
        rr.email,
        "queued",
    )
    assert note.return_request_id == rr.pk
    assert note.subject == f"Your return {rr.rma_number}: no carrier scan yet"
    assert f"http://acme.localhost:8000/r/{rr.token}/qr.svg" in note.body_text
    assert f"http://acme.localhost:8000/r/{rr.token}/label.pdf" in note.body_text
    assert f"http://acme.localhost:8000/r/{rr.token}/" in note.body_text
    assert "more than 72 hours ago" in note.body_text
    assert "UPS drop-off point" in note.body_text
    assert "1Z999AA10123456784" in note.body_text
    assert sent == [(NOTIFICATION_SEND_TASK, [note.pk, tenant.pk])]


def test_no_movement_alert_says_what_happens_next(tenant):
    rr, shipment = scanned_return(tenant, scan_at=T0)
    last = T0 + 3 * H
    ingest(
        shipment,
        last,
        status="in_transit",
        status_at=last,
        last_event_at=last,
        last_scan_at=last,
        last_scan_location="Secaucus, NJ, US",
        last_scan_time_zone="America/New_York",
    )
    detect(last + 5 * 24 * H)
    note = Notification.objects.get(kind="alert_no_movement")
    assert note.subject == f"Your return {rr.rma_number} has not moved for 5 days"
    assert "was on 2026-11-09 in Secaucus, NJ, US" in note.body_text
    assert "What happens next" in note.body_text
    assert "open a trace with the carrier" in note.body_text


def test_alerts_are_sent_once(tenant):
    labelled_return(tenant)
    detect(T0 + 72 * H)
    detect(T0 + 73 * H)
    detect(T0 + 72 * H, resolve=False)
    assert Notification.objects.filter(kind="alert_no_first_scan").count() == 1


def test_tenant_can_turn_each_alert_off(tenant, other_tenant):
    SlaPolicy.objects.filter(tenant=tenant).update(alert_no_scan=False)
    labelled_return(tenant)
    labelled_return(other_tenant)
    counts = detect(T0 + 72 * H)
    assert counts["no_first_scan"] == {
        "opened": 2,
        "resolved": 0,
        "updated": 0,
        "escalated": 0,
        "alerts": 1,
    }
    assert list(Notification.objects.values_list("tenant_id", flat=True)) == [other_tenant.pk]


def test_no_notify_suppresses_alerts(tenant):
    labelled_return(tenant)
    assert detect(T0 + 72 * H, notify=False)["no_first_scan"]["opened"] == 1
    assert not Notification.objects.exists()


def test_return_without_email_gets_a_suppressed_row(tenant):
    labelled_return(tenant, return_request__email="")
    detect(T0 + 72 * H)
    assert Notification.objects.get().state == "suppressed"


@pytest.mark.parametrize("kind", ExceptionKind.values)
def test_every_kind_has_plain_words_or_is_internal(kind):
    message = customer_message(kind, "lost")
    if kind == "unmapped_status":
        assert message is None
    else:
        assert message and "_" not in message


def test_carrier_exception_reason_in_plain_words():
    assert customer_message("carrier_exception", "held") == (
        "The carrier reported that the parcel is held (customs or regulatory). "
        "We are looking into it."
    )
    assert customer_message("refund_overdue", "failed").startswith("We could not complete")


def test_customer_notices_for_the_tracking_page(tenant, django_assert_num_queries):
    rr, shipment = labelled_return(tenant)
    exception_open(
        tenant=tenant, return_request=rr, shipment=shipment, kind="no_first_scan", opened_at=T0
    )
    exception_open(tenant=tenant, return_request=rr, kind="unmapped_status", opened_at=T0)
    exception_open(
        tenant=tenant,
        return_request=rr,
        shipment=shipment,
        kind="carrier_exception",
        reason="delayed",
        opened_at=T0 + H,
    )
    with django_assert_num_queries(1):
        notices = customer_exception_notices(return_request=rr)
    assert [(n.kind, n.since) for n in notices] == [
        ("no_first_scan", T0),
        ("carrier_exception", T0 + H),
    ]
    assert notices[1].message == "The carrier reported a delay. We are looking into it."
