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
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

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


def render_alert(
    exception: ReturnException, *, policy: SlaPolicy, portal_prefix: str
) -> tuple[str, str]:
    """`(subject, body_text)` of the alert for `exception`, in the active language.

    `portal_prefix` is the absolute `/r/` URL of the tenant (`.../r/`).
    """
    rr = exception.return_request
    shipment = exception.shipment
    tracking_url = f"{portal_prefix}{rr.token}/"
    carrier = carrier_label(shipment.carrier if shipment else "")
    number = shipment.tracking_number if shipment else ""
    if exception.kind == ExceptionKind.NO_FIRST_SCAN:
        subject = _("Your return %(rma)s: no carrier scan yet") % {"rma": rr.rma_number}
        body = _(
            "Hello,\n\n"
            "The label for your return %(rma)s was created more than %(hours)s hours ago, "
            "but %(carrier)s has not scanned the parcel yet (tracking number %(number)s).\n\n"
            "Not dropped off yet? Take the parcel to a %(carrier)s drop-off point and show "
            "this QR code, or the printed label:\n%(qr_url)s\n\n"
            "Already dropped off? Keep your receipt. Scans sometimes appear late; we are "
            "keeping an eye on it and will contact you if we need anything.\n\n"
            "Track your return: %(tracking_url)s\n"
        ) % {
            "rma": rr.rma_number,
            "hours": policy.first_scan_hours,
            "carrier": carrier,
            "number": number or "-",
            "qr_url": f"{portal_prefix}{rr.token}/qr.svg",
            "tracking_url": tracking_url,
        }
        return subject, body
    last_at = None
    place = ""
    zone = rr.tenant.time_zone
    if shipment is not None:
        last_at = shipment.last_scan_at or shipment.last_event_at
        place = shipment.last_scan_location
        zone = shipment.last_scan_time_zone or zone
    subject = _("Your return %(rma)s has not moved for %(days)s days") % {
        "rma": rr.rma_number,
        "days": policy.no_movement_days,
    }
    where = (_(" in %(place)s") % {"place": place}) if place else ""
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
        "rma": rr.rma_number,
        "date": _local_date(last_at, zone) or "-",
        "where": where,
        "number": number or "-",
        "tracking_url": tracking_url,
    }
    return subject, body


@transaction.atomic
def alerts_queue_bulk(*, exception_ids: Sequence[int], now: datetime) -> int:
    """Queue the customer alert of each open alerted exception among `exception_ids`
    whose tenant has the kind's switch on. Returns how many notifications this call
    created (an existing `alert:<id>` key is left alone).

    Bulk insert with `ignore_conflicts` on the (tenant, key) constraint; send
    tasks are enqueued on commit for at most `NUDGE_LIMIT` of them, the outbox
    sweeper sends the rest.
    """
    rows = list(
        ReturnException.objects.filter(
            pk__in=list(exception_ids), kind__in=ALERT_SWITCHES, state=ExceptionState.OPEN
        ).select_related("return_request", "return_request__tenant", "shipment")
    )
    if not rows:
        return 0
    tenant_ids = {r.tenant_id for r in rows}
    policies = {p.tenant_id: p for p in SlaPolicy.objects.filter(tenant_id__in=tenant_ids)}
    prefixes: dict[int, str] = {}
    notifications: list[Notification] = []
    for exc in rows:
        policy = policies.get(exc.tenant_id) or SlaPolicy(tenant_id=exc.tenant_id)
        if not getattr(policy, ALERT_SWITCHES[exc.kind]):
            continue
        rr = exc.return_request
        if exc.tenant_id not in prefixes:
            prefixes[exc.tenant_id] = tenant_absolute_url(rr.tenant, "/r/")
        with translation.override(rr.language or "en"):
            subject, body = render_alert(exc, policy=policy, portal_prefix=prefixes[exc.tenant_id])
        notifications.append(
            Notification(
                tenant_id=exc.tenant_id,
                return_request_id=rr.pk,
                kind=f"alert_{exc.kind}",
                key=alert_key(exc.pk),
                to_email=rr.email,
                subject=subject[:300],
                body_text=body,
                state=NotificationState.QUEUED if rr.email else NotificationState.SUPPRESSED,
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
