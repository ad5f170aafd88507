"""The refunds part of the demo: a return refunded under each default rule and one exchange."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from refunds.models import Refund
from returns_portal.demo_refunds import seed_refund_demo

pytestmark = pytest.mark.django_db


def test_demo_refunds_each_default_rule_and_one_exchange(tenant, settings, monkeypatch):
    monkeypatch.setattr("celery.current_app.send_task", lambda *a, **k: None)
    made = seed_refund_demo(tenant=tenant, now=datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    refunds = {r.return_request_id: r for r in Refund.objects.filter(tenant=tenant)}
    assert [refunds[rr.pk].rule_name for rr in made] == [
        "Low risk",
        "Standard",
        "High value",
        "High risk",
        "Standard",
    ]
    assert [refunds[rr.pk].state for rr in made] == [
        "issued",
        "issued",
        "issued",
        "issued",
        "cancelled",
    ]
    for rr in made:
        rr.refresh_from_db()
    # refunded at first scan / at delivery: the money is back, the parcel still travels
    assert [rr.status for rr in made] == [
        "first_scan",
        "delivered",
        "refunded",
        "refunded",
        "exchanged",
    ]
