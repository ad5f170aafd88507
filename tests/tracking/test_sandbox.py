"""The sandbox carrier: deterministic scripts, exact statuses at given times,
numbers that carry their label time, and the same parse path as any carrier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tracking.carriers.base import Credentials, PayloadError
from tracking.carriers.registry import get_adapter
from tracking.carriers.sandbox import (
    SCRIPTS,
    label_time,
    sandbox_tracking_number,
    script_for,
    tracking_document,
)
from tracking.normalize import derive_milestones, normalize_result, shipment_status

T0 = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)


def status_at(number: str, hours: float) -> str:
    adapter = get_adapter("sandbox")
    body = adapter.fetch(
        [number], Credentials({"as_of": (T0 + timedelta(hours=hours)).isoformat()}), timeout=1
    )
    result = adapter.parse(body, now=T0 + timedelta(days=30))[0]
    status = shipment_status(normalize_result(result))
    return status.status + (f".{status.exception_reason}" if status.exception_reason else "")


@pytest.mark.parametrize(
    ("script", "timeline"),
    [
        (
            "delivered",
            {
                0: "unknown",
                1.99: "unknown",
                2: "accepted",
                8: "in_transit",
                30: "in_transit",
                46: "out_for_delivery",
                50: "delivered",
                500: "delivered",
            },
        ),
        ("no_scan", {0: "unknown", 50: "unknown", 500: "unknown"}),
        (
            "delayed",
            {
                2: "accepted",
                8: "in_transit",
                30: "exception.delayed",
                53: "exception.delayed",
                54: "in_transit",
                70: "out_for_delivery",
                74: "delivered",
            },
        ),
        (
            "failed_attempt",
            {
                2: "accepted",
                30: "in_transit",
                46: "out_for_delivery",
                50: "exception.failed_attempt",
                70: "out_for_delivery",
                74: "delivered",
            },
        ),
    ],
)
def test_sandbox_scripts_give_exact_statuses_at_given_times(script, timeline):
    number = sandbox_tracking_number(label_at=T0, serial=42, script=script)
    assert script_for(number) == script
    assert {h: status_at(number, h) for h in timeline} == timeline


def test_sandbox_numbers_carry_the_label_time_and_a_check_digit():
    number = sandbox_tracking_number(label_at=T0 + timedelta(seconds=59), serial=1234)
    assert number.startswith("SBX") and len(number) == 17
    assert label_time(number) == T0
    adapter = get_adapter("sandbox")
    assert adapter.check_digit_valid(number) is True
    broken = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert adapter.check_digit_valid(broken) is False and label_time(broken) is None
    assert adapter.check_digit_valid("OTHER123") is None
    assert script_for(sandbox_tracking_number(label_at=T0, serial=1237)) == "no_scan"
    with pytest.raises(ValueError):
        sandbox_tracking_number(label_at=T0.replace(tzinfo=None), serial=1)
    with pytest.raises(ValueError):
        sandbox_tracking_number(label_at=T0, serial=1, script="teleported")


def test_sandbox_is_deterministic_and_any_number_gets_a_script():
    scripts = {script_for(f"DEMO{i}") for i in range(60)}
    assert scripts == set(SCRIPTS)
    assert [script_for("DEMO7")] * 3 == [script_for("DEMO7") for _ in range(3)]
    a = tracking_document(["DEMO7"], now=T0 + timedelta(hours=60), label_times={"DEMO7": T0})
    b = tracking_document(["DEMO7"], now=T0 + timedelta(hours=60), label_times={"DEMO7": T0})
    assert a == b


def test_sandbox_foreign_numbers_take_the_label_time_from_the_credentials():
    adapter = get_adapter("sandbox")
    number = next(f"DEMO{i}" for i in range(100) if script_for(f"DEMO{i}") == "delivered")
    creds = Credentials(
        {"as_of": (T0 + timedelta(hours=60)).isoformat(), f"label_at:{number}": T0.isoformat()}
    )
    result = adapter.parse(adapter.fetch([number], creds, timeout=1), now=T0 + timedelta(days=9))[0]
    events = normalize_result(result)
    assert shipment_status(events).status == "delivered"
    assert derive_milestones(events).delivered.instant == T0 + timedelta(hours=50)
    unknown = adapter.parse(
        adapter.fetch(["NOLABEL1"], Credentials({"as_of": T0.isoformat()}), timeout=1), now=T0
    )[0]
    assert (unknown.found, unknown.message, unknown.events) == (False, "unknown sandbox number", ())


def test_sandbox_document_shape_and_parse_errors():
    number = sandbox_tracking_number(label_at=T0, serial=10)
    doc = json.loads(tracking_document([number], now=T0 + timedelta(hours=9)))
    assert doc["as_of"] == "2026-11-11T00:00:00Z"
    tracker = doc["trackers"][0]
    assert [e["code"] for e in tracker["events"]] == ["ACCEPTED", "DEPARTED"]
    assert tracker["events"][0] == {
        "code": "ACCEPTED",
        "description": "Parcel dropped off at the drop-off point",
        "occurred_at": "2026-11-10T17:00:00Z",
        "location": {"city": "Newark", "region": "NJ", "postcode": "07102", "country": "US"},
    }
    adapter = get_adapter("sandbox")
    for bad in (b"nope", b"[]", b'{"trackers": [1]}', b'{"trackers": [{"events": [2]}]}'):
        with pytest.raises(PayloadError):
            adapter.parse(bad, now=T0)
