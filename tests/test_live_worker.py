"""A real Celery worker subprocess on PostgreSQL and Redis (DESIGN.md section 11).

The milestone outbox end to end: a service commits a milestone, the on-commit
hook enqueues `returns_portal.dispatch_milestone` on Redis, a separate worker
process picks it up and marks the milestone dispatched in the same database.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rma.models import Milestone
from rma.services import milestone_reach
from tests.factories import ReturnRequestFactory


@pytest.mark.live_worker
@pytest.mark.django_db(transaction=True)
def test_dispatch_runs_on_a_real_worker(tenant, live_worker):
    rr = ReturnRequestFactory(order__tenant=tenant)
    now = datetime.now(UTC)
    result = milestone_reach(
        tenant=tenant,
        return_request=rr,
        name="label_created",
        reached_at=now,
        source="system",
        now=now,
    )
    assert live_worker(
        lambda: Milestone.objects.get(pk=result.milestone.pk).dispatched_at is not None
    )
