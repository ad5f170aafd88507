"""`manage.py replay_webhooks` and `raw_payload_replay`: every selected payload
is tried, each in its own transaction; a failing one is reported with its
reason and left `rejected` (still unparseable) or `failed` (anything else),
never `received` for the outbox sweeper to retry; the exit code comes after
all of them (see the command's docstring)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.tracking.conftest import make_shipment, sandbox_doc, utc
from tracking.carriers import registry
from tracking.carriers.base import CarrierAdapter, RawEvent, TrackingResult
from tracking.ingest import IngestError, raw_payload_reject, raw_payload_store
from tracking.models import PayloadState, RawPayload, TrackingEvent
from tracking.outbox import owed
from tracking.webhooks import raw_payload_replay

pytestmark = pytest.mark.django_db
NOW = utc(2026, 11, 20)
EASYPOST_BAD = json.dumps(
    {"object": "Tracker", "tracking_code": "EZ1", "carrier": "USPS", "tracking_details": "x"}
).encode()
MISSING_MAPPING = "mappings/test_no_such_mapping.toml"


class UnmappedAdapter(CarrierAdapter):
    """An adapter shipped without its mapping file: it parses, then
    normalization fails inside the ingest transaction (an internal failure,
    not the payload's fault)."""

    code = "test_unmapped"
    name = "Adapter without a mapping"
    mapping = "test_no_such_mapping"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        event = RawEvent(
            carrier_code="A1", description="scan", occurred_at_local=None, occurred_at=None
        )
        return [
            TrackingResult(
                provider=self.code, carrier=self.code, tracking_number="SB1", events=(event,)
            )
        ]


@pytest.fixture
def unmapped() -> Iterator[CarrierAdapter]:
    adapter = UnmappedAdapter()
    registry.register(adapter)
    yield adapter
    registry._extra.pop(adapter.code, None)


def store(tenant, provider: str, body: bytes, minutes: int) -> RawPayload:
    return raw_payload_store(
        tenant=tenant,
        provider=provider,
        body=body,
        source="webhook",
        now=NOW + timedelta(minutes=minutes),
    )


def replay(*args: str) -> tuple[list[dict], str, int]:
    out, err = StringIO(), StringIO()
    code = 0
    try:
        call_command("replay_webhooks", *args, stdout=out, stderr=err)
    except CommandError as exc:
        code = exc.returncode
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue(), code


def test_replay_an_unparseable_delivery_stays_rejected_and_the_rest_are_replayed(tenant):
    """The tester's case: a delivery answered 400 (kept `rejected`) comes
    first; it no longer aborts the run, is not turned into `received`, and the
    later payload is ingested."""
    shipment = make_shipment(tenant, "SB1")
    bad = store(tenant, "easypost", EASYPOST_BAD, 0)
    raw_payload_reject(
        payload=bad, code="payload", error="could not parse: AttributeError", now=NOW
    )
    good = store(tenant, "sandbox", sandbox_doc(("SB1", [("ACCEPTED", "2026-11-19T10:00:00Z")])), 1)

    lines, summary, code = replay("--tenant", "acme")

    assert lines == [
        {
            "id": bad.pk,
            "provider": "easypost",
            "tenant": "acme",
            "state": "rejected",
            "error": "EasyPost: tracking_details is a string, not a list",
        },
        {
            "id": good.pk,
            "provider": "sandbox",
            "tenant": "acme",
            "state": "processed",
            "events": 1,
            "stored": 1,
            "duplicates": 0,
            "unmatched_numbers": [],
        },
    ]
    assert summary.strip() == "replayed 1, still unparseable 1, failed 0"
    assert code == 2
    bad.refresh_from_db()
    assert (bad.state, bad.error_code, bad.error, bad.attempts) == (
        "rejected",
        "payload",
        "EasyPost: tracking_details is a string, not a list",
        1,
    )
    shipment.refresh_from_db()
    assert shipment.status == "accepted"
    assert owed(now=NOW + timedelta(hours=1), older_than=timedelta(minutes=2)) == []


def test_replay_an_internal_failure_ends_failed_with_the_reason_and_exit_1(tenant, unmapped):
    make_shipment(tenant, "SB1")
    unparseable = store(tenant, "easypost", EASYPOST_BAD, 0)
    broken = store(tenant, unmapped.code, b"{}", 1)
    good = store(tenant, "sandbox", sandbox_doc(("SB1", [("ACCEPTED", "2026-11-19T10:00:00Z")])), 2)

    lines, summary, code = replay("--tenant", "acme")

    assert [(x["id"], x["state"]) for x in lines] == [
        (unparseable.pk, "rejected"),
        (broken.pk, "failed"),
        (good.pk, "processed"),
    ]
    assert lines[1]["error"].startswith("FileNotFoundError: ")
    assert MISSING_MAPPING in lines[1]["error"]
    assert summary.strip() == "replayed 1, still unparseable 1, failed 1"
    assert code == 1  # an internal failure needs a look; it outranks "unparseable"
    broken.refresh_from_db()
    assert (broken.state, broken.error_code, broken.attempts) == ("failed", "internal", 1)
    assert MISSING_MAPPING in broken.error
    # the failed one wrote nothing and is not owed: the sweeper leaves it alone
    assert list(TrackingEvent.objects.values_list("payload_id", flat=True)) == [good.pk]
    assert owed(now=NOW + timedelta(hours=1), older_than=timedelta(minutes=2)) == []
    # replaying it again by id (say, once the mapping ships) is allowed, and counted
    lines, _summary, code = replay("--id", str(broken.pk))
    assert (lines[0]["state"], code) == ("failed", 1)
    broken.refresh_from_db()
    assert broken.attempts == 2


def test_replay_service_rolls_back_and_raises_with_the_row_state(tenant, unmapped):
    payload = store(tenant, unmapped.code, b"{}", 0)
    with pytest.raises(IngestError) as info:
        raw_payload_replay(payload=payload, now=NOW)
    assert info.value.code == "internal"
    assert info.value.payload.state == PayloadState.FAILED
    unparseable = store(tenant, "easypost", EASYPOST_BAD, 1)
    with pytest.raises(IngestError) as info:
        raw_payload_replay(payload=unparseable, now=NOW)
    assert (info.value.code, info.value.payload.state) == ("payload", PayloadState.REJECTED)
    assert RawPayload.objects.filter(state=PayloadState.RECEIVED).count() == 0


def test_replay_every_payload_good_exits_0(tenant, other_tenant):
    make_shipment(tenant, "SB1")
    store(tenant, "sandbox", sandbox_doc(("SB1", [("ACCEPTED", "2026-11-19T10:00:00Z")])), 0)
    store(other_tenant, "easypost", EASYPOST_BAD, 1)  # another tenant's: not selected
    lines, summary, code = replay("--tenant", "acme")
    assert ([x["state"] for x in lines], summary.strip(), code) == (
        ["processed"],
        "replayed 1, still unparseable 0, failed 0",
        0,
    )
