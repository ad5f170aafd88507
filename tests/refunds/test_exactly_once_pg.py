"""Exactly once on PostgreSQL (issue 6 "Done when"): 20 concurrent triggers for one return -
duplicate milestone reaches, repeated check-ins, retried dispatch and issue tasks, and a
worker killed after the gateway call and before its commit - then the recovery path,
give ONE gateway call and ONE `Refund`.

Real threads, real connections, real row locks (`django_db(transaction=True)`); tasks
are collected from `send_task` after commit and run by the test, never in eager mode.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from refunds import services
from refunds.models import Refund, RefundStateChange, SandboxGatewayCall
from returns_portal import workflows
from rma.models import CheckIn, Milestone, Notification
from rma.services import milestone_reach
from rma.warehouse import checkin_record
from tests.conftest import require_postgres
from tests.refunds.conftest import make_order, make_return

T1 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


class WorkerKilled(BaseException):
    """Stands for SIGKILL: raised after the gateway call, before the outcome commits."""


def run_threads(targets):
    barrier = threading.Barrier(len(targets))
    errors = []

    def wrap(fn):
        def inner():
            try:
                barrier.wait()
                fn()
            except WorkerKilled:
                pass
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        return inner

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_triggers_issue_once(tenant, monkeypatch, settings):
    require_postgres()
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    sent: list = []
    lock = threading.Lock()

    def send_task(name, args=None, **kw):
        with lock:
            sent.append((name, list(args or [])))

    monkeypatch.setattr("celery.current_app.send_task", send_task)
    local = threading.local()
    real_record = services._record

    def record(*args, **kwargs):
        if getattr(local, "kill", False):
            raise WorkerKilled
        return real_record(*args, **kwargs)

    monkeypatch.setattr(services, "_record", record)

    rr = make_return(make_order(tenant, risk="low"), [1], created_at=T1 - timedelta(days=1))
    refund = Refund.objects.get(return_request=rr)
    assert (refund.trigger, refund.state) == ("first_scan", "pending")

    def dispatch_all():
        for pk in Milestone.objects.filter(return_request=rr).values_list("pk", flat=True):
            workflows.milestone_dispatch(milestone_id=pk, now=T1)

    def reach():
        milestone_reach(
            tenant=tenant,
            return_request=rr,
            name="first_scan",
            reached_at=T1,
            source="carrier",
            now=T1,
        )
        dispatch_all()

    def check_in():
        checkin_record(
            tenant=tenant,
            return_request=rr,
            condition="intact",
            now=T1,
            actor="scanner",
            channel="scanner",
        )
        dispatch_all()

    def killed_issue():
        local.kill = True
        services.refund_issue(tenant_id=tenant.pk, refund_id=refund.pk, now=T1)

    def retried_issue():
        services.refund_issue(tenant_id=tenant.pk, refund_id=refund.pk, now=T1)

    # Phase 1: 20 concurrent triggers. Any issue task that wins the claim is killed
    # after the gateway call; the others find nothing to do.
    run_threads([reach] * 5 + [check_in] * 5 + [dispatch_all] * 4 + [killed_issue] * 6)
    refund.refresh_from_db()
    if refund.state == "approved":  # no issue task ran after the approval: kill one now
        killed = threading.Thread(
            target=lambda: (setattr(local, "kill", True), _safe(killed_issue))
        )
        killed.start()
        killed.join()
        refund.refresh_from_db()
    assert refund.state == "issuing"
    assert SandboxGatewayCall.objects.get().calls == 1
    assert CheckIn.objects.filter(return_request=rr).count() == 1
    assert RefundStateChange.objects.filter(refund=refund, to_state="approved").count() == 1

    # Phase 2: the broker redelivers the task at once (not stale: skipped) ...
    run_threads([retried_issue] * 10)
    refund.refresh_from_db()
    assert refund.state == "issuing"

    # ... and 10 sweeps, 10 minutes later, race to look it up by its key.
    later = T1 + timedelta(minutes=11)

    def recover():
        services.refund_issue(tenant_id=tenant.pk, refund_id=refund.pk, now=later)
        for pk in Milestone.objects.filter(
            return_request=rr, dispatched_at__isnull=True
        ).values_list("pk", flat=True):
            workflows.milestone_dispatch(milestone_id=pk, now=later)

    run_threads([recover] * 10)
    refund.refresh_from_db()
    assert refund.state == "issued"
    call = SandboxGatewayCall.objects.get()
    assert (call.calls, call.idempotency_key, refund.gateway_reference) == (
        1,
        f"refund:{refund.uuid}",
        call.reference,
    )
    assert Refund.objects.filter(return_request=rr).count() == 1
    assert list(refund.transactions.values_list("kind", "status")) == [("lookup", "succeeded")]
    assert Milestone.objects.filter(return_request=rr, name="refunded").count() == 1
    assert Notification.objects.filter(key=f"refund-approved:{refund.uuid}").count() == 1
    assert list(
        RefundStateChange.objects.filter(refund=refund)
        .order_by("at", "pk")
        .values_list("to_state", flat=True)
    ) == ["approved", "issuing", "issued"]


def _safe(fn):
    try:
        fn()
    except WorkerKilled:
        pass
    finally:
        connection.close()
