"""Sending queued notifications (e-mail), at least once, never inside a transaction."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Q

from rma.models import Notification, NotificationState

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
CLAIM_FOR = timedelta(minutes=5)


def notification_send(*, notification_id: int, tenant_id: int, now: datetime) -> str:
    """Send one queued notification. Returns the resulting state (or `"skipped"`).

    Claims the row with a conditional update (attempts + 1, `next_attempt_at`
    pushed 5 minutes), so two workers never send it at once; sends outside any
    transaction; then marks it `sent`. A crash between the send and the mark
    sends it again after the claim expires (e-mail is at-least-once). After
    `MAX_ATTEMPTS` failures the row is `failed`, with backoff in between.
    """
    claimed = (
        Notification.objects.filter(
            pk=notification_id, tenant_id=tenant_id, state=NotificationState.QUEUED
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=F("attempts") + 1, next_attempt_at=now + CLAIM_FOR)
    )
    if not claimed:
        return "skipped"
    notification = Notification.objects.select_related("tenant").get(pk=notification_id)
    tenant = notification.tenant
    message = EmailMultiAlternatives(
        subject=notification.subject,
        body=notification.body_text,
        from_email=f"{tenant.name} <{settings.DEFAULT_FROM_EMAIL}>",
        to=[notification.to_email],
        reply_to=[tenant.support_email] if tenant.support_email else None,
    )
    if notification.body_html:
        message.attach_alternative(notification.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as exc:
        log.warning("notification %s failed: %s", notification_id, exc)
        failed = notification.attempts >= MAX_ATTEMPTS
        Notification.objects.filter(pk=notification_id).update(
            state=NotificationState.FAILED if failed else NotificationState.QUEUED,
            last_error=str(exc)[:500],
            next_attempt_at=now + timedelta(minutes=2**notification.attempts),
        )
        return NotificationState.FAILED if failed else NotificationState.QUEUED
    Notification.objects.filter(pk=notification_id).update(
        state=NotificationState.SENT, sent_at=now, last_error="", next_attempt_at=None
    )
    return NotificationState.SENT
