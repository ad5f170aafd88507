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

Orders (the CSV import and the API) are written by `rma.order_services`;
check-in and inspection by `rma.warehouse`; the staff queue's actions by
`rma.exception_services`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from returns_portal.tenancy.models import Tenant
from returns_portal.tenancy.services import tenant_absolute_url
from rma import hooks
from rma.carriers import is_known_carrier, normalize_tracking_number
from rma.models import (
    Customer,
    ExceptionKind,
    ExceptionState,
    LabelState,
    LineResolution,
    Milestone,
    Notification,
    NotificationState,
    Order,
    OrderLine,
    ReturnCentre,
    ReturnException,
    ReturnLine,
    ReturnMethod,
    ReturnPhoto,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    RmaSequence,
    Shipment,
    ShipmentDirection,
    SlaTransitRoute,
)
from rma.photos import MAX_PHOTOS_PER_LINE, ProcessedPhoto
from rma.selectors import (  # re-exported: other apps take the SLA clock from rma.services
    business_calendar_for,
    order_eligibility,
    sla_policy_for,
    sla_targets,
    within_field_bounds,
)
from rma.sla import (
    ReturnClock,
    ReturnDueTimes,
    ShipmentClock,
    ShipmentDueTimes,
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
    # NO KEY UPDATE: rows that merely reference the return (FK checks take KEY
    # SHARE) are not blocked, which avoids deadlocks with concurrent inserts.
    locked = ReturnRequest.objects.select_for_update(no_key=True).get(
        pk=return_request.pk, tenant=tenant
    )
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
@dataclass(frozen=True)
class MilestoneClaim:
    """Milestones of one return whose reactions a dispatch now owns."""

    return_request: ReturnRequest
    names: frozenset[str]
    milestone_ids: tuple[int, ...]


def milestones_claim_owed(*, milestone_id: int, now: datetime) -> MilestoneClaim | None:
    """Claim the reactions owed for `milestone_id` together with every other milestone of
    its return still owed (`dispatched_at` null), setting `dispatched_at = now` on all
    of them. None when the milestone is gone or already dispatched (by an earlier
    claim that took it along).

    Reactions read the return's state, not one milestone, so one run per batch does
    the work of one run per milestone: ingest reaches two or three milestones at once.
    Call inside the dispatch transaction; a rollback returns the claim. Lock order as
    in `milestone_reach`: the return row (FOR NO KEY UPDATE), then its milestone rows.
    """
    return_request_id = (
        Milestone.objects.filter(pk=milestone_id, dispatched_at__isnull=True)
        .values_list("return_request_id", flat=True)
        .first()
    )
    if return_request_id is None:
        return None
    return_request = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tenant")
        .get(pk=return_request_id)
    )
    owed = list(
        Milestone.objects.select_for_update()
        .filter(return_request_id=return_request_id, dispatched_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "name")
    )
    ids = tuple(pk for pk, _name in owed)
    if milestone_id not in ids:
        return None
    Milestone.objects.filter(pk__in=ids).update(dispatched_at=now)
    return MilestoneClaim(
        return_request=return_request,
        names=frozenset(name for _pk, name in owed),
        milestone_ids=ids,
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
        "refund_estimate_texts",
        "refund_rule_snapshot",
        # The expected refund: the exception queue's "value at risk" (issue 5).
        "expected_refund_amount",
        "expected_refund_currency",
    }
)


def return_refund_summary_update(
    *, return_request: ReturnRequest, now: datetime, **fields: Any
) -> None:
    """Write the return's refund summary (state, estimate, rule snapshot) for the portal.
    A new `refund_estimate_text` without `refund_estimate_texts` drops the stale
    per-language texts."""
    if "refund_estimate_text" in fields:
        fields.setdefault("refund_estimate_texts", {})
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
# Returns: creation (portal and API), labels, drop-off claims, shipments
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ReturnLineInput:
    """One requested line: the order line by its public `line_id` or its `sku`."""

    quantity: int
    reason: str
    line_id: str = ""
    sku: str = ""
    note: str = ""
    #: `refund` (default) or `exchange`; an exchange names the wanted variant's SKU.
    resolution: str = "refund"
    exchange_sku: str = ""


@dataclass(frozen=True)
class PickupInput:
    """A pickup request: address as printed, window as aware datetimes."""

    address: str
    window_start: datetime | None
    window_end: datetime | None


@dataclass(frozen=True)
class ShipmentInput:
    """A label the merchant bought elsewhere: carrier code and tracking number."""

    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class Refusal:
    """Why a return cannot be created: `field` is the input path (`lines.1.quantity`,
    `email`, `pickup.address`, ...), `code` a stable error code, `line` the
    index of the line concerned (or None)."""

    field: str
    code: str
    message: str
    line: int | None = None


class ReturnRefused(ValidationError):
    """`return_request_create` refused; nothing was written. `refusals` lists every
    reason found; as a Django `ValidationError` its `message_dict` is keyed by
    the refusals' fields."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = list(refusals)
        errors: dict[str, list[ValidationError]] = {}
        for refusal in self.refusals:
            errors.setdefault(refusal.field, []).append(
                ValidationError(refusal.message, code=refusal.code)
            )
        super().__init__(errors)


MAX_NOTE_LENGTH = 2000
#: A pickup starts within this much of the request and its window lasts at most
#: `PICKUP_WINDOW_MAX` (carriers book pickups days ahead, for a day's window).
PICKUP_BOOKING_HORIZON = timedelta(days=30)
PICKUP_WINDOW_MAX = timedelta(days=7)
_TRACKING_NUMBER = re.compile(r"^[A-Z0-9]{4,64}$")


def _static_refusals(
    *,
    lines: list[ReturnLineInput],
    method: str,
    pickup: PickupInput | None,
    shipment: ShipmentInput | None,
    policy: ReturnPolicy,
    reasons: dict[str, ReturnReason],
    photos: dict[int, list[ProcessedPhoto]],
    now: datetime,
) -> list[Refusal]:
    """Checks that need no lock: shapes, reasons, method, pickup, shipment."""
    refusals: list[Refusal] = []
    if not lines:
        refusals.append(Refusal("lines", "no_lines", _("Choose at least one item to return.")))
    for i, line in enumerate(lines):
        if not line.line_id and not line.sku:
            refusals.append(Refusal(f"lines.{i}.line_id", "required", _("Give line_id or sku."), i))
        if not isinstance(line.quantity, int) or line.quantity < 1:
            refusals.append(
                Refusal(
                    f"lines.{i}.quantity", "invalid_quantity", _("Quantity must be at least 1."), i
                )
            )
        reason = reasons.get(line.reason)
        if reason is None:
            refusals.append(
                Refusal(f"lines.{i}.reason", "unknown_reason", _("Choose a return reason."), i)
            )
        elif reason.requires_photo and not photos.get(i):
            refusals.append(
                Refusal(
                    f"lines.{i}.photos",
                    "photo_required",
                    _("Please add a photo for “%(reason)s”.") % {"reason": _(reason.label)},
                    i,
                )
            )
        if len(photos.get(i, [])) > MAX_PHOTOS_PER_LINE:
            refusals.append(
                Refusal(
                    f"lines.{i}.photos",
                    "too_many_photos",
                    _("At most %(n)d photos per item.") % {"n": MAX_PHOTOS_PER_LINE},
                    i,
                )
            )
        if len(line.note or "") > MAX_NOTE_LENGTH:
            refusals.append(
                Refusal(f"lines.{i}.note", "note_too_long", _("The note is too long."), i)
            )
        # Customers choose a refund, store credit (DESIGN.md section 4; a return whose
        # lines all ask for it is paid in store credit, with the rule's bonus) or an
        # exchange for another variant (issue 6).
        if line.resolution not in LineResolution.values:
            refusals.append(
                Refusal(
                    f"lines.{i}.resolution",
                    "invalid_resolution",
                    _("Choose a refund, store credit or an exchange."),
                    i,
                )
            )
        elif line.resolution == LineResolution.EXCHANGE:
            wanted = (line.exchange_sku or "").strip()
            if not wanted or len(wanted) > 255:
                refusals.append(
                    Refusal(
                        f"lines.{i}.exchange_sku",
                        "exchange_sku_required",
                        _("Tell us which size or colour you want instead."),
                        i,
                    )
                )
    if method not in ReturnMethod.values:
        refusals.append(Refusal("method", "invalid_method", _("Choose drop-off or pickup.")))
    elif method == ReturnMethod.PICKUP:
        if not policy.pickup_enabled:
            refusals.append(
                Refusal(
                    "method", "pickup_unavailable", _("Pickup isn't available; please drop off.")
                )
            )
        elif pickup is None or not (pickup.address or "").strip():
            refusals.append(Refusal("pickup.address", "required", _("Enter the pickup address.")))
        if policy.pickup_enabled and pickup is not None:
            start, end = pickup.window_start, pickup.window_end
            if start is None or end is None:
                refusals.append(
                    Refusal("pickup.window_start", "required", _("Choose a pickup time window."))
                )
            elif not start < end:
                refusals.append(
                    Refusal(
                        "pickup.window_end",
                        "invalid_window",
                        _("The pickup window must end after it starts."),
                    )
                )
            elif start < now:
                refusals.append(
                    Refusal(
                        "pickup.window_start",
                        "window_in_past",
                        _("The pickup window must be in the future."),
                    )
                )
            elif start > now + PICKUP_BOOKING_HORIZON:
                refusals.append(
                    Refusal(
                        "pickup.window_start",
                        "window_too_far",
                        _("The pickup must start within %(n)d days.")
                        % {"n": PICKUP_BOOKING_HORIZON.days},
                    )
                )
            elif end - start > PICKUP_WINDOW_MAX:
                refusals.append(
                    Refusal(
                        "pickup.window_end",
                        "window_too_long",
                        _("A pickup window can be at most %(n)d days long.")
                        % {"n": PICKUP_WINDOW_MAX.days},
                    )
                )
    if shipment is not None:
        if not is_known_carrier(shipment.carrier):
            refusals.append(
                Refusal("shipment.carrier", "unknown_carrier", _("Unknown carrier code."))
            )
        if not _TRACKING_NUMBER.match(normalize_tracking_number(shipment.tracking_number)):
            refusals.append(
                Refusal(
                    "shipment.tracking_number",
                    "invalid_tracking_number",
                    _("Give the tracking number (4 to 64 letters and digits)."),
                )
            )
    return refusals


def _resolve_lines(
    lines: list[ReturnLineInput], order_lines: list[OrderLine]
) -> tuple[dict[int, OrderLine], list[Refusal]]:
    """Map each input line to its order line by `line_id`, else `sku` (exact, then
    case-insensitive). A SKU matching two lines is `ambiguous_sku`."""
    by_id = {ol.line_id: ol for ol in order_lines}
    resolved: dict[int, OrderLine] = {}
    refusals: list[Refusal] = []
    for i, line in enumerate(lines):
        if line.line_id:
            found = by_id.get(line.line_id)
            if found is None:
                refusals.append(
                    Refusal(
                        f"lines.{i}.line_id",
                        "unknown_line",
                        _("This order has no line %(id)s.") % {"id": line.line_id},
                        i,
                    )
                )
                continue
            resolved[i] = found
        elif line.sku:
            wanted = line.sku.strip().lower()
            matches = [ol for ol in order_lines if (ol.sku or "").strip().lower() == wanted]
            if len(matches) > 1:
                refusals.append(
                    Refusal(
                        f"lines.{i}.sku",
                        "ambiguous_sku",
                        _("SKU %(sku)s matches %(n)d lines of this order; give line_id.")
                        % {"sku": line.sku, "n": len(matches)},
                        i,
                    )
                )
            elif not matches:
                refusals.append(
                    Refusal(
                        f"lines.{i}.sku",
                        "unknown_line",
                        _("This order has no item with SKU %(sku)s.") % {"sku": line.sku},
                        i,
                    )
                )
            else:
                resolved[i] = matches[0]
    seen: dict[int, int] = {}
    for i, ol in resolved.items():
        if ol.pk in seen:
            refusals.append(
                Refusal(
                    f"lines.{i}.line_id",
                    "duplicate_line",
                    _("This item is already in the return (line %(n)d).") % {"n": seen[ol.pk]},
                    i,
                )
            )
        else:
            seen[ol.pk] = i
        line = lines[i]
        if (
            line.resolution == LineResolution.EXCHANGE
            and (line.exchange_sku or "").strip().lower() == (ol.sku or "").strip().lower()
        ):
            refusals.append(
                Refusal(
                    f"lines.{i}.exchange_sku",
                    "same_variant",
                    _("Choose a different size or colour than the one you return."),
                    i,
                )
            )
    return resolved, refusals


def _email_matches(order: Order, email: str) -> bool:
    return bool(order.email) and order.email.strip().lower() == (email or "").strip().lower()


def _confirmation_queue(*, tenant: Tenant, return_request: ReturnRequest, now: datetime) -> None:
    """The confirmation e-mail with the tracking link (MISSION: the link in every e-mail)."""
    tracking_url = tenant_absolute_url(tenant, f"/r/{return_request.token}/")
    with translation.override(return_request.language or "en"):
        context = {
            "tenant": tenant,
            "return_request": return_request,
            "tracking_url": tracking_url,
            "label_url": tenant_absolute_url(tenant, f"/r/{return_request.token}/label.pdf"),
        }
        subject = _("Your return %(rma)s for order %(order)s") % {
            "rma": return_request.rma_number,
            "order": return_request.order.number,
        }
        body = render_to_string("emails/return_confirmation.txt", context)
    notification_queue(
        tenant=tenant,
        key=f"return_confirmation:{return_request.pk}",
        kind="return_confirmation",
        to_email=return_request.email,
        subject=subject,
        body_text=body,
        now=now,
        return_request=return_request,
    )


@transaction.atomic
def return_request_create(
    *,
    tenant: Tenant,
    order: Order | None,
    email: str,
    lines: list[ReturnLineInput],
    method: str,
    pickup: PickupInput | None = None,
    photos: dict[int, list[ProcessedPhoto]] | None = None,
    shipment: ShipmentInput | None = None,
    submission_key: str = "",
    source: str,
    now: datetime,
    language: str = "en",
) -> ReturnRequest:
    """Create a return (RMA) for `order` (DESIGN.md section 8 step 2; issue 3).

    - `lines`: what comes back, each by `line_id` or `sku`; `photos`: already
      processed photos (`rma.photos.photo_process`) by line index.
    - `source`: `customer` (portal) or `api`; it becomes the `requested`
      milestone's source.
    - `shipment`: a label bought elsewhere; written with `label_created`
      (source `api`) in this transaction. Without it a `Shipment` of the
      policy's `label_carrier` is created with `label_state=pending`; the
      caller buys it after the commit (`rma.labels.labels_purchase_for_return`).
    - `submission_key`: a double submit with the same key answers the first
      return (unique per tenant).

    Validates everything (policy, quantity left, window, final sale, photos,
    order and e-mail) and raises `ReturnRefused` naming each line and reason,
    writing nothing. Locks the order row first (lock order: order, return,
    refund), so concurrent submissions never return more units than are
    left; allocates the RMA number; writes the return, lines, photos, the
    `requested` milestone, the shipment, the confirmation e-mail
    (`return_confirmation:<id>`) and runs the return-created hooks (the
    `Refund`). Photo files written before a failure are deleted.
    """
    photos = photos or {}
    if source not in (MilestoneSource.CUSTOMER, MilestoneSource.API):
        raise ValueError(f"source must be customer or api, not {source!r}")
    if order is None:
        raise ReturnRefused(
            [Refusal("order_number", "order_not_found", _("No order with this number."))]
        )
    ensure_same_tenant(tenant, order)
    if not _email_matches(order, email):
        raise ReturnRefused(
            [Refusal("email", "email_mismatch", _("This e-mail doesn't match the order."))]
        )
    if submission_key:
        first = _submission_first(tenant=tenant, order=order, submission_key=submission_key)
        if first is not None:
            return first
    policy = ReturnPolicy.objects.filter(tenant=tenant).first() or ReturnPolicy(tenant=tenant)
    reasons = {r.code: r for r in ReturnReason.objects.filter(tenant=tenant, active=True)}
    refusals = _static_refusals(
        lines=lines,
        method=method,
        pickup=pickup,
        shipment=shipment,
        policy=policy,
        reasons=reasons,
        photos=photos,
        now=now,
    )
    locked = Order.objects.select_for_update().get(pk=order.pk, tenant=tenant)
    if submission_key:
        # A twin that held the lock before us has committed by now.
        first = _submission_first(tenant=tenant, order=locked, submission_key=submission_key)
        if first is not None:
            return first
    eligibility = order_eligibility(tenant=tenant, order=locked, now=now)
    by_line_id = eligibility.by_line_id()
    resolved, line_refusals = _resolve_lines(lines, [el.line for el in eligibility.lines])
    refusals.extend(line_refusals)
    for i, order_line in resolved.items():
        verdict = by_line_id[order_line.line_id].eligibility
        quantity = lines[i].quantity
        if not verdict.eligible:
            refusals.append(Refusal(f"lines.{i}.quantity", str(verdict.reason), verdict.message, i))
        elif isinstance(quantity, int) and quantity > verdict.returnable_quantity:
            refusals.append(
                Refusal(
                    f"lines.{i}.quantity",
                    "quantity_exceeds",
                    ngettext(
                        "Only %(n)d unit of this item is left to return.",
                        "Only %(n)d units of this item are left to return.",
                        verdict.returnable_quantity,
                    )
                    % {"n": verdict.returnable_quantity},
                    i,
                )
            )
    normalized_number = normalize_tracking_number(shipment.tracking_number) if shipment else ""
    if (
        shipment is not None
        and normalized_number
        and Shipment.objects.filter(
            tenant=tenant, carrier=shipment.carrier.lower(), tracking_number=normalized_number
        ).exists()
    ):
        refusals.append(
            Refusal(
                "shipment.tracking_number",
                "tracking_number_in_use",
                _("This tracking number belongs to another return."),
            )
        )
    if refusals:
        raise ReturnRefused(refusals)

    written: list[str] = []
    try:
        return _return_write(
            tenant=tenant,
            order=locked,
            email=email,
            lines=lines,
            resolved=resolved,
            method=method,
            pickup=pickup,
            photos=photos,
            shipment=shipment,
            normalized_number=normalized_number,
            policy=policy,
            submission_key=submission_key,
            source=source,
            now=now,
            language=language,
            written=written,
        )
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise


def _submission_first(*, tenant: Tenant, order: Order, submission_key: str) -> ReturnRequest | None:
    first = ReturnRequest.objects.filter(tenant=tenant, submission_key=submission_key).first()
    if first is not None and first.order_id != order.pk:
        raise ReturnRefused(
            [Refusal("submission_key", "submission_key_reused", _("This form was already used."))]
        )
    return first


def _return_write(
    *,
    tenant: Tenant,
    order: Order,
    email: str,
    lines: list[ReturnLineInput],
    resolved: dict[int, OrderLine],
    method: str,
    pickup: PickupInput | None,
    photos: dict[int, list[ProcessedPhoto]],
    shipment: ShipmentInput | None,
    normalized_number: str,
    policy: ReturnPolicy,
    submission_key: str,
    source: str,
    now: datetime,
    language: str,
    written: list[str],
) -> ReturnRequest:
    centre = ReturnCentre.objects.filter(tenant=tenant, is_default=True).first()
    customer = order.customer
    if customer is None:
        customer, _created = Customer.objects.get_or_create(
            tenant=tenant, email_normalized=Customer.normalize_email(email)
        )
    rr = ReturnRequest.objects.create(
        tenant=tenant,
        rma_number=rma_number_allocate(tenant=tenant),
        order=order,
        customer=customer,
        return_centre=centre,
        email=Customer.normalize_email(email),
        method=method,
        pickup_address=(pickup.address.strip() if pickup and method == "pickup" else ""),
        pickup_window_start=pickup.window_start if pickup and method == "pickup" else None,
        pickup_window_end=pickup.window_end if pickup and method == "pickup" else None,
        language=(language or "en")[:10],
        submission_key=submission_key[:64],
        created_at=now,
        updated_at=now,
    )
    for i, line in enumerate(lines):
        return_line = ReturnLine.objects.create(
            tenant=tenant,
            return_request=rr,
            order_line=resolved[i],
            quantity=line.quantity,
            reason=line.reason,
            note=(line.note or "").strip(),
            resolution=line.resolution,
            exchange_sku=(line.exchange_sku or "").strip()
            if line.resolution == LineResolution.EXCHANGE
            else "",
        )
        for photo in photos.get(i, []):
            record = ReturnPhoto(
                tenant=tenant,
                return_line=return_line,
                content_type=photo.content_type,
                width=photo.width,
                height=photo.height,
                size_bytes=photo.size_bytes,
                created_at=now,
            )
            record.file.save(f"photo.{photo.extension}", ContentFile(photo.content), save=False)
            written.append(record.file.name)
            record.save()
    milestone_reach(
        tenant=tenant,
        return_request=rr,
        name=MilestoneName.REQUESTED,
        reached_at=now,
        source=source,
        now=now,
    )
    if shipment is not None:
        _merchant_shipment_create(
            tenant=tenant,
            return_request=rr,
            carrier=shipment.carrier.strip().lower(),
            tracking_number=normalized_number,
            is_primary=True,
            source=MilestoneSource.API,
            now=now,
        )
    else:
        carrier = (policy.label_carrier or "sandbox").strip().lower()
        Shipment.objects.create(
            tenant=tenant,
            return_request=rr,
            carrier=carrier,
            tracking_provider=carrier,
            tracking_number="",
            label_state=LabelState.PENDING,
            created_at=now,
            updated_at=now,
        )
    return_hooks_run_created(rr, now=now)
    _confirmation_queue(tenant=tenant, return_request=rr, now=now)
    rr.refresh_from_db()
    return rr


@transaction.atomic
def shipment_label_store(*, shipment: Shipment, outcome: Any, now: datetime) -> Shipment:
    """Store a label provider's answer (`rma.labels.LabelOutcome`) on a pending shipment.

    - `ready`: the PDF goes to `Shipment.label_file` (per-tenant path), the
      tracking number (normalized) and provider are set, `label_state=ready`,
      and the return reaches `label_created` (source `system`).
    - `failed`: `label_state=failed` with the reason.
    - `pending`: one more attempt counted and the next try scheduled
      (`label_next_attempt_at`); after `rma.labels.MAX_ATTEMPTS` it fails.

    Conditional on the shipment still being `pending`: a second answer for
    the same shipment changes nothing (its file is deleted). A tracking
    number already used by another shipment of the tenant fails the label.
    """
    from rma.labels import MAX_ATTEMPTS, LabelStatus, retry_delay

    pending = Shipment.objects.filter(
        pk=shipment.pk, tenant_id=shipment.tenant_id, label_state=LabelState.PENDING
    )
    if outcome.status == LabelStatus.READY:
        holder = Shipment(pk=shipment.pk, tenant_id=shipment.tenant_id)
        holder.label_file.save("label.pdf", ContentFile(outcome.pdf), save=False)
        name = holder.label_file.name
        try:
            with transaction.atomic():
                updated = pending.update(
                    label_state=LabelState.READY,
                    label_file=name,
                    tracking_number=normalize_tracking_number(outcome.tracking_number),
                    tracking_provider=(outcome.tracking_provider or shipment.carrier).lower(),
                    label_error="",
                    label_next_attempt_at=None,
                    updated_at=now,
                )
        except IntegrityError:
            default_storage.delete(name)
            pending.update(
                label_state=LabelState.FAILED,
                label_error="tracking number already used by another shipment",
                updated_at=now,
            )
            shipment.refresh_from_db()
            return shipment
        if not updated:
            default_storage.delete(name)
            shipment.refresh_from_db()
            return shipment
        rr = ReturnRequest.objects.select_related("tenant").get(pk=shipment.return_request_id)
        milestone_reach(
            tenant=rr.tenant,
            return_request=rr,
            name=MilestoneName.LABEL_CREATED,
            reached_at=now,
            source=MilestoneSource.SYSTEM,
            now=now,
        )
        # The shipment has its number now: tracking schedules its first poll.
        shipment.refresh_from_db()
        shipment_hooks_run_created(shipment, now=now)
    elif outcome.status == LabelStatus.FAILED:
        if pending.update(
            label_state=LabelState.FAILED, label_error=outcome.reason[:500], updated_at=now
        ):
            _label_failed_notify(shipment=shipment, reason=outcome.reason, now=now)
    else:
        current = pending.values_list("label_attempts", flat=True).first()
        if current is not None:
            attempts = current + 1
            if attempts >= MAX_ATTEMPTS:
                if pending.update(
                    label_state=LabelState.FAILED,
                    label_attempts=attempts,
                    label_error=f"no label after {attempts} tries: {outcome.reason}"[:500],
                    updated_at=now,
                ):
                    _label_failed_notify(
                        shipment=shipment, reason=f"no label after {attempts} tries", now=now
                    )
            else:
                pending.update(
                    label_attempts=attempts,
                    label_next_attempt_at=now + retry_delay(attempts),
                    label_error=outcome.reason[:500],
                    updated_at=now,
                )
    shipment.refresh_from_db()
    return shipment


def _label_failed_notify(*, shipment: Shipment, reason: str, now: datetime) -> None:
    """Tell the tenant's support address that a label could not be bought, so a
    person sends the customer one (the portal promises it). Once per shipment."""
    rr = ReturnRequest.objects.select_related("tenant", "order").get(
        pk=shipment.return_request_id, tenant_id=shipment.tenant_id
    )
    tenant = rr.tenant
    notification_queue(
        tenant=tenant,
        key=f"label_failed:{shipment.pk}",
        kind="label_failed",
        to_email=tenant.support_email,
        subject=f"Label needed for {rr.rma_number} (order {rr.order.number})",
        body_text=(
            f"The {shipment.carrier} label for return {rr.rma_number} could not be bought: {reason}.\n"
            f"The customer ({rr.email}) was told we will e-mail a label. Buy one and attach its "
            f"tracking number with POST /api/v1/returns/{rr.rma_number}/shipments/, then send "
            "the customer the label.\n"
        ),
        now=now,
        return_request=rr,
    )


class DropoffClaimRefused(ValueError):
    """The return is not waiting for a drop-off (no label yet, already scanned, or closed)."""


@transaction.atomic
def return_dropoff_claim(
    *, tenant: Tenant, return_request: ReturnRequest, now: datetime
) -> ReturnRequest:
    """Record the customer's "I've dropped it off" (DESIGN.md section 5).

    Sets `customer_dropoff_claimed_at` (first claim only) and reaches
    `dropped_off` with source `customer`; a later carrier acceptance replaces
    it. Idempotent. Raises `DropoffClaimRefused` before the label exists,
    once the carrier has scanned the parcel, or when the return is closed.
    """
    ensure_same_tenant(tenant, return_request)
    # NO KEY UPDATE: rows that merely reference the return (FK checks take KEY
    # SHARE) are not blocked, which avoids deadlocks with concurrent inserts.
    locked = ReturnRequest.objects.select_for_update(no_key=True).get(
        pk=return_request.pk, tenant=tenant
    )
    reached = set(
        Milestone.objects.filter(tenant=tenant, return_request=locked).values_list(
            "name", flat=True
        )
    )
    if locked.is_closed or "label_created" not in reached or "first_scan" in reached:
        raise DropoffClaimRefused(locked.rma_number)
    if locked.customer_dropoff_claimed_at is None:
        ReturnRequest.objects.filter(pk=locked.pk).update(
            customer_dropoff_claimed_at=now, updated_at=now
        )
    milestone_reach(
        tenant=tenant,
        return_request=locked,
        name=MilestoneName.DROPPED_OFF,
        reached_at=now,
        source=MilestoneSource.CUSTOMER,
        now=now,
        actor="customer",
    )
    locked.refresh_from_db()
    return locked


@transaction.atomic
def shipment_attach(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    carrier: str,
    tracking_number: str,
    now: datetime,
    source: str = MilestoneSource.API,
) -> tuple[Shipment, bool]:
    """Attach a parcel the merchant shipped with `carrier` / `tracking_number`.

    Returns `(shipment, created)`; the same number on the same return answers
    the existing shipment. It becomes the primary inbound shipment when the
    current primary has no tracking number (a label still pending or
    failed). Reaches `label_created` with `source` (DESIGN.md section 5: "when
    we were given the number"). Raises `ReturnRefused` for an unknown carrier,
    a malformed number or a number used by another return of the tenant.
    """
    ensure_same_tenant(tenant, return_request)
    code = (carrier or "").strip().lower()
    number = normalize_tracking_number(tracking_number)
    refusals = []
    if not is_known_carrier(code):
        refusals.append(Refusal("carrier", "unknown_carrier", _("Unknown carrier code.")))
    if not _TRACKING_NUMBER.match(number):
        refusals.append(
            Refusal(
                "tracking_number",
                "invalid_tracking_number",
                _("Give the tracking number (4 to 64 letters and digits)."),
            )
        )
    if refusals:
        raise ReturnRefused(refusals)
    # NO KEY UPDATE: rows that merely reference the return (FK checks take KEY
    # SHARE) are not blocked, which avoids deadlocks with concurrent inserts.
    locked = ReturnRequest.objects.select_for_update(no_key=True).get(
        pk=return_request.pk, tenant=tenant
    )
    existing = Shipment.objects.filter(tenant=tenant, carrier=code, tracking_number=number).first()
    if existing is not None:
        if existing.return_request_id != locked.pk:
            raise ReturnRefused(
                [
                    Refusal(
                        "tracking_number",
                        "tracking_number_in_use",
                        _("This tracking number belongs to another return."),
                    )
                ]
            )
        return existing, False
    primary = Shipment.objects.filter(
        tenant=tenant,
        return_request=locked,
        direction=ShipmentDirection.INBOUND,
        is_primary=True,
    ).first()
    make_primary = primary is None or not primary.tracking_number
    if primary is not None and make_primary:
        # A label still being bought is no longer wanted: the merchant shipped it.
        Shipment.objects.filter(pk=primary.pk, label_state=LabelState.PENDING).update(
            label_state=LabelState.FAILED, label_error="replaced by a merchant shipment"
        )
        Shipment.objects.filter(pk=primary.pk).update(is_primary=False, updated_at=now)
    created = _merchant_shipment_create(
        tenant=tenant,
        return_request=locked,
        carrier=code,
        tracking_number=number,
        is_primary=make_primary,
        source=source,
        now=now,
    )
    return created, True


def _merchant_shipment_create(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    carrier: str,
    tracking_number: str,
    is_primary: bool,
    source: str,
    now: datetime,
) -> Shipment:
    """An inbound shipment for a label bought elsewhere (normalized `carrier` code and
    number): `label_created` is reached now ("when we were given the number", DESIGN.md
    section 5) and the shipment-created hooks run (tracking attaches kept events and
    schedules polling). Call inside the return's transaction."""
    created = Shipment.objects.create(
        tenant=tenant,
        return_request=return_request,
        carrier=carrier,
        tracking_provider=carrier,
        tracking_number=tracking_number,
        is_primary=is_primary,
        label_state=LabelState.NONE,
        created_at=now,
        updated_at=now,
    )
    milestone_reach(
        tenant=tenant,
        return_request=return_request,
        name=MilestoneName.LABEL_CREATED,
        reached_at=now,
        source=source,
        now=now,
    )
    shipment_hooks_run_created(created, now=now)
    return created


# Closing a return with its outcome (refunds issue)
# --------------------------------------------------------------------------
@transaction.atomic
def return_outcome_close(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    outcome: str,
    actor: str,
    reason: str,
    now: datetime,
) -> bool:
    """Close an open return with `outcome` (`refunded` or `exchanged`, DESIGN.md section 5).

    The caller decides that the outcome is settled and the parcel track has
    reached `inspected` (or staff close it). Takes the return row lock.
    Returns False when the return was already closed (idempotent).
    """
    ensure_same_tenant(tenant, return_request)
    if outcome not in ("refunded", "exchanged"):
        raise ValueError(f"not a closing outcome: {outcome}")
    locked = ReturnRequest.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=return_request.pk, tenant=tenant
    )
    if locked.status in CLOSED_STATUSES:
        return False
    return_status_transition(
        return_request=locked, to_status=outcome, actor=actor, reason=reason, now=now
    )
    return_request.status = locked.status
    return_request.closed_at = locked.closed_at
    return True


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
        (origin.upper(), destination.upper()): within_field_bounds(
            SlaTransitRoute, "business_days", days
        )
        for origin, destination, days in SlaTransitRoute.objects.filter(
            tenant_id=tenant_id
        ).values_list("origin_country", "destination_country", "business_days")
    }


#: Columns `shipment_due_times_refresh` reads (the shipment, its return, the
#: return's centre, order and tenant), for `.only()`.
SHIPMENT_CLOCK_FIELDS = (
    "tenant_id",
    "return_request_id",
    "direction",
    "is_primary",
    "status",
    "status_at",
    "created_at",
    "updated_at",
    "shipped_at",
    "last_scan_at",
    "last_event_at",
    "origin_country",
    "destination_country",
    "first_scan_due_at",
    "next_event_due_at",
    "transit_due_at",
    "return_request__tenant_id",
    "return_request__closed_at",
    "return_request__return_centre__time_zone",
    "return_request__return_centre__country",
    "return_request__return_centre__subdivision",
    "return_request__order__shipping_country",
    "return_request__tenant__time_zone",
    "return_request__tenant__country",
    "return_request__tenant__subdivision",
)


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
        .select_related(
            "return_request__return_centre", "return_request__order", "return_request__tenant"
        )
        # Only what the clock reads: orders and returns are wide rows, and
        # building their column converters dominated an ingest's cost.
        .only(*SHIPMENT_CLOCK_FIELDS)
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
    for model_field in ReturnException._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in given:
            expr, expr_params = given[model_field.column]
        else:
            expr, expr_params = (
                "%s",
                [model_field.get_db_prep_save(model_field.get_default(), connection)],
            )
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


def shipment_hooks_run_created(shipment: Shipment, *, now: datetime) -> None:
    """Run the registered "shipment created" hooks inside the creating transaction.

    Every code path that creates a `Shipment` (portal label, API `shipment`,
    `POST /returns/<rma>/shipments/`) calls this right after the insert:
    tracking attaches events it kept for the number, flags the number's check
    digit and schedules the first poll. See `rma.hooks`.
    """
    hooks.run_shipment_created(shipment, now=now)


# --------------------------------------------------------------------------
# Return policy
# --------------------------------------------------------------------------
RETURN_POLICY_FIELDS = frozenset(
    {"window_days", "final_sale_skus", "final_sale_tags", "pickup_enabled"}
)


@transaction.atomic
def return_policy_update(*, tenant: Tenant, **fields: Any) -> ReturnPolicy:
    """Change the tenant's return policy (window days, final-sale SKUs and tags, pickup).

    Saved through the model so django-simple-history records the change.
    Raises `ValueError` for a field that is not a policy setting.
    """
    unknown = set(fields) - RETURN_POLICY_FIELDS
    if unknown:
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    policy, _created = ReturnPolicy.objects.get_or_create(tenant=tenant)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    return policy


@transaction.atomic
def return_centre_update(*, tenant: Tenant, **fields: Any) -> ReturnCentre:
    """Change the tenant's default return centre (name, address as printed on labels,
    country, subdivision, time zone: its business-day calendar). Validated; raises
    `ValidationError` for a bad zone and `ValueError` for an unknown field."""
    allowed = {"name", "address", "country", "subdivision", "time_zone"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not return centre fields: {sorted(unknown)}")
    centre = ReturnCentre.objects.filter(tenant=tenant, is_default=True).first()
    if centre is None:
        centre = ReturnCentre(
            tenant=tenant, is_default=True, country=tenant.country, time_zone=tenant.time_zone
        )
    for name, value in fields.items():
        setattr(centre, name, value)
    centre.full_clean()
    centre.save()
    return centre
