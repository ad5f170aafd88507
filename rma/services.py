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
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
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
    ExceptionState,
    LabelState,
    Milestone,
    Notification,
    NotificationState,
    Order,
    OrderLine,
    OrderSource,
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
)
from rma.money import quantize
from rma.photos import MAX_PHOTOS_PER_LINE, ProcessedPhoto
from rma.selectors import order_eligibility
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
        carrier = shipment.carrier.strip().lower()
        Shipment.objects.create(
            tenant=tenant,
            return_request=rr,
            carrier=carrier,
            tracking_provider=carrier,
            tracking_number=normalized_number,
            label_state=LabelState.NONE,
            created_at=now,
            updated_at=now,
        )
        milestone_reach(
            tenant=tenant,
            return_request=rr,
            name=MilestoneName.LABEL_CREATED,
            reached_at=now,
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
    elif outcome.status == LabelStatus.FAILED:
        pending.update(
            label_state=LabelState.FAILED, label_error=outcome.reason[:500], updated_at=now
        )
    else:
        current = pending.values_list("label_attempts", flat=True).first()
        if current is not None:
            attempts = current + 1
            if attempts >= MAX_ATTEMPTS:
                pending.update(
                    label_state=LabelState.FAILED,
                    label_attempts=attempts,
                    label_error=f"no label after {attempts} tries: {outcome.reason}"[:500],
                    updated_at=now,
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
    locked = ReturnRequest.objects.select_for_update().get(pk=return_request.pk, tenant=tenant)
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
    locked = ReturnRequest.objects.select_for_update().get(pk=return_request.pk, tenant=tenant)
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
    created = Shipment.objects.create(
        tenant=tenant,
        return_request=locked,
        carrier=code,
        tracking_provider=code,
        tracking_number=number,
        is_primary=make_primary,
        label_state=LabelState.NONE,
        created_at=now,
        updated_at=now,
    )
    milestone_reach(
        tenant=tenant,
        return_request=locked,
        name=MilestoneName.LABEL_CREATED,
        reached_at=now,
        source=source,
        now=now,
    )
    return created, True


# --------------------------------------------------------------------------
# Orders from the API (the CSV importer has its own service)
# --------------------------------------------------------------------------
#: Order fields the API writes (the Shopify export's columns, DESIGN.md section 4).
ORDER_API_FIELDS = (
    "number",
    "email",
    "currency",
    "placed_at",
    "paid_at",
    "fulfilled_at",
    "delivered_at",
    "cancelled_at",
    "financial_status",
    "fulfillment_status",
    "is_voided",
    "taxes_included",
    "subtotal",
    "shipping",
    "taxes",
    "discount_amount",
    "discount_code",
    "total",
    "refunded_amount",
    "outstanding_balance",
    "risk_level",
    "tags",
    "shipping_method",
    "shipping_name",
    "shipping_address1",
    "shipping_address2",
    "shipping_city",
    "shipping_zip",
    "shipping_province",
    "shipping_country",
    "shipping_phone",
    "payment_method",
    "payment_reference",
    "note",
)
ORDER_MONEY_FIELDS = (
    "subtotal",
    "shipping",
    "taxes",
    "discount_amount",
    "total",
    "refunded_amount",
    "outstanding_balance",
)
LINE_API_FIELDS = (
    "sku",
    "title",
    "vendor",
    "quantity",
    "unit_price",
    "compare_at_price",
    "discount",
    "requires_shipping",
    "taxable",
    "is_gift_card",
    "fulfillment_status",
    "fulfilled_quantity",
    "refunded_quantity",
    "tags",
)
#: What may not change on a line that already has returns (DESIGN.md section 4).
LINE_FROZEN_WITH_RETURNS = ("sku", "unit_price", "discount")


@transaction.atomic
def order_upsert_from_api(
    *,
    tenant: Tenant,
    number: str,
    fields: dict[str, Any],
    lines: list[dict[str, Any]],
    now: datetime,
) -> tuple[Order, bool]:
    """Create or replace the tenant's order `number` from `PUT /api/v1/orders/<number>/`.

    `fields` holds `ORDER_API_FIELDS` (money as `Decimal`, times aware), `lines`
    each `LINE_API_FIELDS` plus an optional `line_id`. Upsert key: the
    normalized number. Lines match by `line_id`, else by position; lines
    left out are deleted. Money is quantized to the currency's exponent.
    `is_cancelled` follows `cancelled_at`; a line without `fulfilled_quantity`
    counts as fully fulfilled when its `fulfillment_status` is `fulfilled`.
    A line that has returns keeps its SKU, price and discount, keeps at least
    its returned units and is never deleted: otherwise `ReturnRefused`
    (`line_has_returns`), writing nothing. Returns `(order, created)`.
    Kept thin on purpose: the CSV importer owns the Shopify export rules.
    """
    key = Order.normalize_number(number)
    if not key:
        raise ReturnRefused([Refusal("number", "required", _("Give the order number."))])
    order = Order.objects.select_for_update().filter(tenant=tenant, number_key=key).first()
    created = order is None
    if order is None:
        order = Order(tenant=tenant, number=number.strip(), source=OrderSource.API, imported_at=now)
    currency = (fields.get("currency") or order.currency or tenant.currency).upper()
    for name in ORDER_API_FIELDS:
        if name not in fields or (name == "number" and not fields[name]):
            continue
        value = fields[name]
        if name in ORDER_MONEY_FIELDS and value is not None:
            value = quantize(value, currency)
        setattr(order, name, value)
    order.currency = currency
    order.number = order.number if Order.normalize_number(order.number) == key else number.strip()
    order.is_cancelled = order.cancelled_at is not None
    if order.email:
        order.email = order.email.strip()
        customer, _created = Customer.objects.get_or_create(
            tenant=tenant, email_normalized=Customer.normalize_email(order.email)
        )
        order.customer = customer
    order.save()

    existing = list(OrderLine.objects.select_for_update().filter(tenant=tenant, order=order))
    by_id = {ol.line_id: ol for ol in existing}
    by_position = {ol.position: ol for ol in existing}
    in_returns = dict(
        ReturnLine.objects.filter(tenant=tenant, order_line__order=order)
        .values("order_line_id")
        .annotate(units=Sum("quantity"))
        .values_list("order_line_id", "units")
    )
    refusals: list[Refusal] = []
    plan: list[tuple[OrderLine, dict[str, Any]]] = []
    for i, data in enumerate(lines):
        if data.get("line_id"):
            line = by_id.get(data["line_id"])
            if line is None:
                refusals.append(
                    Refusal(f"lines.{i}.line_id", "unknown_line", _("Unknown line_id."), i)
                )
                continue
        else:
            line = by_position.get(i + 1) or OrderLine(tenant=tenant, order=order)
        returned = in_returns.get(line.pk, 0) if line.pk else 0
        if returned:
            for name in LINE_FROZEN_WITH_RETURNS:
                if name in data and data[name] is not None:
                    new = data[name]
                    old = getattr(line, name)
                    if name != "sku":
                        new = quantize(new, currency)
                    if new != old:
                        refusals.append(
                            Refusal(
                                f"lines.{i}.{name}",
                                "line_has_returns",
                                _("This line has returns; its %(field)s can't change.")
                                % {"field": name},
                                i,
                            )
                        )
            if "quantity" in data and data["quantity"] < returned:
                refusals.append(
                    Refusal(
                        f"lines.{i}.quantity",
                        "line_has_returns",
                        _("This line has %(n)d returned units.") % {"n": returned},
                        i,
                    )
                )
        plan.append((line, data))
    kept = {line.pk for line, _data in plan if line.pk}
    for ol in existing:
        if ol.pk not in kept and in_returns.get(ol.pk):
            refusals.append(
                Refusal(
                    "lines",
                    "line_has_returns",
                    _("Line %(id)s has returns and can't be removed.") % {"id": ol.line_id},
                )
            )
    if refusals:
        raise ReturnRefused(refusals)
    OrderLine.objects.filter(tenant=tenant, order=order).exclude(pk__in=kept).delete()
    # Move kept lines out of the way of the (order, position) constraint first.
    for line in existing:
        if line.pk in kept:
            OrderLine.objects.filter(pk=line.pk).update(position=line.position + 100000)
    for position, (line, data) in enumerate(plan, start=1):
        for name in LINE_API_FIELDS:
            if name not in data or (data[name] is None and name != "compare_at_price"):
                continue
            value = data[name]
            if name in ("unit_price", "compare_at_price", "discount") and value is not None:
                value = quantize(value, currency)
            setattr(line, name, value)
        if data.get("fulfilled_quantity") is None and line.pk is None:
            line.fulfilled_quantity = (
                line.quantity if (line.fulfillment_status or "").lower() == "fulfilled" else 0
            )
        line.fulfilled_quantity = min(line.fulfilled_quantity, line.quantity)
        line.position = position
        line.tenant = tenant
        line.order = order
        line.save()
    order.refresh_from_db()
    return order, created
