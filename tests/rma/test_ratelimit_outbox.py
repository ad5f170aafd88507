"""The lookup rate limiter's sliding window and the outbox's pending labels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rma import ratelimit
from rma.outbox import owed
from rma.services import ReturnLineInput, return_request_create
from tests.portal_helpers import NOW, order_with_lines

pytestmark = pytest.mark.django_db


def test_a_burst_across_a_window_boundary_cannot_double_the_rate():
    limit = ratelimit.Limit("t-burst", 10, 60)
    start = 6000.0  # a window boundary
    allowed = sum(ratelimit.hit(limit, "ip", now=start - 1) is None for _ in range(10))
    allowed += sum(ratelimit.hit(limit, "ip", now=start + 1) is None for _ in range(10))
    assert allowed == 10


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.floats(0, 200, allow_nan=False), min_size=11, max_size=40),
)
def test_retry_after_is_truthful_and_never_more_than_limit_per_sliding_minute(offsets):
    from django.core.cache import cache

    cache.clear()
    limit = ratelimit.Limit("t-prop", 10, 60)
    accepted = []
    for t in sorted(offsets):
        wait = ratelimit.hit(limit, "ip", now=10_000 + t)
        if wait is None:
            accepted.append(t)
        else:
            assert 1 <= wait <= 2 * limit.window_seconds
    # No 60 s span holds more than twice the limit (the estimate bounds bursts), and
    # a refused client that waits Retry-After is let in.
    for t in accepted:
        assert sum(1 for u in accepted if t <= u < t + 60) <= 2 * limit.limit
    last = max(offsets)
    wait = ratelimit.hit(limit, "ip", now=10_000 + last)
    if wait is not None:
        assert ratelimit.hit(limit, "ip", now=10_000 + last + wait) is None


def test_pending_labels_are_owed_to_the_sweeper(tenant):
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
    shipment = rr.shipments.get()
    work = owed(now=NOW + timedelta(minutes=3), older_than=timedelta(minutes=2))
    assert ("rma.label_purchase", [shipment.pk, tenant.pk]) in work
    assert ("rma.label_purchase", [shipment.pk, tenant.pk]) not in owed(
        now=NOW + timedelta(minutes=1), older_than=timedelta(minutes=2)
    )
    type(shipment).objects.filter(pk=shipment.pk).update(
        label_next_attempt_at=NOW + timedelta(minutes=10)
    )
    later = owed(now=NOW + timedelta(minutes=3), older_than=timedelta(minutes=2))
    assert ("rma.label_purchase", [shipment.pk, tenant.pk]) not in later
