"""`refund_overdue`: approved and not issued one business day after approval, or failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from refunds.due_times import refund_due_times_refresh
from refunds.models import Refund
from refunds.services import refund_create_for_return
from refunds.states import refund_transition
from rma.models import ReturnException
from tests.clock import changes, detect
from tests.factories import ReturnRequestFactory

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)
M = timedelta(minutes=1)
# Tuesday 2026-11-17 14:00 UTC (09:00 in New York).
APPROVED = datetime(2026, 11, 17, 14, 0, tzinfo=UTC)


def move(refund, to_state, now, **fields):
    refund_transition(refund=refund, to_state=to_state, actor="t", reason="t", now=now, **fields)
    refund_due_times_refresh(refund=refund, now=now)
    refund.refresh_from_db()


@pytest.fixture
def refund(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    refund = refund_create_for_return(rr, now=APPROVED)
    Refund.objects.filter(pk=refund.pk).update(amount=Decimal("40.00"))
    move(refund, "approved", APPROVED, approved_at=APPROVED)
    return refund


def test_late_refund_opens_one_business_day_after_approval(refund):
    assert refund.refund_due_at == APPROVED + 24 * H  # Wednesday 09:00 New York
    assert changes(detect(APPROVED + 24 * H - M)) == {}
    assert changes(detect(APPROVED + 24 * H)) == {"refund_overdue": {"opened": 1}}
    exc = ReturnException.objects.get(kind="refund_overdue")
    assert (exc.reason, exc.shipment_id, exc.due_at) == ("late", None, APPROVED + 24 * H)


def test_issued_refund_resolves_it(refund):
    detect(APPROVED + 30 * H)
    move(refund, "issuing", APPROVED + 31 * H)
    assert changes(detect(APPROVED + 31 * H + M)) == {}  # issuing is still owed
    move(refund, "issued", APPROVED + 32 * H, issued_at=APPROVED + 32 * H)
    assert changes(detect(APPROVED + 33 * H)) == {"refund_overdue": {"resolved": 1}}
    assert ReturnException.objects.get().resolution_code == "auto:refund_issued"


def test_failed_refund_opens_at_once_and_a_late_one_that_fails_is_updated(refund):
    move(refund, "issuing", APPROVED + H)
    move(refund, "failed", APPROVED + 2 * H)
    assert changes(detect(APPROVED + 2 * H + M)) == {"refund_overdue": {"opened": 1}}
    assert ReturnException.objects.get().reason == "failed"
    move(refund, "approved", APPROVED + 3 * H)  # staff retry
    counts = changes(detect(APPROVED + 3 * H + M))
    assert counts == {"refund_overdue": {"resolved": 1}}  # owed again but not yet due
    assert changes(detect(APPROVED + 24 * H)) == {"refund_overdue": {"opened": 1}}
    move(refund, "issuing", APPROVED + 25 * H)
    move(refund, "failed", APPROVED + 26 * H)
    assert changes(detect(APPROVED + 26 * H + M)) == {"refund_overdue": {"updated": 1}}
    open_one = ReturnException.objects.get(state="open")
    assert open_one.reason == "failed"
    assert open_one.condition_key.endswith(":failed")


def test_held_refund_is_not_overdue(refund):
    move(refund, "held", APPROVED + H)
    assert refund.refund_due_at is None
    assert changes(detect(APPROVED + 100 * H)) == {}
