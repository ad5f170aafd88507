"""JobLease: single flight, expiry, release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from returns_portal.tenancy.leases import job_lease, lease_acquire, lease_release
from returns_portal.tenancy.models import JobLease

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_second_acquire_while_held_fails():
    first = lease_acquire(name="detect", ttl=timedelta(minutes=10), now=T0)
    assert first is not None
    assert (
        lease_acquire(name="detect", ttl=timedelta(minutes=10), now=T0 + timedelta(minutes=9))
        is None
    )


def test_expired_lease_can_be_taken_over():
    first = lease_acquire(name="detect", ttl=timedelta(minutes=10), now=T0)
    second = lease_acquire(name="detect", ttl=timedelta(minutes=10), now=T0 + timedelta(minutes=10))
    assert second is not None and second != first
    assert not lease_release(name="detect", holder=first)  # the old holder no longer holds it
    assert JobLease.objects.get(name="detect").holder == second


def test_release_then_reacquire():
    holder = lease_acquire(name="poll", ttl=timedelta(minutes=1), now=T0)
    assert lease_release(name="poll", holder=holder)
    assert lease_acquire(name="poll", ttl=timedelta(minutes=1), now=T0) is not None


def test_context_manager_yields_none_when_held():
    with job_lease("sweep") as outer:
        assert outer is not None
        with job_lease("sweep") as inner:
            assert inner is None
    assert not JobLease.objects.filter(name="sweep").exists()
