"""Issuing exactly once: claim, gateway outside transactions, pending, permanent failure,
a worker killed after the gateway call, recovery by lookup, the outbox source."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from refunds import services
from refunds.gateways.base import ERROR, FAILED, NOT_FOUND, PENDING, SUCCEEDED, GatewayResult
from refunds.gateways.sandbox import SandboxGateway
from refunds.models import RefundTransaction, SandboxGatewayCall
from refunds.outbox import owed
from returns_portal.tasks import OUTBOX_SOURCES
from rma.models import ReturnException
from tests.refunds.conftest import T0, make_order, make_return, refund_of

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


class ScriptedGateway:
    """Answers from a script; asserts it is never called inside a transaction opened by
    our code (the test's own wrapping transaction is the baseline)."""

    name = "sandbox"

    def __init__(self, create=SUCCEEDED, lookup=NOT_FOUND):
        self.create_status, self.lookup_status = create, lookup
        self.calls = []
        self.baseline = len(connection.atomic_blocks)

    def create(self, request):
        assert len(connection.atomic_blocks) == self.baseline, "gateway called inside a transaction"
        self.calls.append(("create", request.idempotency_key, request.amount))
        return GatewayResult(
            status=self.create_status, reference="gw_1", message=f"scripted {self.create_status}"
        )

    def lookup(self, request):
        assert len(connection.atomic_blocks) == self.baseline, "gateway called inside a transaction"
        self.calls.append(("lookup", request.idempotency_key, request.amount))
        return GatewayResult(status=self.lookup_status, reference="gw_1")


@pytest.fixture
def approved(tenant, worker):
    """A low-risk return approved at first scan, its issue task still queued."""
    rr = make_return(make_order(tenant, risk="low"), [1])
    worker.run(
        services.milestone_reach,
        tenant=tenant,
        return_request=rr,
        name="first_scan",
        reached_at=T0 + H,
        source="carrier",
        now=T0 + H,
    )
    # run the dispatch only, keep the issue task for the test
    name, args = worker.sent.pop(0)
    assert name == "returns_portal.dispatch_milestone"
    from returns_portal import workflows

    worker.run(workflows.milestone_dispatch, milestone_id=args[0], now=T0 + H)
    assert [n for n, _ in worker.sent if n == "refunds.refund_issue"] == ["refunds.refund_issue"]
    worker.sent.clear()
    return rr


def use(monkeypatch, gateway):
    monkeypatch.setattr(services, "_gateway", lambda refund: gateway)


def test_approval_enqueues_the_issue_task_on_commit(approved):
    refund = refund_of(approved)
    assert refund.state == "approved"
    assert refund.amount == Decimal("54.00")
    assert refund.refund_due_at is not None


def test_issue_calls_gateway_once_outside_transactions(approved, monkeypatch, worker):
    gw = ScriptedGateway()
    use(monkeypatch, gw)
    refund = refund_of(approved)
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H
        )
        == "issued"
    )
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 3 * H
        )
        == "skipped"
    )
    assert gw.calls == [("create", f"refund:{refund.uuid}", Decimal("54.00"))]
    refund = refund_of(approved)
    assert (refund.state, refund.gateway_reference) == ("issued", "gw_1")
    assert list(refund.state_changes.values_list("from_state", "to_state")) == [
        ("pending", "approved"),
        ("approved", "issuing"),
        ("issuing", "issued"),
    ]


def test_pending_stays_issuing_then_lookup_confirms(approved, monkeypatch, worker):
    gw = ScriptedGateway(create=PENDING, lookup=SUCCEEDED)
    use(monkeypatch, gw)
    refund = refund_of(approved)
    assert (
        services.refund_issue(tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H)
        == "pending"
    )
    assert refund_of(approved).state == "issuing"
    # not yet stale: nothing owed, a retried task does nothing
    assert (
        services.refund_issue(
            tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H + timedelta(minutes=9)
        )
        == "skipped"
    )
    assert ("refunds.refund_issue", [refund.pk, refund.tenant_id]) not in owed(
        now=T0 + 2 * H + timedelta(minutes=9), older_than=timedelta(minutes=2)
    )
    later = T0 + 2 * H + timedelta(minutes=10)
    assert ("refunds.refund_issue", [refund.pk, refund.tenant_id]) in owed(
        now=later, older_than=timedelta(minutes=2)
    )
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=later
        )
        == "issued"
    )
    assert [c[0] for c in gw.calls] == ["create", "lookup"]  # looked up, never re-sent
    assert list(RefundTransaction.objects.filter(refund=refund).values_list("kind", "status")) == [
        ("create", "pending"),
        ("lookup", "succeeded"),
    ]


def test_permanent_failure_fails_and_opens_refund_overdue(approved, monkeypatch, worker):
    use(monkeypatch, ScriptedGateway(create=FAILED))
    refund = refund_of(approved)
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H
        )
        == "failed"
    )
    refund = refund_of(approved)
    assert refund.state == "failed"
    assert refund.last_error == "scripted failed"
    exc = ReturnException.objects.get(return_request=approved, kind="refund_overdue", state="open")
    assert exc.reason == "gateway_failed"


def test_transient_error_is_looked_up_later_not_resent(approved, monkeypatch, worker):
    gw = ScriptedGateway(create=ERROR, lookup=SUCCEEDED)
    use(monkeypatch, gw)
    refund = refund_of(approved)
    assert (
        services.refund_issue(tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H)
        == "error"
    )
    assert refund_of(approved).state == "issuing"
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 3 * H
        )
        == "issued"
    )
    assert [c[0] for c in gw.calls] == ["create", "lookup"]


def test_worker_killed_after_the_gateway_call_recovers_by_lookup(approved, monkeypatch, worker):
    """The task body dies after the sandbox recorded the call and before our commit."""
    refund = refund_of(approved)

    def boom(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(services, "_record", boom)
    with pytest.raises(SystemExit):
        services.refund_issue(tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H)
    monkeypatch.undo()
    refund = refund_of(approved)
    assert refund.state == "issuing"
    assert SandboxGatewayCall.objects.get().calls == 1
    # the broker redelivers at once: not stale yet, nothing happens
    assert (
        services.refund_issue(
            tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H + timedelta(minutes=1)
        )
        == "skipped"
    )
    # the sweeper, 10 minutes later
    later = T0 + 2 * H + timedelta(minutes=10)
    work = [
        w
        for source in OUTBOX_SOURCES
        for w in source(now=later, older_than=timedelta(minutes=2))
        if w[0].startswith("refunds.")
    ]
    assert work == [("refunds.refund_issue", [refund.pk, refund.tenant_id])]
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=later
        )
        == "issued"
    )
    call = SandboxGatewayCall.objects.get()
    assert call.calls == 1  # looked up, never sent again
    refund = refund_of(approved)
    assert (refund.state, refund.gateway_reference) == ("issued", call.reference)
    assert list(RefundTransaction.objects.filter(refund=refund).values_list("kind", "status")) == [
        ("lookup", "succeeded")
    ]


def test_recovery_resends_with_the_same_key_only_when_never_seen(approved, monkeypatch, worker):
    refund = refund_of(approved)
    monkeypatch.setattr(
        SandboxGateway, "create", lambda self, request: (_ for _ in ()).throw(SystemExit("before"))
    )
    with pytest.raises(SystemExit):
        services.refund_issue(tenant_id=refund.tenant_id, refund_id=refund.pk, now=T0 + 2 * H)
    monkeypatch.undo()
    assert not SandboxGatewayCall.objects.exists()
    later = T0 + 3 * H
    assert (
        worker.run(
            services.refund_issue, tenant_id=refund.tenant_id, refund_id=refund.pk, now=later
        )
        == "issued"
    )
    assert SandboxGatewayCall.objects.get().idempotency_key == f"refund:{refund.uuid}"
    assert list(RefundTransaction.objects.filter(refund=refund).values_list("kind", "status")) == [
        ("lookup", "not_found"),
        ("create", "succeeded"),
    ]


def test_sandbox_repeated_key_answers_the_first_result(tenant):
    from refunds.gateways.base import RefundRequest

    gw = SandboxGateway()
    req = RefundRequest(
        idempotency_key="refund:abc",
        amount=Decimal("10.00"),
        currency="USD",
        method="original_payment",
        tenant_id=tenant.pk,
    )
    assert gw.lookup(req).status == NOT_FOUND
    first = gw.create(req)
    again = gw.create(RefundRequest(**{**req.__dict__, "amount": Decimal("99.00")}))
    assert first.reference == again.reference
    assert first.status == again.status == SUCCEEDED
    row = SandboxGatewayCall.objects.get()
    assert (row.amount, row.calls) == (Decimal("10.00"), 2)
    assert gw.lookup(req).reference == first.reference


def test_outbox_owes_approved_refunds_not_yet_claimed(approved):
    refund = refund_of(approved)
    assert owed(now=T0 + H + timedelta(minutes=1), older_than=timedelta(minutes=2)) == []
    assert owed(now=T0 + H + timedelta(minutes=3), older_than=timedelta(minutes=2)) == [
        ("refunds.refund_issue", [refund.pk, refund.tenant_id])
    ]


def test_missing_refund_is_logged_not_raised(tenant):
    assert services.refund_issue(tenant_id=tenant.pk, refund_id=999999, now=T0) == "missing"
