"""A real Celery worker subprocess on PostgreSQL and Redis (DESIGN.md section 11).

The milestone outbox end to end: a service commits a milestone, the on-commit
hook enqueues `returns_portal.dispatch_milestone` on Redis, a separate worker
process picks it up and marks the milestone dispatched in the same database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from rma.models import Milestone
from rma.services import milestone_reach
from tests.conftest import IN_CI, require_postgres
from tests.factories import ReturnRequestFactory

ROOT = Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    env.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": "live-worker-test-" + "x" * 40,
        }
    )
    return env


@pytest.mark.live_worker
@pytest.mark.django_db(transaction=True)
def test_dispatch_runs_on_a_real_worker(tenant):
    require_postgres()
    if not settings.REDIS_URL:
        if IN_CI:
            pytest.fail("CI must run the live worker test with REDIS_URL")
        pytest.skip("needs Redis")
    from celery import current_app

    current_app.control.purge()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "returns_portal",
            "worker",
            "-l",
            "warning",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rr = ReturnRequestFactory(order__tenant=tenant)
        now = datetime.now(UTC)
        result = milestone_reach(
            tenant=tenant,
            return_request=rr,
            name="label_created",
            reached_at=now,
            source="system",
            now=now,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Milestone.objects.get(pk=result.milestone.pk).dispatched_at is not None:
                break
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(0.25)
        assert Milestone.objects.get(pk=result.milestone.pk).dispatched_at is not None
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
