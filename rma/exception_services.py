"""Services of the staff exception queue (issue 5; MISSION "Exceptions, caught early":
start a carrier trace, ask for proof of drop-off, offer a replacement to loyal
buyers, escalate automatically).

Every action writes an `ExceptionActivity` row (who, when, what) in the same
transaction as its change, and re-checks that the acting user holds at least
the agent role in the exception's tenant (`StaffNotAllowed` otherwise; the
admin checks first, this is the second line); an assignee must hold it too.
Rows written (activities, offers, notifications) take the exception's tenant.
E-mails are `Notification` rows keyed so that a repeat queues nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from returns_portal.tenancy.models import Membership, Role, Tenant
from returns_portal.tenancy.services import tenant_absolute_url
from rma.alerts import carrier_label
from rma.models import (
    ExceptionAction,
    ExceptionActivity,
    ExceptionKind,
    ExceptionState,
    Milestone,
    Notification,
    NotificationState,
    Order,
    ReplacementOffer,
    ReplacementOfferState,
    ReturnException,
    SlaPolicy,
)
from rma.services import (
    NOTIFICATION_SEND_TASK,
    enqueue_on_commit,
    exception_resolve,
    notification_queue,
    sla_policy_for,
    within_field_bounds,
)
from rma.states import MilestoneName

#: Resolution codes staff choose from (auto-resolution codes are `auto:<why>`).
RESOLUTION_CODES = [
    ("staff:scanned_late", gettext_lazy("Carrier scan found / arrived late")),
    ("staff:received", gettext_lazy("Parcel received")),
    ("staff:customer_contacted", gettext_lazy("Customer contacted, nothing to do")),
    ("staff:carrier_fixed", gettext_lazy("Carrier resolved the problem")),
    ("staff:lost_refunded", gettext_lazy("Lost: refunded without the parcel")),
    ("staff:replaced", gettext_lazy("Replacement sent")),
    ("staff:rejected", gettext_lazy("Return rejected")),
    ("staff:false_alarm", gettext_lazy("False alarm")),
    ("staff:other", gettext_lazy("Other (see note)")),
]
RESOLUTION_CODE_VALUES = frozenset(code for code, _label in RESOLUTION_CODES)
AGENT_ROLES = (Role.AGENT, Role.ADMIN)


class StaffNotAllowed(PermissionError):
    """The user lacks the agent role in the exception's tenant."""


class ExceptionNotOpen(ValueError):
    """The action needs an open exception."""


class ProofNotApplicable(ValueError):
    """Proof of drop-off is asked only while no carrier scan exists."""


#: The exceptions where the carrier has no record of the parcel yet.
NO_SCAN_KINDS = frozenset({ExceptionKind.NO_FIRST_SCAN, ExceptionKind.CLAIMED_DROPOFF_NO_SCAN})
#: Milestones that show the carrier or the warehouse has the parcel.
PARCEL_SEEN = (MilestoneName.FIRST_SCAN, MilestoneName.DELIVERED, MilestoneName.RECEIVED)


class NotLoyal(ValueError):
    """The customer does not meet the tenant's loyal-customer rule."""


def user_may_act(user: Any, tenant_id: int) -> bool:
    """True for an active superuser or a member with the agent or admin role in the tenant."""
    if user is None or not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(
        user=user, tenant_id=tenant_id, role__in=AGENT_ROLES, tenant__is_active=True
    ).exists()


def _require_agent(user: Any, tenant_id: int) -> None:
    if not user_may_act(user, tenant_id):
        raise StaffNotAllowed(f"{user} may not act on tenant {tenant_id}'s exceptions")


def _label(user: Any) -> str:
    if user is None:
        return "system"
    return (user.get_username() or str(user.pk))[:200]


def _activity(
    exception: ReturnException,
    *,
    action: str,
    actor: Any,
    now: datetime,
    detail: str = "",
    data: dict | None = None,
) -> ExceptionActivity:
    return ExceptionActivity.objects.create(
        tenant_id=exception.tenant_id,
        exception=exception,
        action=action,
        actor=actor,
        actor_label=_label(actor),
        detail=detail,
        data=data or {},
        at=now,
    )


def _locked_open(exception: ReturnException) -> ReturnException:
    row = ReturnException.objects.select_for_update(of=("self",)).get(
        pk=exception.pk, tenant_id=exception.tenant_id
    )
    if row.state != ExceptionState.OPEN:
        raise ExceptionNotOpen(f"exception {row.pk} is {row.state}")
    return row


# --------------------------------------------------------------------------
# Assign, note, trace
# --------------------------------------------------------------------------
@transaction.atomic
def exception_assign(
    *, exception: ReturnException, assignee: Any, actor: Any, now: datetime
) -> bool:
    """Assign `exception` to `assignee` (a user with the agent role in its tenant), or
    unassign with None. True when it changed. Raises `StaffNotAllowed` for an actor
    or assignee without the role."""
    _require_agent(actor, exception.tenant_id)
    if assignee is not None and not user_may_act(assignee, exception.tenant_id):
        raise StaffNotAllowed(f"{assignee} cannot be assigned tenant {exception.tenant_id}'s work")
    row = ReturnException.objects.select_for_update(of=("self",)).get(
        pk=exception.pk, tenant_id=exception.tenant_id
    )
    new_id = assignee.pk if assignee is not None else None
    if row.assignee_id == new_id:
        return False
    ReturnException.objects.filter(pk=row.pk).update(assignee_id=new_id, updated_at=now)
    exception.assignee_id = new_id
    _activity(
        row,
        action=ExceptionAction.ASSIGNED,
        actor=actor,
        now=now,
        detail=_("Assigned to %(user)s") % {"user": _label(assignee)}
        if assignee
        else _("Unassigned"),
        data={"assignee_id": new_id},
    )
    return True


@transaction.atomic
def exception_note_add(
    *, exception: ReturnException, text: str, actor: Any, now: datetime
) -> ExceptionActivity:
    """Add a staff note to `exception` (open or resolved)."""
    _require_agent(actor, exception.tenant_id)
    text = text.strip()
    if not text:
        raise ValueError("empty note")
    return _activity(exception, action=ExceptionAction.NOTE, actor=actor, now=now, detail=text)


@transaction.atomic
def exception_trace_start(
    *,
    exception: ReturnException,
    trace_ref: str,
    follow_up_at: datetime,
    actor: Any,
    now: datetime,
) -> ReturnException:
    """Record a carrier trace: its reference and when to follow up (UTC). Raises
    `ExceptionNotOpen` for a resolved exception, `ValueError` for an empty
    reference or a follow-up in the past."""
    _require_agent(actor, exception.tenant_id)
    trace_ref = trace_ref.strip()
    if not trace_ref:
        raise ValueError("a trace reference is required")
    if follow_up_at <= now:
        raise ValueError("the follow-up must be in the future")
    row = _locked_open(exception)
    ReturnException.objects.filter(pk=row.pk).update(
        trace_ref=trace_ref[:100], trace_follow_up_at=follow_up_at, updated_at=now
    )
    exception.trace_ref, exception.trace_follow_up_at = trace_ref[:100], follow_up_at
    _activity(
        row,
        action=ExceptionAction.TRACE_STARTED,
        actor=actor,
        now=now,
        detail=_("Trace %(ref)s, follow up %(at)s")
        % {"ref": trace_ref, "at": follow_up_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")},
        data={"trace_ref": trace_ref, "follow_up_at": follow_up_at.isoformat()},
    )
    return exception


# --------------------------------------------------------------------------
# Proof of drop-off
# --------------------------------------------------------------------------
def render_proof_request(exception: ReturnException) -> tuple[str, str]:
    """`(subject, body)` asking the customer for proof of drop-off, in the active language."""
    rr = exception.return_request
    shipment = exception.shipment or rr.shipments.filter(is_primary=True).first()
    tracking_url = tenant_absolute_url(rr.tenant, f"/r/{rr.token}/")
    subject = _("Your return %(rma)s: please send us your drop-off receipt") % {
        "rma": rr.rma_number
    }
    body = _(
        "Hello,\n\n"
        "We are looking for your return %(rma)s: %(carrier)s has no record of it yet "
        "(tracking number %(number)s).\n\n"
        "Please reply to this e-mail with a photo of your drop-off receipt (it shows the "
        "date, the place and the tracking number). With it we can ask the carrier to "
        "trace the parcel.\n\n"
        "Track your return: %(tracking_url)s\n"
    ) % {
        "rma": rr.rma_number,
        "carrier": carrier_label(shipment.carrier if shipment else ""),
        "number": shipment.tracking_number if shipment else "-",
        "tracking_url": tracking_url,
    }
    return subject, body


@transaction.atomic
def exception_proof_request(
    *, exception: ReturnException, actor: Any, now: datetime
) -> tuple[Notification, bool]:
    """E-mail the customer asking for proof of drop-off (key `proof_request:return:<id>`,
    so once per return whichever of its exceptions asks). Returns `(notification,
    created)`; a return without an e-mail gets a `suppressed` row. Raises
    `ProofNotApplicable` unless the exception is a no-scan kind (`NO_SCAN_KINDS`) and
    no carrier scan or check-in reached the return."""
    _require_agent(actor, exception.tenant_id)
    row = _locked_open(exception)
    rr = row.return_request
    if row.kind not in NO_SCAN_KINDS:
        raise ProofNotApplicable(
            _("Proof of drop-off is asked only while the carrier has no scan.")
        )
    if Milestone.objects.filter(
        tenant_id=rr.tenant_id, return_request=rr, name__in=PARCEL_SEEN
    ).exists():
        raise ProofNotApplicable(_("The carrier or the warehouse already has this parcel."))
    with translation.override(rr.language or "en"):
        subject, body = render_proof_request(row)
    notification, created = notification_queue(
        tenant=rr.tenant,
        key=f"proof_request:return:{rr.pk}",
        kind="proof_of_dropoff_request",
        to_email=rr.email,
        subject=subject,
        body_text=body,
        now=now,
        return_request=rr,
    )
    if created:
        _activity(
            row,
            action=ExceptionAction.PROOF_REQUESTED,
            actor=actor,
            now=now,
            detail=_("Asked %(email)s for proof of drop-off") % {"email": rr.email or "-"},
            data={"notification_id": notification.pk},
        )
    return notification, created


# --------------------------------------------------------------------------
# Loyal customers and replacements
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Loyalty:
    loyal: bool
    reason: str
    earlier_orders: int


def customer_loyalty(*, return_request: Any, policy: SlaPolicy | None = None) -> Loyalty:
    """The tenant's loyal-customer rule (default: 3 or more earlier orders, or the tag
    `vip`; `SlaPolicy.loyal_min_orders` and `loyal_tags`). Earlier orders: the same
    tenant's orders of the same customer (or, without a customer, the same e-mail)
    placed before this return's order, voided and cancelled ones excluded. Tags are
    read from the customer and the order, case-insensitively."""
    policy = policy or sla_policy_for(return_request.tenant_id)
    order = return_request.order
    customer = return_request.customer or order.customer
    tags = {str(t).strip().lower() for t in (order.tags or [])}
    if customer is not None:
        tags |= {str(t).strip().lower() for t in (customer.tags or [])}
    matched = sorted(tags & policy.loyal_tag_set)
    who = Q(customer_id=customer.pk) if customer is not None else Q()
    if order.email:
        who |= Q(email__iexact=order.email)
    earlier = 0
    if who:
        earlier = (
            Order.objects.filter(tenant_id=return_request.tenant_id, placed_at__lt=order.placed_at)
            .filter(who)
            .exclude(pk=order.pk)
            .filter(is_cancelled=False, is_voided=False)
            .count()
        )
    if matched:
        return Loyalty(True, _("tag %(tag)s") % {"tag": matched[0]}, earlier)
    if policy.loyal_min_orders and earlier >= policy.loyal_min_orders:
        return Loyalty(True, _("%(n)s earlier orders") % {"n": earlier}, earlier)
    return Loyalty(False, _("%(n)s earlier orders, no loyal tag") % {"n": earlier}, earlier)


@transaction.atomic
def exception_replacement_offer(
    *, exception: ReturnException, actor: Any, now: datetime, note: str = ""
) -> tuple[ReplacementOffer, bool]:
    """Offer a replacement for the return of `exception` to a loyal customer: records a
    `ReplacementOffer` (the exchange request; one open per return). Returns `(offer,
    created)`. Raises `NotLoyal` when the tenant's rule is not met."""
    _require_agent(actor, exception.tenant_id)
    row = _locked_open(exception)
    rr = row.return_request
    loyalty = customer_loyalty(return_request=rr)
    if not loyalty.loyal:
        raise NotLoyal(loyalty.reason)
    existing = ReplacementOffer.objects.filter(
        tenant_id=rr.tenant_id, return_request=rr, state=ReplacementOfferState.OFFERED
    ).first()
    if existing is not None:
        return existing, False
    offer = ReplacementOffer.objects.create(
        tenant_id=rr.tenant_id,
        return_request=rr,
        exception=row,
        loyalty_reason=loyalty.reason[:200],
        note=note,
        offered_by=actor,
        offered_at=now,
    )
    _activity(
        row,
        action=ExceptionAction.REPLACEMENT_OFFERED,
        actor=actor,
        now=now,
        detail=_("Replacement offered (%(why)s)") % {"why": loyalty.reason},
        data={"offer_id": offer.pk},
    )
    return offer, True


# --------------------------------------------------------------------------
# Escalation
# --------------------------------------------------------------------------
def _escalation_text(exception: ReturnException, *, by: str) -> tuple[str, str]:
    rr = exception.return_request
    subject = _("Escalated: %(kind)s on %(rma)s") % {
        "kind": exception.get_kind_display(),
        "rma": rr.rma_number,
    }
    body = _(
        "%(by)s escalated an exception.\n\n"
        "Return: %(rma)s (order %(order)s)\nKind: %(kind)s %(reason)s\n"
        "Open since: %(opened)s\nPriority: %(priority)s\n"
    ) % {
        "by": by,
        "rma": rr.rma_number,
        "order": rr.order.number,
        "kind": exception.get_kind_display(),
        "reason": f"({exception.reason})" if exception.reason else "",
        "opened": exception.opened_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "priority": exception.priority,
    }
    return subject, body


@transaction.atomic
def exception_escalate(*, exception: ReturnException, actor: Any, now: datetime) -> bool:
    """Escalate: priority up one step (1 is highest), `escalated_at` = now, and an
    e-mail to the tenant's `escalation_email` (key `escalation:<id>:p<priority>`;
    suppressed without an address). False when already at priority 1 and escalated."""
    _require_agent(actor, exception.tenant_id)
    row = _locked_open(exception)
    if row.priority <= 1 and row.escalated_at is not None:
        return False
    priority = max(1, row.priority - 1)
    ReturnException.objects.filter(pk=row.pk).update(
        priority=priority, escalated_at=now, updated_at=now
    )
    row.priority, row.escalated_at = priority, now
    exception.priority, exception.escalated_at = priority, now
    tenant = row.tenant
    subject, body = _escalation_text(row, by=_label(actor))
    notification_queue(
        tenant=tenant,
        key=f"escalation:{row.pk}:p{priority}",
        kind="exception_escalation",
        to_email=tenant.escalation_email,
        subject=subject,
        body_text=body,
        now=now,
        return_request=row.return_request,
    )
    _activity(
        row,
        action=ExceptionAction.ESCALATED,
        actor=actor,
        now=now,
        detail=_("Priority %(p)s; e-mailed %(to)s")
        % {"p": priority, "to": tenant.escalation_email or "-"},
        data={"priority": priority},
    )
    return True


@transaction.atomic
def exceptions_auto_escalate(
    *, now: datetime, notify: bool = True, batch_size: int = 5000
) -> dict[str, int]:
    """Escalate every open, not yet escalated exception older than its tenant's
    `SlaPolicy.auto_escalate_after_hours` (elapsed hours since `opened_at`): priority
    up one step, `escalated_at` = now, an `auto_escalated` activity row, and one
    digest e-mail per tenant and run to its `escalation_email` (key
    `auto_escalation:<tenant id>:<now>`, up to 50 returns listed). Set-based:
    the partial index `exception_escalation_due`, bounded batches, bulk writes.
    Returns `{kind: escalated}`.
    """
    by_hours: dict[int, list[int]] = defaultdict(list)
    for tenant_id, hours in SlaPolicy.objects.filter(
        auto_escalate_after_hours__isnull=False
    ).values_list("tenant_id", "auto_escalate_after_hours"):
        by_hours[within_field_bounds(SlaPolicy, "auto_escalate_after_hours", hours)].append(
            tenant_id
        )
    counts: dict[str, int] = defaultdict(int)
    digest: dict[int, list[tuple[str, str]]] = defaultdict(list)
    digest_total: dict[int, int] = defaultdict(int)
    for hours, tenant_ids in sorted(by_hours.items()):
        last_pk = 0
        while True:
            batch = list(
                ReturnException.objects.filter(
                    state=ExceptionState.OPEN,
                    escalated_at__isnull=True,
                    opened_at__lte=now - timedelta(hours=hours),
                    tenant_id__in=tenant_ids,
                    pk__gt=last_pk,
                )
                .order_by("pk")
                .values_list("pk", "tenant_id", "kind", "return_request__rma_number")[:batch_size]
            )
            if not batch:
                break
            last_pk = batch[-1][0]
            ids = [row[0] for row in batch]
            changed = ReturnException.objects.filter(
                pk__in=ids, state=ExceptionState.OPEN, escalated_at__isnull=True
            ).update(
                priority=Greatest(F("priority") - 1, Value(1)), escalated_at=now, updated_at=now
            )
            if changed:
                ExceptionActivity.objects.bulk_create(
                    [
                        ExceptionActivity(
                            tenant_id=tenant_id,
                            exception_id=pk,
                            action=ExceptionAction.AUTO_ESCALATED,
                            actor_label="system",
                            detail=f"open for more than {hours} h",
                            data={"after_hours": hours},
                            at=now,
                        )
                        for pk, tenant_id, _kind, _rma in batch
                    ],
                    batch_size=1000,
                )
            for _pk, tenant_id, kind, rma in batch:
                counts[kind] += 1
                digest_total[tenant_id] += 1
                if len(digest[tenant_id]) < 50:
                    digest[tenant_id].append((rma, kind))
            if len(batch) < batch_size:
                break
    if notify and digest:
        _auto_escalation_digests(digest, digest_total, now=now)
    return dict(counts)


def _auto_escalation_digests(
    digest: dict[int, list[tuple[str, str]]], totals: dict[int, int], *, now: datetime
) -> None:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tenants = Tenant.objects.in_bulk(list(digest))
    rows = []
    for tenant_id, items in digest.items():
        tenant = tenants[tenant_id]
        lines = "\n".join(f"- {rma}: {kind}" for rma, kind in items)
        more = totals[tenant_id] - len(items)
        body = _(
            "%(n)s exception(s) were escalated automatically because they stayed open "
            "too long:\n\n%(lines)s\n"
        ) % {"n": totals[tenant_id], "lines": lines}
        if more > 0:
            body += _("... and %(more)s more.\n") % {"more": more}
        body += "\n" + tenant_absolute_url(tenant, "/admin/rma/returnexception/") + "\n"
        rows.append(
            Notification(
                tenant_id=tenant_id,
                kind="exception_auto_escalation",
                key=f"auto_escalation:{tenant_id}:{stamp}",
                to_email=tenant.escalation_email,
                subject=(_("%(n)s exception(s) escalated") % {"n": totals[tenant_id]})[:300],
                body_text=body,
                state=NotificationState.QUEUED
                if tenant.escalation_email
                else NotificationState.SUPPRESSED,
                created_at=now,
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    for pk, tenant_id in Notification.objects.filter(
        key__in=[r.key for r in rows], state=NotificationState.QUEUED
    ).values_list("pk", "tenant_id"):
        enqueue_on_commit(NOTIFICATION_SEND_TASK, pk, tenant_id)


# --------------------------------------------------------------------------
# Staff resolution
# --------------------------------------------------------------------------
@transaction.atomic
def exception_staff_resolve(
    *,
    exception: ReturnException,
    resolution_code: str,
    actor: Any,
    now: datetime,
    note: str = "",
) -> bool:
    """Resolve by staff with one of `RESOLUTION_CODES`: detectors will not reopen it for
    the same condition. True when this call resolved it. Raises `ValueError` for
    an unknown code."""
    _require_agent(actor, exception.tenant_id)
    if resolution_code not in RESOLUTION_CODE_VALUES:
        raise ValueError(f"unknown resolution code {resolution_code!r}")
    resolved = exception_resolve(
        exception=exception,
        resolution_code=resolution_code,
        resolved_at=now,
        by_staff=True,
        user=actor,
        note=note,
    )
    if resolved:
        _activity(
            exception,
            action=ExceptionAction.RESOLVED,
            actor=actor,
            now=now,
            detail=resolution_code + (f": {note}" if note else ""),
            data={"resolution_code": resolution_code},
        )
    return resolved
