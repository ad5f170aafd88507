"""Conformance over the shared carrier corpus (``../shared/carriers``).

Every payload's carrier comes from expected.json (never the folder name). Per
event: carrier_code, occurred_at_local, occurred_at, status, exception_reason,
description in payload order. Per shipment: shipment_status, first accepted
instant (earliest timed ``accepted``; where given it is also ``first_scan``)
and the delivered milestone.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracking.carriers.registry import get_adapter
from tracking.normalize import (
    derive_milestones,
    normalize_result,
    shipment_status,
    summary_fallback,
)

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "carriers"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _load(name: str) -> list[dict]:
    return json.loads((CORPUS / name).read_text(encoding="utf-8"))


def _corpus_or_skip() -> None:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"carrier corpus missing at {CORPUS} (required in CI)")
        pytest.skip("shared carrier corpus not present")


def _expected() -> list[dict]:
    return _load("expected.json") if CORPUS.is_dir() else []


def _payload_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.suffix in (".json", ".xml")
    )


def _clip(ours: str, theirs: str) -> str:
    """events.json cuts descriptions at 60 characters; compare that prefix."""
    return ours[:60] if len(theirs) == 60 else ours


def _fmt(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def _results(file: str, carrier: str):
    adapter = get_adapter(carrier)
    body = (CORPUS / file).read_bytes()
    return adapter.parse(body, now=NOW)


def _by_number(results, number):
    matches = [r for r in results if r.tracking_number == number]
    assert len(matches) == 1, f"{number!r} not uniquely in {[r.tracking_number for r in results]}"
    return matches[0]


def test_conformance_every_payload_has_an_expected_entry() -> None:
    _corpus_or_skip()
    covered = {e["file"] for e in _expected()}
    assert set(_payload_files()) == covered
    assert {e["file"] for e in _load("events.json")} == covered


@pytest.mark.parametrize("entry", _expected(), ids=lambda e: f"{e['file']}#{e['tracking_number']}")
def test_conformance_events_match(entry: dict) -> None:
    _corpus_or_skip()
    results = _results(entry["file"], entry["carrier"])
    result = _by_number(results, entry["tracking_number"])
    want = next(
        s
        for s in _load("events.json")
        if s["file"] == entry["file"] and s["tracking_number"] == entry["tracking_number"]
    )["events"]
    got = normalize_result(result, include_summary=False)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert {
            "carrier_code": g.raw.carrier_code,
            "occurred_at_local": g.raw.occurred_at_local,
            "occurred_at": _fmt(g.raw.occurred_at),
            "status": g.status,
            "exception_reason": g.exception_reason,
            "description": _clip(g.raw.description, w["description"]),
        } == {
            k: w[k]
            for k in (
                "carrier_code",
                "occurred_at_local",
                "occurred_at",
                "status",
                "exception_reason",
                "description",
            )
        }, w["index"]
        if (
            w["occurred_at"] is None
            and w["occurred_at_local"]
            and w["occurred_at_local"].endswith(("T00:00:00", "T00:00:00Z"))
        ):
            assert g.raw.time_precision == "date"


@pytest.mark.parametrize("entry", _expected(), ids=lambda e: f"{e['file']}#{e['tracking_number']}")
def test_conformance_shipment_matches(entry: dict) -> None:
    _corpus_or_skip()
    result = _by_number(_results(entry["file"], entry["carrier"]), entry["tracking_number"])
    events = normalize_result(result)
    status = shipment_status(events, fallback=summary_fallback(result))
    got = status.status if status.status != "exception" else f"exception.{status.exception_reason}"
    assert got == entry["final_status"]
    milestones = derive_milestones(events)
    timed_accepted = [
        e.raw.occurred_at for e in events if e.status == "accepted" and e.raw.occurred_at
    ]
    assert _fmt(min(timed_accepted) if timed_accepted else None) == entry["first_accepted_at"]
    if entry["first_accepted_at"] is not None:
        assert milestones.first_scan is not None
        assert _fmt(milestones.first_scan.instant) == entry["first_accepted_at"]
        assert milestones.dropped_off is not None
        assert _fmt(milestones.dropped_off.instant) == entry["first_accepted_at"]
    assert (
        _fmt(milestones.delivered.instant if milestones.delivered else None)
        == entry["delivered_at"]
    )
