"""`manage.py detect_exceptions` and the beat task (DESIGN.md section 9): JSON lines per
kind, the lease (runs one after another all work, two at once do it once), --dry-run,
--no-notify, --now replays that never resolve."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from returns_portal import tasks
from returns_portal.detection import LEASE_NAME, is_replay
from returns_portal.tenancy.leases import lease_acquire, lease_release
from returns_portal.tenancy.models import JobLease
from rma.models import ExceptionKind, Notification, ReturnException
from tests.clock import T0, labelled_return, reach
from tests.clock import ingest as ingest_update

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


def run(*args: str) -> tuple[list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("detect_exceptions", *args, stdout=out, stderr=err)
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def by_kind(lines: list[dict]) -> dict[str, dict]:
    return {line["kind"]: line for line in lines}


def iso(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_one_json_line_per_kind(tenant):
    labelled_return(tenant)
    lines, _err = run("--now", iso(T0 + 72 * H))
    assert [line["kind"] for line in lines] == ExceptionKind.values
    assert by_kind(lines)["no_first_scan"] == {
        "kind": "no_first_scan",
        "opened": 1,
        "resolved": 0,
        "updated": 0,
        "escalated": 0,
        "alerts": 1,
    }
    assert set(lines[0]) == {"kind", "opened", "resolved", "updated", "escalated", "alerts"}
    assert not JobLease.objects.filter(name=LEASE_NAME).exists()  # released


def test_runs_one_after_another_all_work_and_the_second_changes_nothing(tenant):
    labelled_return(tenant)
    first, _ = run("--now", iso(T0 + 72 * H))
    second, _ = run("--now", iso(T0 + 72 * H))
    assert by_kind(first)["no_first_scan"]["opened"] == 1
    assert all(v == 0 for line in second for k, v in line.items() if k != "kind")


def test_a_run_while_the_lease_is_held_does_nothing(tenant):
    labelled_return(tenant)
    holder = lease_acquire(name=LEASE_NAME, ttl=timedelta(minutes=10))
    try:
        lines, _ = run("--now", iso(T0 + 72 * H))
        assert lines == [{"skipped": "lease held"}]
        assert tasks.detect_exceptions() == []
        assert not ReturnException.objects.exists()
    finally:
        lease_release(name=LEASE_NAME, holder=holder)


def test_offsets_are_accepted_and_naive_times_refused(tenant):
    labelled_return(tenant)
    # 2026-11-12 15:00Z written as 10:00-05:00
    lines, _ = run("--now", "2026-11-12T10:00:00-05:00")
    assert by_kind(lines)["no_first_scan"]["opened"] == 1
    with pytest.raises(CommandError) as err:
        run("--now", "2026-11-12T10:00:00")
    assert err.value.returncode == 2
    with pytest.raises(CommandError):
        run("--now", "yesterday")
    with pytest.raises(CommandError) as err:  # no UTC instant exists for it
        run("--now", "0001-01-01T00:00:00+14:00")
    assert err.value.returncode == 2 and "out of range" in str(err.value)
    with pytest.raises(CommandError) as err:  # the next beat run would resolve them early
        run("--now", "2999-01-01T00:00:00Z")
    assert err.value.returncode == 2 and "in the future" in str(err.value)


def test_dry_run_counts_and_writes_nothing(tenant):
    labelled_return(tenant)
    lines, _ = run("--now", iso(T0 + 72 * H), "--dry-run")
    assert by_kind(lines)["no_first_scan"]["opened"] == 1
    assert by_kind(lines)["no_first_scan"]["alerts"] == 1
    assert not ReturnException.objects.exists()
    assert not Notification.objects.exists()


def test_no_notify(tenant):
    labelled_return(tenant)
    lines, _ = run("--now", iso(T0 + 72 * H), "--no-notify")
    assert by_kind(lines)["no_first_scan"]["alerts"] == 0
    assert ReturnException.objects.count() == 1
    assert not Notification.objects.exists()


def test_now_replay_in_the_past_never_resolves(tenant):
    rr, shipment = labelled_return(tenant)
    run("--now", iso(T0 + 72 * H))
    scan = T0 + 80 * H
    ingest_update(
        shipment, scan, status="accepted", status_at=scan, last_event_at=scan, shipped_at=scan
    )
    reach(rr, "first_scan", scan)
    # T0 is in 2026-11; the wall clock of the test run is later or earlier: force a
    # replay by judging far in the past relative to the wall clock.
    lines, err = run("--now", "2000-01-01T00:00:00Z")
    assert all(line["resolved"] == 0 for line in lines)
    assert "resolved nothing" in err
    assert ReturnException.objects.get().state == "open"


def test_replay_rule():
    assert is_replay(T0, T0 + 2 * H)
    assert not is_replay(T0, T0 + timedelta(seconds=30))
    assert not is_replay(T0 + H, T0)


def test_beat_schedule_runs_every_five_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["detect-exceptions"]
    assert entry == {"task": "returns_portal.detect_exceptions", "schedule": timedelta(minutes=5)}


def test_beat_task_runs_under_the_lease(tenant, monkeypatch):
    labelled_return(tenant)
    monkeypatch.setattr("django.utils.timezone.now", lambda: T0 + 72 * H)
    lines = tasks.detect_exceptions()
    assert by_kind(lines)["no_first_scan"]["opened"] == 1
    assert not JobLease.objects.filter(name=LEASE_NAME).exists()
