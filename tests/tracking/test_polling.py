"""Polling: due shipments only, per-tenant accounts, batches within the rate
limit, backoff on errors and on "not found yet", stop at delivered, the
sandbox end to end through the same ingest path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from returns_portal.tenancy.leases import lease_acquire
from rma.models import Milestone, Shipment
from rma.services import shipment_hooks_run_created
from tests.tracking.conftest import make_shipment, utc
from tracking.carriers.base import CarrierError
from tracking.carriers.registry import get_adapter
from tracking.carriers.sandbox import sandbox_tracking_number
from tracking.polling import BACKOFF_CAP, poll_backoff, poll_due_run
from tracking.services import carrier_account_save
from tracking.tasks import poll_due, poll_tenant

pytestmark = pytest.mark.django_db
T0 = utc(2026, 11, 10, 15)


def sandbox_shipment(tenant, *, script="delivered", serial=1, **kw):
    number = sandbox_tracking_number(label_at=T0, serial=serial, script=script)
    shipment = make_shipment(tenant, number, created_at=T0, **kw)
    shipment_hooks_run_created(shipment, now=T0)
    shipment.refresh_from_db()
    return shipment


def test_poll_backoff_is_exponential_and_capped():
    base = timedelta(minutes=15)
    assert [poll_backoff(n, base=base) for n in (1, 2, 3, 4)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
    ]
    assert poll_backoff(40, base=base) == BACKOFF_CAP == timedelta(hours=24)


def test_poll_sandbox_moves_a_return_through_every_milestone(tenant):
    shipment = sandbox_shipment(tenant)
    assert shipment.next_poll_at == T0 and shipment.number_check == "valid"
    seen = []
    for hours in (1, 3, 9, 31, 47, 51):
        now = T0 + timedelta(hours=hours)
        Shipment.objects.filter(pk=shipment.pk).update(next_poll_at=now)
        poll_due_run(now=now)
        shipment.refresh_from_db()
        seen.append((hours, shipment.status, shipment.poll_failures, shipment.next_poll_at))
    assert seen == [
        (1, "unknown", 1, T0 + timedelta(hours=2)),  # not found yet: 1 h backoff
        (3, "accepted", 0, T0 + timedelta(hours=7)),
        (9, "in_transit", 0, T0 + timedelta(hours=13)),
        (31, "in_transit", 0, T0 + timedelta(hours=35)),
        (47, "out_for_delivery", 0, T0 + timedelta(hours=48)),
        (51, "delivered", 0, None),  # terminal: polling stops
    ]
    reached = dict(
        Milestone.objects.filter(return_request=shipment.return_request).values_list(
            "name", "reached_at"
        )
    )
    assert reached == {
        "dropped_off": T0 + timedelta(hours=2),
        "first_scan": T0 + timedelta(hours=2),
        "in_transit": T0 + timedelta(hours=8),
        "delivered": T0 + timedelta(hours=50),
    }
    # delivered shipments are never polled again, even if scheduled by mistake
    Shipment.objects.filter(pk=shipment.pk).update(next_poll_at=T0)
    assert poll_due_run(now=T0 + timedelta(hours=60)).shipments == 0


def test_poll_not_found_backs_off_exponentially(tenant):
    shipment = sandbox_shipment(tenant, script="no_scan")
    now = T0
    waits = []
    for _ in range(4):
        now = shipment.next_poll_at
        poll_due_run(now=now)
        shipment.refresh_from_db()
        waits.append(shipment.next_poll_at - now)
    assert waits == [timedelta(hours=1), timedelta(hours=2), timedelta(hours=4), timedelta(hours=8)]
    assert shipment.status == "unknown" and shipment.poll_failures == 4


def test_poll_only_due_shipments(tenant):
    due = sandbox_shipment(tenant, serial=10)
    later = sandbox_shipment(tenant, serial=20)
    Shipment.objects.filter(pk=later.pk).update(next_poll_at=T0 + timedelta(days=1))
    report = poll_due_run(now=T0 + timedelta(hours=3))
    assert report.shipments == 1
    later.refresh_from_db()
    due.refresh_from_db()
    assert (due.status, later.status) == ("accepted", "unknown")


def test_poll_without_carrier_account_does_not_poll_and_unschedules(tenant, monkeypatch):
    calls = []
    monkeypatch.setattr(get_adapter("ups"), "fetch", lambda *a, **k: calls.append(a) or b"")
    shipment = make_shipment(tenant, "1Z999AA10123456784", carrier="ups")
    shipment_hooks_run_created(shipment, now=T0)
    shipment.refresh_from_db()
    assert shipment.next_poll_at is None  # no account: not scheduled
    Shipment.objects.filter(pk=shipment.pk).update(next_poll_at=T0)
    report = poll_due_run(now=T0 + timedelta(hours=1))
    assert (report.skipped, calls) == (1, [])
    shipment.refresh_from_db()
    assert shipment.next_poll_at is None
    # saving an account schedules it again
    carrier_account_save(tenant=tenant, carrier="ups", credentials={"client_id": "x"}, now=T0)
    shipment.refresh_from_db()
    assert shipment.next_poll_at == T0


def test_poll_carrier_errors_back_off_and_keep_credentials_per_tenant(tenant, monkeypatch):
    carrier_account_save(
        tenant=tenant, carrier="ups", credentials={"client_id": "cid", "client_secret": "s"}, now=T0
    )
    seen_credentials = []

    def failing(numbers, credentials, *, timeout):
        seen_credentials.append(dict(credentials.values))
        raise CarrierError("HTTP 503", permanent=False)

    monkeypatch.setattr(get_adapter("ups"), "fetch", failing)
    shipment = make_shipment(tenant, "1Z999AA10123456784", carrier="ups")
    shipment_hooks_run_created(shipment, now=T0)
    waits = []
    for _ in range(3):
        shipment.refresh_from_db()
        now = shipment.next_poll_at
        report = poll_due_run(now=now)
        shipment.refresh_from_db()
        waits.append(shipment.next_poll_at - now)
    assert report.errors == 1
    assert waits == [timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1)]
    assert seen_credentials[0] == {"client_id": "cid", "client_secret": "s"}


def test_poll_batches_within_the_rate_limit(tenant, monkeypatch):
    adapter = get_adapter("sandbox")
    monkeypatch.setattr(type(adapter), "poll_batch_size", 2)
    monkeypatch.setattr(type(adapter), "poll_calls_per_minute", 2)
    batches = []
    real = type(adapter).fetch

    def spy(self, numbers, credentials, *, timeout):
        batches.append(list(numbers))
        return real(self, numbers, credentials, timeout=timeout)

    monkeypatch.setattr(type(adapter), "fetch", spy)
    shipments = [sandbox_shipment(tenant, serial=10 * i) for i in range(1, 6)]
    report = poll_due_run(now=T0 + timedelta(hours=3))
    assert [len(b) for b in batches] == [2, 2]
    assert (report.calls, report.shipments, report.deferred) == (2, 4, 1)
    left = [s for s in shipments if Shipment.objects.get(pk=s.pk).next_poll_at == T0]
    assert len(left) == 1  # still due for the next run


def test_poll_tenant_task_touches_only_that_tenant(tenant, other_tenant):
    mine = sandbox_shipment(tenant)
    theirs = sandbox_shipment(other_tenant)
    Shipment.objects.update(next_poll_at=T0)
    import time_machine

    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        assert poll_tenant(other_tenant.pk) == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("unknown", "accepted")


def test_poll_beat_task_is_single_flight(tenant):
    sandbox_shipment(tenant)
    assert lease_acquire(name="poll_carriers", ttl=timedelta(minutes=5)) is not None
    assert poll_due() == 0


@pytest.mark.django_db(transaction=True)
def test_poll_calls_carriers_outside_any_transaction(tenant, monkeypatch):
    adapter = get_adapter("sandbox")
    real = type(adapter).fetch
    atomic = []

    def spy(self, numbers, credentials, *, timeout):
        atomic.append(connection.in_atomic_block)
        return real(self, numbers, credentials, timeout=timeout)

    monkeypatch.setattr(type(adapter), "fetch", spy)
    shipment = sandbox_shipment(tenant)
    poll_due_run(now=T0 + timedelta(hours=3))
    assert atomic == [False]
    shipment.refresh_from_db()
    assert shipment.status == "accepted"
