"""Two detection runs at once on PostgreSQL (real row locks): each exception is opened
exactly once, and its alert queued once, whether the runs share the lease or not."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from returns_portal.detection import detection_run
from rma.models import Notification, ReturnException
from tests.clock import T0, labelled_return
from tests.conftest import require_postgres

H = timedelta(hours=1)


def in_parallel(fn, n=2):
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait(timeout=10)
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_without_the_lease_open_each_exception_once(tenant):
    require_postgres()
    returns = [labelled_return(tenant)[0] for _ in range(40)]
    in_parallel(lambda: detection_run(now=T0 + 72 * H, batch_size=7))
    rows = ReturnException.objects.filter(kind="no_first_scan")
    assert rows.count() == 40
    assert sorted(rows.values_list("return_request_id", flat=True)) == sorted(r.pk for r in returns)
    assert Notification.objects.filter(kind="alert_no_first_scan").count() == 40
    # ... and both resolving at once resolve each once.
    in_parallel(lambda: detection_run(now=T0 + 72 * H + H))
    assert ReturnException.objects.filter(state="open").count() == 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_commands_at_once_do_the_work_once(tenant):
    require_postgres()
    for _ in range(25):
        labelled_return(tenant)
    outputs: list[str] = []

    def command():
        out = io.StringIO()
        call_command(
            "detect_exceptions", "--now", "2026-11-12T15:00:00Z", stdout=out, stderr=io.StringIO()
        )
        outputs.append(out.getvalue())

    in_parallel(command)
    assert ReturnException.objects.filter(kind="no_first_scan").count() == 25
    assert Notification.objects.count() == 25
    opened = sum(
        int(line.split('"opened": ')[1].split(",")[0])
        for output in outputs
        for line in output.splitlines()
        if '"no_first_scan"' in line
    )
    assert opened == 25  # one run did it; the other was skipped or found it done
