"""Cross-app reactions (DESIGN.md section 2): what happens when a milestone is first reached.

A milestone row with `dispatched_at` null is an outbox entry. `milestone_dispatch`
claims it, together with every other milestone of its return still owed, and runs
every reaction once for the batch in one transaction: if a reaction fails, the
claim rolls back and the sweeper tries again. Reactions are idempotent (they
write owed rows keyed uniquely: a notification per key, a refund approval by
conditional update), so a retry after a crash does no harm.

Reactions are listed here, in order, as plain functions `(return_request, names,
now)`: `names` is the set of milestone names first reached in the batch. They
read the return's current state, so one run serves every milestone of the batch
(ingest reaches two or three at once; running per milestone repeated the work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import transaction

from refunds.services import refund_on_milestones
from rma.models import ReturnRequest
from rma.services import milestones_claim_owed

log = logging.getLogger(__name__)

Reaction = Callable[[ReturnRequest, frozenset[str], datetime], None]

#: The reactions to a first reach, in order. Each issue adds its own here.
REACTIONS: list[Reaction] = []


# --- refunds issue: approval when the trigger (or a later parcel milestone) is
# reached, closing when the outcome is settled, the refund estimate ---
def refund_reaction(return_request: ReturnRequest, names: frozenset[str], now: datetime) -> None:
    refund_on_milestones(return_request=return_request, names=names, now=now)


REACTIONS.append(refund_reaction)


@transaction.atomic
def milestone_dispatch(*, milestone_id: int, now: datetime) -> bool:
    """Run the reactions owed for `milestone_id` and the other owed milestones of its
    return, once. Returns False if it was already dispatched (alone or in an earlier
    batch) or is gone."""
    claim = milestones_claim_owed(milestone_id=milestone_id, now=now)
    if claim is None:
        return False
    for reaction in REACTIONS:
        reaction(claim.return_request, claim.names, now)
    return True


# Issue 5: due columns (first scan, no movement, transit, check-in, inspection,
# refund) follow every milestone's first reach. Appended last so it sees what
# earlier reactions (e.g. a refund approval) did.
from returns_portal.detection import due_times_refresh_reaction  # noqa: E402

REACTIONS.append(due_times_refresh_reaction)
