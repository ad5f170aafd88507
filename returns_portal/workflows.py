"""Cross-app reactions (DESIGN.md section 2): what happens when a milestone is first reached.

A milestone row with `dispatched_at` null is an outbox entry. `milestone_dispatch`
claims it and runs every reaction in one transaction: if a reaction fails, the
claim rolls back and the sweeper tries again. Reactions are idempotent (they
write owed rows keyed uniquely: a notification per key, a refund approval by
conditional update), so a retry after a crash does no harm.

Reactions are listed here, in order, as plain functions `(milestone, now)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import transaction

from refunds.services import refund_on_milestone
from rma.models import Milestone
from rma.services import milestone_mark_dispatched

log = logging.getLogger(__name__)

Reaction = Callable[[Milestone, datetime], None]

#: The reactions to a first reach, in order. Each issue adds its own here.
REACTIONS: list[Reaction] = []


# --- refunds issue: approval when the trigger (or a later parcel milestone) is
# reached, closing when the outcome is settled, the refund estimate ---
def refund_reaction(milestone: Milestone, now: datetime) -> None:
    refund_on_milestone(milestone=milestone, now=now)


REACTIONS.append(refund_reaction)


@transaction.atomic
def milestone_dispatch(*, milestone_id: int, now: datetime) -> bool:
    """Run the reactions owed for one milestone, once. Returns False if already dispatched or gone."""
    if not milestone_mark_dispatched(milestone_id=milestone_id, now=now):
        return False
    milestone = Milestone.objects.select_related("return_request", "tenant").get(pk=milestone_id)
    for reaction in REACTIONS:
        reaction(milestone, now)
    return True


# Issue 5: due columns (first scan, no movement, transit, check-in, inspection,
# refund) follow every milestone's first reach. Appended last so it sees what
# earlier reactions (e.g. a refund approval) did.
from returns_portal.detection import due_times_refresh_reaction  # noqa: E402

REACTIONS.append(due_times_refresh_reaction)
