"""`JobLease`: single-flight periodic jobs on any database.

A lease is a row keyed by job name. Taking it is one conditional write that
only succeeds when the row is missing or expired, so two beats, a double fire
or two `detect_exceptions` runs at once do the work once. The holder releases
it when done; a crashed holder's lease expires after `ttl`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from returns_portal.tenancy.models import JobLease


def _holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_acquire(*, name: str, ttl: timedelta, now: datetime | None = None) -> str | None:
    """Take the lease `name` for `ttl`; return the holder id, or None if someone holds it.

    `now` is the wall clock (UTC); it is not the job's simulated `--now`.
    """
    now = now or timezone.now()
    holder = _holder_id()
    expires = now + ttl
    taken = JobLease.objects.filter(name=name, expires_at__lte=now).update(
        holder=holder, expires_at=expires, acquired_at=now
    )
    if taken:
        return holder
    try:
        with transaction.atomic():
            JobLease.objects.create(name=name, holder=holder, expires_at=expires, acquired_at=now)
    except IntegrityError:
        return None
    return holder


def lease_release(*, name: str, holder: str) -> bool:
    """Release `name` if `holder` still holds it. Returns whether it was released."""
    return bool(JobLease.objects.filter(name=name, holder=holder).delete()[0])


@contextlib.contextmanager
def job_lease(name: str, *, ttl: timedelta = timedelta(minutes=10)) -> Iterator[str | None]:
    """Context manager: yields the holder id, or None when another run holds the lease."""
    holder = lease_acquire(name=name, ttl=ttl)
    try:
        yield holder
    finally:
        if holder:
            lease_release(name=name, holder=holder)
