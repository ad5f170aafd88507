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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import current_app
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q

from returns_portal.tenancy.models import Tenant
from rma import hooks
from rma.models import (
    ExceptionKind,
    ExceptionState,
    Milestone,
    Notification,
    NotificationState,
    ReturnCentre,
    ReturnException,
    ReturnRequest,
    RmaSequence,
    Shipment,
    ShipmentDirection,
    SlaPolicy,
    SlaTransitRoute,
)
from rma.sla import (
    BusinessCalendar,
    ReturnClock,
    ReturnDueTimes,
    ShipmentClock,
    ShipmentDueTimes,
    SlaTargets,
    return_due_times,
    shipment_due_times,
    transit_business_days,
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
DUE_TIMES_RECOMPUTE_TASK = "returns_portal.due_times_recompute"  # issue 5


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
    """
    ensure_same_tenant(tenant, return_request)
    MilestoneName(name)
    MilestoneSource(source)
    locked = ReturnRequest.objects.select_for_update().get(pk=return_request.pk, tenant=tenant)
    existing = Milestone.objects.filter(tenant=tenant, return_request=locked, name=name).first()
    if existing is not None:
        if not _replaces(existing, reached_at=reached_at, source=source):
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
    due_at: datetime | None = None,
) -> ExceptionResult:
    """Open an exception, or update the open one's reason in place.

    One open exception per (return, shipment, kind) is enforced by a database
    constraint; a concurrent opener loses the insert and gets the existing row.
    An exception resolved by staff for the same `condition_key` is not
    reopened (returns `ExceptionResult(None, False, False)`). `due_at` is when
    the missed target was due or the problem began (default `opened_at`); the
    staff queue lists the oldest first.
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
                due_at=due_at or opened_at,
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
        # The expected refund: the exception queue's "value at risk" (issue 5).
        "expected_refund_amount",
        "expected_refund_currency",
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


# --------------------------------------------------------------------------
# Due times (issue 5). Detection reads these columns through partial indexes
# (STYLE.md "Background work"); these services keep them current. Rules:
# `rma.sla.shipment_due_times` / `return_due_times`; refunds keep
# `Refund.refund_due_at` with `refunds.due_times.refund_due_times_refresh`.
# Lock order, as in ingest: shipment rows (by pk), then the return row.
# --------------------------------------------------------------------------
#: Shipment statuses that mean the carrier has scanned the parcel (DESIGN.md section 5).
SCANNED_STATUSES = frozenset({"accepted", "in_transit", "out_for_delivery", "delivered"})
#: Parcel milestones that mean the parcel reached the return centre.
ARRIVED_MILESTONES = frozenset({"delivered", "received", "inspected"})


def sla_policy_for(tenant_id: int) -> SlaPolicy:
    """The tenant's SLA policy; an unsaved one with the DESIGN.md section 6 defaults if missing."""
    policy = SlaPolicy.objects.filter(tenant_id=tenant_id).first()
    return policy if policy is not None else SlaPolicy(tenant_id=tenant_id)


def sla_targets(policy: SlaPolicy) -> SlaTargets:
    """The policy's targets as the pure `rma.sla.SlaTargets` (hours elapsed, business days)."""
    return SlaTargets(
        first_scan_hours=policy.first_scan_hours,
        transit_domestic_business_days=policy.transit_domestic_business_days,
        transit_international_business_days=policy.transit_international_business_days,
        checkin_hours=policy.checkin_hours,
        inspection_hours=policy.inspection_hours,
        refund_business_days=policy.refund_business_days,
        no_movement_days=policy.no_movement_days,
        claimed_dropoff_scan_hours=policy.claimed_dropoff_scan_hours,
    )


def business_calendar_for(return_request: ReturnRequest) -> BusinessCalendar:
    """The return's business-day calendar (DESIGN.md section 6): its return centre's
    zone, country and subdivision; else the tenant's default return centre's; else
    the tenant's own."""
    centre = return_request.return_centre
    if centre is None:
        centre = ReturnCentre.objects.filter(
            tenant_id=return_request.tenant_id, is_default=True
        ).first()
    if centre is not None:
        return BusinessCalendar(
            time_zone=centre.time_zone, country=centre.country, subdivision=centre.subdivision
        )
    tenant = return_request.tenant
    return BusinessCalendar(
        time_zone=tenant.time_zone, country=tenant.country, subdivision=tenant.subdivision
    )


def _milestones_of(return_request: ReturnRequest) -> dict[str, tuple[datetime, str]]:
    """`{name: (reached_at, source)}` of the return's reached milestones."""
    rows = Milestone.objects.filter(
        tenant_id=return_request.tenant_id, return_request_id=return_request.pk
    ).values_list("name", "reached_at", "source")
    return {name: (at, source) for name, at, source in rows}


def shipment_clock(
    shipment: Shipment, milestones: dict[str, tuple[datetime, str]], *, return_open: bool
) -> ShipmentClock:
    """The facts `rma.sla.shipment_due_times` needs, from a shipment and its return's milestones.

    - label time: the return's `label_created` milestone for the primary inbound
      shipment, else the shipment's `created_at` (when we got the number);
    - first scan: the return's `first_scan` milestone for the primary inbound
      shipment, else `shipped_at` (ingest sets it to the first carrier scan),
      else, when the status shows a scan or `last_scan_at` is set, the
      earliest of `last_scan_at` / `status_at` / `last_event_at` we have;
    - delivered: status `delivered`, or (primary) a delivered/received/inspected milestone.
    """
    inbound = shipment.direction == ShipmentDirection.INBOUND
    primary = inbound and shipment.is_primary
    label_at = shipment.created_at
    if primary and "label_created" in milestones:
        label_at = milestones["label_created"][0]
    first_scan_at = None
    if primary and "first_scan" in milestones:
        first_scan_at = milestones["first_scan"][0]
    elif shipment.shipped_at is not None:
        first_scan_at = shipment.shipped_at
    elif shipment.status in SCANNED_STATUSES or shipment.last_scan_at is not None:
        known = [
            t
            for t in (shipment.last_scan_at, shipment.status_at, shipment.last_event_at)
            if t is not None
        ]
        first_scan_at = min(known) if known else shipment.updated_at
    delivered = shipment.status == "delivered" or (
        primary and bool(ARRIVED_MILESTONES & milestones.keys())
    )
    return ShipmentClock(
        label_created_at=label_at,
        first_scan_at=first_scan_at,
        last_event_at=shipment.last_event_at,
        delivered=delivered,
        active=inbound and return_open,
    )


def transit_routes_of(tenant_id: int) -> dict[tuple[str, str], int]:
    """The tenant's transit routes as `{(origin, destination): business days}`."""
    return {
        (origin.upper(), destination.upper()): days
        for origin, destination, days in SlaTransitRoute.objects.filter(
            tenant_id=tenant_id
        ).values_list("origin_country", "destination_country", "business_days")
    }


@transaction.atomic
def shipment_due_times_refresh(*, shipment: Shipment, now: datetime) -> ShipmentDueTimes:
    """Recompute and store `first_scan_due_at`, `next_event_due_at`, `transit_due_at`.

    **Ingest calls this** after it changes a shipment's status, `last_event_at`,
    `last_scan_at` or `shipped_at` (and after `milestone_reach`), in the same
    transaction. Rules: `rma.sla.shipment_due_times` (label + 72 h while no
    first scan; last event + no-movement days once scanned and not delivered;
    first scan + transit business days on the return centre's calendar while
    not delivered); the route's days come from `SlaTransitRoute` (origin: the
    shipment's `origin_country`, else the order's shipping country;
    destination: the shipment's `destination_country`, else the calendar's
    country), else the policy's domestic/international default. Nothing is due
    for an outbound shipment or on a closed return.

    Locks the shipment row first (so it computes from committed facts), then
    reads the milestones. Idempotent; writes only when a value changes.
    `now` is the caller's clock: due times depend on stored instants only.
    Returns the stored due times (UTC).
    """
    row = (
        Shipment.objects.select_for_update(of=("self",))
        .select_related("return_request__return_centre", "return_request__order", "tenant")
        .get(pk=shipment.pk, tenant_id=shipment.tenant_id)
    )
    rr = row.return_request
    policy = sla_policy_for(row.tenant_id)
    targets = sla_targets(policy)
    calendar = business_calendar_for(rr)
    clock = shipment_clock(row, _milestones_of(rr), return_open=rr.closed_at is None)
    days = transit_business_days(
        origin_country=row.origin_country or rr.order.shipping_country,
        destination_country=row.destination_country,
        home_country=calendar.country,
        routes=transit_routes_of(row.tenant_id) if clock.first_scan_at else {},
        targets=targets,
    )
    due = shipment_due_times(clock, targets=targets, calendar=calendar, transit_business_days=days)
    changes = {
        name: getattr(due, name)
        for name in ("first_scan_due_at", "next_event_due_at", "transit_due_at")
        if getattr(row, name) != getattr(due, name)
    }
    if changes:
        Shipment.objects.filter(pk=row.pk, tenant_id=row.tenant_id).update(**changes)
    for name in ("first_scan_due_at", "next_event_due_at", "transit_due_at"):
        setattr(shipment, name, getattr(due, name))
    return due


@transaction.atomic
def return_due_times_refresh(*, return_request: ReturnRequest, now: datetime) -> ReturnDueTimes:
    """Recompute and store the return's `checkin_due_at`, `inspection_due_at` and
    `dropoff_scan_due_at` (rules: `rma.sla.return_due_times`: delivered + 24 h while
    not received; received + 48 h while not inspected; the customer's drop-off
    claim + 24 h while no carrier scan; nothing on a closed return).

    Locks the return row (callers inside `milestone_reach`'s transaction already
    hold it). Idempotent; writes only when a value changes. Returns the due
    times (UTC). Does not touch shipments: see `return_clock_refresh`.
    """
    locked = (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .get(pk=return_request.pk, tenant_id=return_request.tenant_id)
    )
    milestones = _milestones_of(locked)
    claimed_at = locked.customer_dropoff_claimed_at
    if claimed_at is None and milestones.get("dropped_off", (None, ""))[1] == "customer":
        claimed_at = milestones["dropped_off"][0]
    scanned = "first_scan" in milestones or (
        "dropped_off" in milestones and milestones["dropped_off"][1] == "carrier"
    )
    if not scanned:
        scanned = (
            Shipment.objects.filter(
                tenant_id=locked.tenant_id,
                return_request_id=locked.pk,
                direction=ShipmentDirection.INBOUND,
            )
            .filter(Q(status__in=SCANNED_STATUSES) | Q(last_scan_at__isnull=False))
            .exists()
        )
    clock = ReturnClock(
        is_open=locked.closed_at is None,
        delivered_at=milestones.get("delivered", (None, ""))[0],
        received_at=milestones.get("received", (None, ""))[0],
        inspected="inspected" in milestones,
        first_scan=scanned,
        dropoff_claimed_at=claimed_at,
    )
    due = return_due_times(clock, targets=sla_targets(sla_policy_for(locked.tenant_id)))
    names = ("checkin_due_at", "inspection_due_at", "dropoff_scan_due_at")
    changes = {n: getattr(due, n) for n in names if getattr(locked, n) != getattr(due, n)}
    if changes:
        ReturnRequest.objects.filter(pk=locked.pk, tenant_id=locked.tenant_id).update(**changes)
    for name in names:
        setattr(return_request, name, getattr(due, name))
    return due


@transaction.atomic
def return_clock_refresh(*, return_request: ReturnRequest, now: datetime) -> None:
    """Refresh every due column of a return: its shipments (by pk), then the return.

    The milestone reaction in `returns_portal/workflows.py` calls this on every
    milestone's first reach (refunds refresh their own `refund_due_at`).
    """
    for shipment in Shipment.objects.filter(
        tenant_id=return_request.tenant_id, return_request_id=return_request.pk
    ).order_by("pk"):
        shipment_due_times_refresh(shipment=shipment, now=now)
    return_due_times_refresh(return_request=return_request, now=now)


# --------------------------------------------------------------------------
# Exceptions in bulk (issue 5): the set-based writers detection uses. With
# `exception_open` / `exception_resolve` these are the only writers.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ExceptionCandidate:
    """A condition that holds for one (return, shipment) of a tenant.

    `due_at` is when the missed target was due (or the problem began) and,
    with `reason`, identifies the condition: a staff-resolved exception with the
    same `(due_at, reason)` is not reopened.
    """

    tenant_id: int
    return_request_id: int
    shipment_id: int | None
    due_at: datetime
    reason: str = ""
    detail: str = ""


def exception_condition_key(kind: str, due_at: datetime, reason: str = "") -> str:
    """`<kind>:<due instant, UTC Z>[:<reason>]`, e.g. `no_first_scan:2026-11-12T10:00:00Z`."""
    stamp = due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{kind}:{stamp}" + (f":{reason}" if reason else "")


def _check_candidate_tenants(candidates: Sequence[ExceptionCandidate]) -> None:
    """Raise `TenantMismatch` unless every candidate's return and shipment are its tenant's."""
    expected = {c.return_request_id: c.tenant_id for c in candidates}
    for pk, tenant_id in ReturnRequest.objects.filter(pk__in=expected).values_list(
        "pk", "tenant_id"
    ):
        if expected[pk] != tenant_id:
            raise TenantMismatch(f"return {pk} belongs to tenant {tenant_id}")
    shipments = {c.shipment_id: c for c in candidates if c.shipment_id is not None}
    for pk, tenant_id, rid in Shipment.objects.filter(pk__in=shipments).values_list(
        "pk", "tenant_id", "return_request_id"
    ):
        c = shipments[pk]
        if c.tenant_id != tenant_id or c.return_request_id != rid:
            raise TenantMismatch(f"shipment {pk} is not of return {c.return_request_id}")


@transaction.atomic
def exceptions_open_bulk(
    *, kind: str, candidates: Sequence[ExceptionCandidate], opened_at: datetime
) -> list[int]:
    """Open one `kind` exception per candidate; returns the ids this call opened.

    Skips a candidate whose (return, shipment) already has an open `kind`
    exception, or a staff-resolved one for the same condition (`due_at` and
    `reason`); then `bulk_create(ignore_conflicts=True)` against the one-open
    constraint, so a concurrent opener changes nothing. Every row gets
    `condition_key` from `exception_condition_key`. Raises `TenantMismatch` when a
    candidate's return or shipment is another tenant's. Intended batch size:
    up to a few thousand candidates (one query per kind of check).
    """
    ExceptionKind(kind)
    if not candidates:
        return []
    _check_candidate_tenants(candidates)
    return_ids = {c.return_request_id for c in candidates}
    open_keys: set[tuple[int, int]] = set()
    staff_keys: set[tuple[int, int, datetime | None, str]] = set()
    for rid, sid, state, due, reason in (
        ReturnException.objects.filter(return_request_id__in=return_ids, kind=kind)
        .filter(Q(state=ExceptionState.OPEN) | Q(resolved_by_staff=True))
        .values_list("return_request_id", "shipment_id", "state", "due_at", "reason")
    ):
        if state == ExceptionState.OPEN:
            open_keys.add((rid, sid or 0))
        else:
            staff_keys.add((rid, sid or 0, due, reason))
    rows: list[ReturnException] = []
    for c in candidates:
        key = (c.return_request_id, c.shipment_id or 0)
        if key in open_keys or (*key, c.due_at, c.reason) in staff_keys:
            continue
        open_keys.add(key)
        rows.append(
            ReturnException(
                tenant_id=c.tenant_id,
                return_request_id=c.return_request_id,
                shipment_id=c.shipment_id,
                kind=kind,
                reason=c.reason[:100],
                detail=c.detail[:500],
                condition_key=exception_condition_key(kind, c.due_at, c.reason)[:100],
                due_at=c.due_at,
                opened_at=opened_at,
                created_at=opened_at,
                updated_at=opened_at,
            )
        )
    if not rows:
        return []
    ReturnException.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    # ignore_conflicts returns no ids: read back the open rows we just wrote
    # (same kind, key and opened_at; a concurrent opener's row differs in time).
    wanted = {(r.return_request_id, r.shipment_id or 0) for r in rows}
    opened = ReturnException.objects.filter(
        return_request_id__in={r.return_request_id for r in rows},
        kind=kind,
        state=ExceptionState.OPEN,
        opened_at=opened_at,
    ).values_list("pk", "return_request_id", "shipment_id")
    return sorted(pk for pk, rid, sid in opened if (rid, sid or 0) in wanted)


def _condition_key_sql(vendor: str, due: str, reason: str) -> str:
    """SQL for `exception_condition_key(kind, due, reason)`; the kind is the one `%s` param.

    PostgreSQL formats the timestamptz in UTC with `to_char`; SQLite stores UTC
    text, formatted with `strftime` (`%%` because the SQL goes through params).
    """
    if vendor == "postgresql":
        stamp = f"""to_char({due} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
    elif vendor == "sqlite":
        stamp = f"strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', {due})"
    else:
        raise NotImplementedError(f"condition keys in SQL for {vendor}")
    suffix = f"CASE WHEN {reason} <> '' THEN ':' || {reason} ELSE '' END"
    return f"substr(%s || ':' || {stamp} || {suffix}, 1, 100)"


#: The candidate columns `exceptions_open_from_query` reads (see `rma.detection`).
CANDIDATE_COLUMNS = ("x_tenant_id", "x_return_id", "x_shipment_id", "x_due", "x_reason", "x_detail")


@transaction.atomic
def exceptions_open_from_query(
    *, kind: str, candidates: models.QuerySet, opened_at: datetime, limit: int
) -> list[int]:
    """Open a `kind` exception for each of the first `limit` rows (by primary key) of
    `candidates`, in one `INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING id`;
    returns the ids this statement inserted.

    `candidates` is a queryset annotated with `CANDIDATE_COLUMNS` (tenant, return,
    shipment or null, `due_at`, reason, detail), normally `rma.detection.pending_candidates`,
    which already leaves out rows with an open exception of the kind or a
    staff-resolved one for the same condition. The rows come from one table row
    each, so return, shipment and tenant agree by construction. The one-open
    constraint makes a concurrent or repeated opener insert nothing. Every other
    column gets its model default; `condition_key` is `exception_condition_key`'s.
    PostgreSQL and SQLite (3.35+).
    """
    ExceptionKind(kind)
    inner = (
        candidates.annotate(x_tenant_id=F("tenant_id"))
        .order_by("pk")
        .values_list(*CANDIDATE_COLUMNS)[:limit]
    )
    inner_sql, inner_params = inner.query.sql_with_params()
    vendor = connection.vendor
    stamp = connection.ops.adapt_datetimefield_value(opened_at)
    given: dict[str, tuple[str, list[Any]]] = {
        "tenant_id": ("c.x_tenant_id", []),
        "return_request_id": ("c.x_return_id", []),
        "shipment_id": ("c.x_shipment_id", []),
        "kind": ("%s", [kind]),
        "state": ("%s", [ExceptionState.OPEN.value]),
        "reason": ("substr(c.x_reason, 1, 100)", []),
        "detail": ("substr(c.x_detail, 1, 500)", []),
        "condition_key": (_condition_key_sql(vendor, "c.x_due", "c.x_reason"), [kind]),
        "due_at": ("c.x_due", []),
        "opened_at": ("%s", [stamp]),
        "created_at": ("%s", [stamp]),
        "updated_at": ("%s", [stamp]),
    }
    columns, exprs, params = [], [], []
    for field in ReturnException._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in given:
            expr, expr_params = given[field.column]
        else:
            expr, expr_params = "%s", [field.get_db_prep_save(field.get_default(), connection)]
        exprs.append(expr)
        params.extend(expr_params)
    table = connection.ops.quote_name(ReturnException._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (names from the model)
        f"SELECT {', '.join(exprs)} FROM ({inner_sql}) AS c WHERE 1 = 1 "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *inner_params])
        return sorted(row[0] for row in cursor.fetchall())


@transaction.atomic
def exceptions_resolve_bulk(
    *, exception_ids: Sequence[int], resolution_code: str, resolved_at: datetime
) -> int:
    """Resolve the open ones among `exception_ids` automatically (condition cleared).

    `resolution_code` says why, `auto:<why>` (e.g. `auto:first_scan`). Not
    marked as staff-resolved, so the condition may open a new exception if it
    comes back. Returns how many this call resolved (already resolved: skipped).
    """
    if not exception_ids:
        return 0
    return ReturnException.objects.filter(
        pk__in=list(exception_ids), state=ExceptionState.OPEN
    ).update(
        state=ExceptionState.RESOLVED,
        resolved_at=resolved_at,
        resolution_code=resolution_code[:50],
        resolved_by_staff=False,
        updated_at=resolved_at,
    )


@dataclass(frozen=True)
class ExceptionChange:
    """A new reason and/or condition instant for an open exception (updated in place)."""

    exception_id: int
    reason: str
    due_at: datetime


@transaction.atomic
def exceptions_update_bulk(*, kind: str, changes: Sequence[ExceptionChange], now: datetime) -> int:
    """Update open `kind` exceptions in place: reason, `due_at` and `condition_key`
    (a carrier exception whose reason changed stays the same exception, DESIGN.md
    section 5). Returns how many rows changed."""
    if not changes:
        return 0
    by_id = {c.exception_id: c for c in changes}
    rows = list(
        ReturnException.objects.filter(pk__in=by_id, kind=kind, state=ExceptionState.OPEN).only(
            "pk", "reason", "due_at", "condition_key"
        )
    )
    changed = []
    for row in rows:
        c = by_id[row.pk]
        key = exception_condition_key(kind, c.due_at, c.reason)[:100]
        if (row.reason, row.due_at, row.condition_key) != (c.reason, c.due_at, key):
            row.reason, row.due_at, row.condition_key, row.updated_at = c.reason, c.due_at, key, now
            changed.append(row)
    ReturnException.objects.bulk_update(
        changed, ["reason", "due_at", "condition_key", "updated_at"], batch_size=1000
    )
    return len(changed)
