"""The "refund approved" e-mail is written in the language the return was made in,
whatever language the worker that approves the refund runs in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import translation

from refunds.estimate import bank_delay_text
from rma.models import Notification, ReturnRequest
from rma.notifications import notification_send
from tests.refunds.conftest import T0, make_order, make_return

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("lang", "subject", "first_line", "tracking"),
    [
        (
            "de",
            "{rma}: Rückerstattung genehmigt",
            "Rückerstattung genehmigt. Bei Ihrer Bank kann die Gutschrift 1\u20133 Tage dauern.",
            "Sendungsverfolgung Ihrer Rücksendung: http://acme.localhost:8000/r/",
        ),
        (
            "fr",
            "{rma} : remboursement approuvé",
            "Remboursement approuvé. Votre banque peut mettre 1 à 3 jours à le créditer.",
            "Suivez votre retour : http://acme.localhost:8000/r/",
        ),
        (
            "en",
            "{rma}: refund approved",
            "Refund approved. Your bank may take 1-3 days.",
            "Track your return: http://acme.localhost:8000/r/",
        ),
    ],
)
def test_refund_approved_email_in_the_returns_language(
    tenant, worker, lang, subject, first_line, tracking
):
    order = make_order(tenant, risk="medium", lines=[("50.00", 2, "0")], taxes="8.00")
    rr = make_return(order, [1])
    ReturnRequest.objects.filter(pk=rr.pk).update(language=lang)
    rr.refresh_from_db()
    with translation.override("en"):  # the worker's own language does not matter
        worker.reach(rr, "first_scan", T0 + H)
        worker.reach(rr, "delivered", T0 + 50 * H)
    queued = Notification.objects.get(kind="refund_approved", return_request=rr)
    assert notification_send(notification_id=queued.pk, tenant_id=tenant.pk, now=T0 + 50 * H) == (
        "sent"
    )
    (sent,) = mail.outbox
    assert sent.subject == subject.format(rma=rr.rma_number)
    assert sent.body.startswith(first_line + "\n\n")
    assert tracking in sent.body and "54.00 USD" in sent.body  # money is formatted by code


@pytest.mark.parametrize(
    ("lang", "one", "range_"),
    [
        ("en", "1 day", "1-3 days"),
        ("de", "1 Tag", "1\u20133 Tage"),
        ("fr", "1 jour", "1 à 3 jours"),
    ],
)
def test_bank_delay_text_in_the_active_language(lang, one, range_):
    with translation.override(lang):
        assert bank_delay_text(1, 1) == one
        assert bank_delay_text(1, 3) == range_
        assert bank_delay_text(0, 0) == ""
