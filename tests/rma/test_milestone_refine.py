"""`milestone_reach(refine_same_source=True)`: a date-precision reading of the
same source may move later (the date-only placement rule depends on the other
events known); nothing else changes and nothing fires again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rma.services import milestone_reach
from tests.factories import ReturnRequestFactory

pytestmark = pytest.mark.django_db
DAY_START = datetime(2024, 8, 15, 5, 0, tzinfo=UTC)
LATER = datetime(2024, 8, 15, 15, 36, tzinfo=UTC)


def reach(rr, at, *, precision, source="carrier", refine=True):
    return milestone_reach(
        tenant=rr.tenant,
        return_request=rr,
        name="first_scan",
        reached_at=at,
        source=source,
        precision=precision,
        now=LATER,
        refine_same_source=refine,
    )


def test_date_reading_is_refined_later_by_the_same_source(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    assert reach(rr, DAY_START, precision="date").created
    moved = reach(rr, LATER, precision="date")
    assert moved.moved and moved.milestone.reached_at == LATER


def test_without_refine_or_for_timed_readings_it_never_moves_later(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    reach(rr, DAY_START, precision="date")
    assert not reach(rr, LATER, precision="date", refine=False).moved
    other = ReturnRequestFactory(order__tenant=tenant)
    reach(other, DAY_START, precision="second")
    assert not reach(other, LATER, precision="second").moved


def test_another_sources_date_reading_is_not_refined(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    reach(rr, DAY_START, precision="date", source="api")
    # carrier outranks api anyway; an api reading never refines a carrier one
    assert reach(rr, LATER, precision="date").moved
    assert not reach(rr, LATER.replace(hour=20), precision="date", source="api").moved
