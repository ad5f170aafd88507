"""Proactive customer alerts (MISSION "Exceptions, caught early": proactive "no scan"
and "no movement" alerts; "Quick wins": tracking link in every e-mail).

One `Notification` per exception, key `alert:<exception id>`, so an alert is
queued once whatever runs twice. Kinds and the tenant switch that turns each
off (`SlaPolicy`):

- `no_first_scan` -> "no scan yet": drop-off help and the QR code again
  (`/r/<token>/qr.svg`), switch `alert_no_scan`;
- `no_movement` -> "no movement": what happens next, switch `alert_no_movement`.

Text is plain and translatable, rendered in the return's language. Links are
absolute on the tenant's primary host (`tenant_absolute_url`). A return
without an e-mail gets a `suppressed` row (as `notification_queue` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from returns_portal.tenancy.models import Tenant
from returns_portal.tenancy.services import tenant_absolute_url
from rma.models import (
    ExceptionKind,
    ExceptionState,
    Notification,
    NotificationState,
    ReturnException,
    SlaPolicy,
)
from rma.services import NOTIFICATION_SEND_TASK, enqueue_on_commit

#: Alerted kinds and the `SlaPolicy` switch of each.
ALERT_SWITCHES = {
    ExceptionKind.NO_FIRST_SCAN.value: "alert_no_scan",
    ExceptionKind.NO_MOVEMENT.value: "alert_no_movement",
}
#: Send tasks enqueued per batch; the outbox sweeper sends the rest (2 minutes later).
NUDGE_LIMIT = 500


def alert_key(exception_id: int) -> str:
    return f"alert:{exception_id}"


def carrier_label(code: str) -> str:
    """A carrier code as customers read it (`ups` -> `UPS`, `dhl_express` -> `DHL Express`)."""
    if not code:
        return _("the carrier")
    words = code.split("_")
    return " ".join(w.upper() if len(w) <= 4 else w.title() for w in words)


def _local_date(instant: datetime | None, zone_name: str) -> str:
    if instant is None:
        return ""
    try:
        zone = ZoneInfo(zone_name)
    except Exception:
        zone = ZoneInfo("UTC")
    return instant.astimezone(zone).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class AlertFacts:
    """What an alert says, read in one query per batch (no model instances)."""

    exception_id: int
    kind: str
    tenant_id: int
    return_id: int
    rma_number: str
    token: str
    email: str
    language: str
    tenant_zone: str
    carrier: str
    tracking_number: str
    last_at: datetime | None
    last_place: str
    last_zone: str


FACT_FIELDS = (
    "pk",
    "kind",
    "tenant_id",
    "return_request_id",
    "return_request__rma_number",
    "return_request__token",
    "return_request__email",
    "return_request__language",
    "tenant__time_zone",
    "shipment__carrier",
    "shipment__tracking_number",
    "shipment__last_scan_at",
    "shipment__last_event_at",
    "shipment__last_scan_location",
    "shipment__last_scan_time_zone",
)


def _facts(row: tuple) -> AlertFacts:
    (pk, kind, tenant_id, rid, rma, token, email, language, zone, carrier, number) = row[:11]
    last_scan_at, last_event_at, place, scan_zone = row[11:]
    return AlertFacts(
        exception_id=pk,
        kind=kind,
        tenant_id=tenant_id,
        return_id=rid,
        rma_number=rma,
        token=token,
        email=email,
        language=language or "en",
        tenant_zone=zone,
        carrier=carrier or "",
        tracking_number=number or "",
        last_at=last_scan_at or last_event_at,
        last_place=place or "",
        last_zone=scan_zone or zone,
    )


def render_alert(facts: AlertFacts, *, policy: SlaPolicy, portal_prefix: str) -> tuple[str, str]:
    """`(subject, body_text)` of the alert, in the active language.

    `portal_prefix` is the absolute `/r/` URL of the tenant (`.../r/`).
    """
    tracking_url = f"{portal_prefix}{facts.token}/"
    carrier = carrier_label(facts.carrier)
    number = facts.tracking_number or "-"
    if facts.kind == ExceptionKind.NO_FIRST_SCAN:
        subject = _("Your return %(rma)s: no carrier scan yet") % {"rma": facts.rma_number}
        body = _(
            "Hello,\n\n"
            "The label for your return %(rma)s was created more than %(hours)s hours ago, "
            "but %(carrier)s has not scanned the parcel yet (tracking number %(number)s).\n\n"
            "Not dropped off yet? Take the parcel with its printed label to a %(carrier)s "
            "drop-off point. Your label and packing slip, to print again:\n%(label_url)s\n"
            "Or show this QR code at the drop-off point:\n%(qr_url)s\n\n"
            "Already dropped off? Keep your receipt. Scans sometimes appear late; we are "
            "keeping an eye on it and will contact you if we need anything.\n\n"
            "Track your return: %(tracking_url)s\n"
        ) % {
            "rma": facts.rma_number,
            "hours": policy.first_scan_hours,
            "carrier": carrier,
            "number": number,
            "label_url": f"{portal_prefix}{facts.token}/label.pdf",
            "qr_url": f"{portal_prefix}{facts.token}/qr.svg",
            "tracking_url": tracking_url,
        }
        return subject, body
    subject = _("Your return %(rma)s has not moved for %(days)s days") % {
        "rma": facts.rma_number,
        "days": policy.no_movement_days,
    }
    where = (_(" in %(place)s") % {"place": facts.last_place}) if facts.last_place else ""
    body = _(
        "Hello,\n\n"
        "The last update from %(carrier)s on your return %(rma)s was on %(date)s%(where)s "
        "(tracking number %(number)s). It has not moved since.\n\n"
        "What happens next: parcels sometimes wait in a depot for a few days. We are "
        "watching it, and if it does not move soon we will open a trace with the carrier. "
        "You do not need to do anything; we will contact you if we need something.\n\n"
        "Track your return: %(tracking_url)s\n"
    ) % {
        "carrier": carrier,
        "rma": facts.rma_number,
        "date": _local_date(facts.last_at, facts.last_zone) or "-",
        "where": where,
        "number": number,
        "tracking_url": tracking_url,
    }
    return subject, body


@transaction.atomic
def alerts_queue_bulk(*, exception_ids: Sequence[int], now: datetime) -> int:
    """Queue the customer alert of each open alerted exception among `exception_ids`
    whose tenant has the kind's switch on. Returns how many notifications this call
    created (an existing `alert:<id>` key is left alone).

    One read (values, no model instances), one bulk insert with
    `ignore_conflicts` on the (tenant, key) constraint, one read-back; send tasks
    are enqueued on commit for at most `NUDGE_LIMIT` of them, the outbox sweeper
    sends the rest.
    """
    facts = [
        _facts(row)
        for row in ReturnException.objects.filter(
            pk__in=list(exception_ids), kind__in=ALERT_SWITCHES, state=ExceptionState.OPEN
        ).values_list(*FACT_FIELDS)
    ]
    if not facts:
        return 0
    tenant_ids = {f.tenant_id for f in facts}
    policies = {p.tenant_id: p for p in SlaPolicy.objects.filter(tenant_id__in=tenant_ids)}
    tenants = Tenant.objects.in_bulk(list(tenant_ids))
    prefixes = {tid: tenant_absolute_url(tenants[tid], "/r/") for tid in tenant_ids}
    notifications: list[Notification] = []
    for fact in facts:
        policy = policies.get(fact.tenant_id) or SlaPolicy(tenant_id=fact.tenant_id)
        if not getattr(policy, ALERT_SWITCHES[fact.kind]):
            continue
        with translation.override(fact.language):
            subject, body = render_alert(
                fact, policy=policy, portal_prefix=prefixes[fact.tenant_id]
            )
        notifications.append(
            Notification(
                tenant_id=fact.tenant_id,
                return_request_id=fact.return_id,
                kind=f"alert_{fact.kind}",
                key=alert_key(fact.exception_id),
                to_email=fact.email,
                subject=subject[:300],
                body_text=body,
                state=NotificationState.QUEUED if fact.email else NotificationState.SUPPRESSED,
                created_at=now,
            )
        )
    if not notifications:
        return 0
    Notification.objects.bulk_create(notifications, ignore_conflicts=True, batch_size=1000)
    created = list(
        Notification.objects.filter(
            tenant_id__in=tenant_ids,
            key__in=[n.key for n in notifications],
            created_at=now,
        ).values_list("pk", "tenant_id", "state")
    )
    queued = [(pk, tid) for pk, tid, state in created if state == NotificationState.QUEUED]
    for pk, tenant_id in queued[:NUDGE_LIMIT]:
        enqueue_on_commit(NOTIFICATION_SEND_TASK, pk, tenant_id)
    return len(created)
