"""rma services: every write to the return's world goes through here.

The return's clock lives in `rma` (DESIGN.md section 2): the only writers of
milestones and exceptions are `milestone_reach`, `exception_open` and
`exception_resolve`; all are idempotent. `tracking` and `refunds` call them,
and keep the denormalized summaries through `shipment_summary_update` and
`return_refund_summary_update`, so the portal reads only `rma`.

Side effects are owed rows (a milestone with `dispatched_at` null, a
`queued` notification) nudged by a task enqueued on commit; the beat sweeper
re-enqueues what is still owed after 2 minutes. Tasks are sent by name so
that `rma` never imports the composition root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import F

from returns_portal.tenancy.models import Tenant
from rma import hooks
from rma.models import (
    ExceptionState,
    Milestone,
    Notification,
    NotificationState,
    ReturnException,
    ReturnRequest,
    RmaSequence,
    Shipment,
)
from rma.states import (
    CLOSED_STATUSES,
    PARCEL_RANK,
    SOURCE_RANK,
    MilestoneName,
    MilestoneSource,
    Precision,
    furthest_parcel_status,
    return_status_transition,
)

log = logging.getLogger(__name__)

DISPATCH_MILESTONE_TASK = "returns_portal.dispatch_milestone"
NOTIFICATION_SEND_TASK = "rma.notification_send"


class TenantMismatch(ValueError):
    """Rows of different tenants were combined."""


def ensure_same_tenant(tenant: Tenant | int, *objs: Any) -> None:
    """Raise `TenantMismatch` unless every object with a `tenant_id` belongs to `tenant`."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    for obj in objs:
        if obj is not None and getattr(obj, "tenant_id", tenant_id) != tenant_id:
            raise TenantMismatch(f"{obj!r} belongs to tenant {obj.tenant_id}, not {tenant_id}")


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Send `task_name` by name after the current transaction commits.

    A failed send is logged, not raised: the owed row stays in the database
    and the outbox sweeper re-enqueues it.
    """

    def send() -> None:
        try:
            current_app.send_task(task_name, args=list(args))
        except Exception:
            log.warning(
                "could not enqueue %s%r; the outbox sweeper will retry",
                task_name,
                args,
                exc_info=True,
            )

    transaction.on_commit(send)


# --------------------------------------------------------------------------
# RMA numbers
# --------------------------------------------------------------------------
@transaction.atomic
def rma_number_allocate(*, tenant: Tenant) -> str:
    """The next `RMA-<n>` of `tenant` (starting at RMA-100001), under a row lock."""
    seq, _created = RmaSequence.objects.get_or_create(tenant=tenant)
    seq = RmaSequence.objects.select_for_update().get(pk=seq.pk)
    value = seq.next_value
    RmaSequence.objects.filter(pk=seq.pk).update(next_value=F("next_value") + 1)
    return f"RMA-{value}"


# --------------------------------------------------------------------------
# Milestones
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class MilestoneResult:
    """What `milestone_reach` did: `created` (first reach: reactions owed), `moved`
    (an existing milestone got an earlier instant or a higher-ranked source)."""

    milestone: Milestone
    created: bool
    moved: bool


def _replaces(existing: Milestone, *, reached_at: datetime, source: str) -> bool:
    """Sources rank carrier > check-in, staff, system > api > customer; `reached_at`
    moves only to an earlier instant (same rank) or to a higher-ranked source."""
    new_rank = SOURCE_RANK[MilestoneSource(source)]
    old_rank = SOURCE_RANK[MilestoneSource(existing.source)]
    if new_rank > old_rank:
        return True
    return new_rank == old_rank and reached_at < existing.reached_at


@transaction.atomic
def milestone_reach(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    name: str,
    reached_at: datetime,
    source: str,
    now: datetime,
    precision: str = Precision.SECOND,
    actor: str = "",
    refine_same_source: bool = False,
) -> MilestoneResult:
    """Record that `return_request` reached milestone `name` at `reached_at`.

    Idempotent: a repeat with the same or a later instant from the same or a
    lower-ranked source changes nothing. A milestone is never un-reached.
    On the first reach the row is an outbox entry (`dispatched_at` null) and
    `returns_portal.dispatch_milestone` is enqueued on commit; later moves
    fire nothing. Parcel milestones advance the return's status (unless it
    is closed). Outcome milestones (`refunded`, ...) do not close the return:
    closing is `return_close`'s job.

    Lock order: the return row, then its milestone rows.

    `refine_same_source` (tracking passes it for carrier readings): a stored
    reading of the same source with precision `date` takes the new reading
    even when it is later. A date-only event counts at the later of its local
    day start and the latest timed event of a lower stage (DESIGN.md section
    5), so it moves as that source's other events arrive; the source's
    derivation over all its events is the better reading. Nothing fires again.
    """
    ensure_same_tenant(tenant, return_request)
    MilestoneName(name)
    MilestoneSource(source)
    locked = ReturnRequest.objects.select_for_update().get(pk=return_request.pk, tenant=tenant)
    existing = Milestone.objects.filter(tenant=tenant, return_request=locked, name=name).first()
    if existing is not None:
        refined = (
            refine_same_source
            and existing.source == source
            and existing.precision == Precision.DATE
            and (existing.reached_at, existing.precision) != (reached_at, precision)
        )
        if not refined and not _replaces(existing, reached_at=reached_at, source=source):
            return MilestoneResult(existing, created=False, moved=False)
        Milestone.objects.filter(pk=existing.pk).update(
            reached_at=reached_at,
            source=source,
            precision=precision,
            actor=actor[:200],
            updated_at=now,
        )
        existing.refresh_from_db()
        return MilestoneResult(existing, created=False, moved=True)
    milestone = Milestone.objects.create(
        tenant=tenant,
        return_request=locked,
        name=name,
        reached_at=reached_at,
        precision=precision,
        source=source,
        actor=actor[:200],
        created_at=now,
        updated_at=now,
    )
    if name in PARCEL_RANK and locked.status not in CLOSED_STATUSES:
        reached = set(
            Milestone.objects.filter(tenant=tenant, return_request=locked).values_list(
                "name", flat=True
            )
        )
        target = furthest_parcel_status(reached)
        if PARCEL_RANK[target] > PARCEL_RANK.get(locked.status, -1):
            return_status_transition(
                return_request=locked,
                to_status=target,
                actor=actor or source,
                reason=f"milestone {name}",
                now=now,
            )
            return_request.status = locked.status
    enqueue_on_commit(DISPATCH_MILESTONE_TASK, milestone.pk)
    return MilestoneResult(milestone, created=True, moved=False)


@transaction.atomic
def milestone_mark_dispatched(*, milestone_id: int, now: datetime) -> bool:
    """Claim a milestone's reactions: set `dispatched_at` if still null. True when claimed."""
    return bool(
        Milestone.objects.filter(pk=milestone_id, dispatched_at__isnull=True).update(
            dispatched_at=now
        )
    )


# --------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ExceptionResult:
    exception: ReturnException | None
    created: bool
    updated: bool


@transaction.atomic
def exception_open(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    kind: str,
    opened_at: datetime,
    shipment: Shipment | None = None,
    reason: str = "",
    detail: str = "",
    condition_key: str = "",
    priority: int | None = None,
) -> ExceptionResult:
    """Open an exception, or update the open one's reason in place.

    One open exception per (return, shipment, kind) is enforced by a database
    constraint; a concurrent opener loses the insert and gets the existing row.
    An exception resolved by staff for the same `condition_key` is not
    reopened (returns `ExceptionResult(None, False, False)`).
    """
    ensure_same_tenant(tenant, return_request, shipment)
    scope = ReturnException.objects.filter(
        tenant=tenant, return_request=return_request, shipment=shipment, kind=kind
    )
    current = scope.filter(state=ExceptionState.OPEN).first()
    if current is not None:
        changes = {}
        if reason and current.reason != reason:
            changes["reason"] = reason
        if detail and current.detail != detail:
            changes["detail"] = detail
        if changes:
            scope.filter(pk=current.pk).update(**changes, updated_at=opened_at)
            for key, value in changes.items():
                setattr(current, key, value)
        return ExceptionResult(current, created=False, updated=bool(changes))
    if scope.filter(
        state=ExceptionState.RESOLVED, resolved_by_staff=True, condition_key=condition_key
    ).exists():
        return ExceptionResult(None, created=False, updated=False)
    try:
        with transaction.atomic():
            created = ReturnException.objects.create(
                tenant=tenant,
                return_request=return_request,
                shipment=shipment,
                kind=kind,
                reason=reason,
                detail=detail,
                condition_key=condition_key,
                opened_at=opened_at,
                created_at=opened_at,
                updated_at=opened_at,
                **({"priority": priority} if priority is not None else {}),
            )
    except IntegrityError:
        existing = scope.filter(state=ExceptionState.OPEN).first()
        return ExceptionResult(existing, created=False, updated=False)
    return ExceptionResult(created, created=True, updated=False)


@transaction.atomic
def exception_resolve(
    *,
    exception: ReturnException,
    resolution_code: str,
    resolved_at: datetime,
    by_staff: bool = False,
    user: Any = None,
    note: str = "",
) -> bool:
    """Resolve an open exception; True if this call resolved it, False if it was not open.

    `by_staff` marks it so detectors do not reopen it for the same condition.
    """
    changed = ReturnException.objects.filter(pk=exception.pk, state=ExceptionState.OPEN).update(
        state=ExceptionState.RESOLVED,
        resolved_at=resolved_at,
        resolution_code=resolution_code[:50],
        resolution_note=note,
        resolved_by_staff=by_staff,
        resolved_by=user,
        updated_at=resolved_at,
    )
    if changed:
        exception.refresh_from_db()
    return bool(changed)


# --------------------------------------------------------------------------
# Denormalized summaries written on behalf of tracking and refunds
# --------------------------------------------------------------------------
SHIPMENT_SUMMARY_FIELDS = frozenset(
    {
        "status",
        "exception_reason",
        "status_at",
        "last_scan_at",
        "last_scan_location",
        "last_scan_time_zone",
        "last_event_at",
        "first_scan_due_at",
        "next_event_due_at",
        "transit_due_at",
        "next_poll_at",
        "poll_failures",
        "shipped_at",
        "origin_country",
        "destination_country",
        "number_check",
    }
)


def shipment_summary_update(*, shipment: Shipment, now: datetime, **fields: Any) -> None:
    """Write derived fields of a shipment (status, last scan, due columns, polling).

    Only the fields in `SHIPMENT_SUMMARY_FIELDS` may be written here.
    """
    unknown = set(fields) - SHIPMENT_SUMMARY_FIELDS
    if unknown:
        raise ValueError(f"not summary fields: {sorted(unknown)}")
    Shipment.objects.filter(pk=shipment.pk, tenant_id=shipment.tenant_id).update(
        **fields, updated_at=now
    )
    for key, value in fields.items():
        setattr(shipment, key, value)


REFUND_SUMMARY_FIELDS = frozenset(
    {
        "refund_state",
        "refund_estimate_from",
        "refund_estimate_to",
        "refund_estimate_text",
        "refund_rule_snapshot",
    }
)


def return_refund_summary_update(
    *, return_request: ReturnRequest, now: datetime, **fields: Any
) -> None:
    """Write the return's refund summary (state, estimate, rule snapshot) for the portal."""
    unknown = set(fields) - REFUND_SUMMARY_FIELDS
    if unknown:
        raise ValueError(f"not refund summary fields: {sorted(unknown)}")
    ReturnRequest.objects.filter(pk=return_request.pk, tenant_id=return_request.tenant_id).update(
        **fields, updated_at=now
    )
    for key, value in fields.items():
        setattr(return_request, key, value)


# --------------------------------------------------------------------------
# Notifications
# --------------------------------------------------------------------------
@transaction.atomic
def notification_queue(
    *,
    tenant: Tenant,
    key: str,
    kind: str,
    to_email: str,
    subject: str,
    body_text: str,
    now: datetime,
    body_html: str = "",
    return_request: ReturnRequest | None = None,
) -> tuple[Notification, bool]:
    """Queue an e-mail once per (tenant, key); returns `(notification, created)`.

    A notification without a recipient is stored `suppressed`. The send task
    is enqueued on commit; the sweeper re-enqueues queued rows.
    """
    ensure_same_tenant(tenant, return_request)
    existing = Notification.objects.filter(tenant=tenant, key=key).first()
    if existing is not None:
        return existing, False
    state = NotificationState.QUEUED if to_email else NotificationState.SUPPRESSED
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                tenant=tenant,
                return_request=return_request,
                key=key[:200],
                kind=kind,
                to_email=to_email,
                subject=subject[:300],
                body_text=body_text,
                body_html=body_html,
                state=state,
                created_at=now,
            )
    except IntegrityError:
        return Notification.objects.get(tenant=tenant, key=key), False
    if state == NotificationState.QUEUED:
        enqueue_on_commit(NOTIFICATION_SEND_TASK, notification.pk, tenant.pk)
    return notification, True


def return_request_get(*, tenant: Tenant, token: str) -> ReturnRequest:
    """The tenant's return with this public token; `ReturnRequest.DoesNotExist` for a
    missing and for another tenant's token alike."""
    return ReturnRequest.objects.select_related("order", "tenant").get(tenant=tenant, token=token)


def return_hooks_run_created(return_request: ReturnRequest, *, now: datetime) -> None:
    """Run the registered "return created" hooks (e.g. refunds creates the `Refund`)
    inside the creating transaction. See `rma.hooks`."""
    hooks.run_return_created(return_request, now=now)


def shipment_hooks_run_created(shipment: Shipment, *, now: datetime) -> None:
    """Run the registered "shipment created" hooks inside the creating transaction.

    Every code path that creates a `Shipment` (portal label, API `shipment`,
    `POST /returns/<rma>/shipments/`) calls this right after the insert:
    tracking attaches events it kept for the number, flags the number's check
    digit and schedules the first poll. See `rma.hooks`.
    """
    hooks.run_shipment_created(shipment, now=now)
