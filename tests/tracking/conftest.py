"""Tracking test helpers: a Fernet key for carrier credentials, shipment and
payload builders."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "carriers"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "carriers"
TEST_FERNET_KEY = "1b3jE3bPz9yX5W8kq0rFvQ2sT4uV6wX8yZ0aB2cD4eE="


@pytest.fixture(autouse=True)
def _field_encryption_keys(settings):
    from tracking.selectors import webhook_secret_cache_clear

    settings.FIELD_ENCRYPTION_KEYS = [TEST_FERNET_KEY]
    webhook_secret_cache_clear()
    yield
    webhook_secret_cache_clear()


def corpus_or_skip() -> Path:
    """The shared corpus; skipped when absent, a failure in CI (CI=true)."""
    if not CORPUS.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"carrier corpus missing at {CORPUS} (required in CI)")
        pytest.skip("shared carrier corpus not present")
    return CORPUS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent by name (after commit): a list of (task name, args)."""
    calls: list[tuple[str, list]] = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args=None, **kw: calls.append((name, args))
    )
    return calls


def make_shipment(
    tenant, number: str, *, carrier: str = "sandbox", provider: str | None = None, **kw
):
    """A return of `tenant` with one shipment for `number` (no hook run)."""
    from tests.factories import ReturnRequestFactory, ShipmentFactory

    rr = kw.pop("return_request", None) or ReturnRequestFactory(order__tenant=tenant)
    return ShipmentFactory(
        return_request=rr,
        carrier=carrier,
        tracking_provider=provider or carrier,
        tracking_number=number,
        **kw,
    )


def sandbox_doc(*trackers: tuple[str, list[tuple[str, str]]]) -> bytes:
    """A sandbox tracking document: trackers of (number, [(code, ISO time)])."""
    import json

    return json.dumps(
        {
            "carrier": "sandbox",
            "trackers": [
                {
                    "tracking_number": number,
                    "found": bool(events),
                    "events": [
                        {
                            "code": code,
                            "description": code.replace("_", " ").title(),
                            "occurred_at": at,
                            "location": {"city": "Reno", "region": "NV", "country": "US"},
                        }
                        for code, at in events
                    ],
                }
                for number, events in trackers
            ],
        }
    ).encode()


def easypost_tracker(
    number: str,
    details: list[tuple[str, str | None, str]],
    *,
    carrier: str = "UPS",
    status: str | None = None,
    event_id: str | None = None,
    created_at: str = "2026-11-12T10:00:00Z",
) -> bytes:
    """An EasyPost Tracker (or a `tracker.updated` Event when `event_id`):
    details are (status, status_detail, ISO time)."""
    import json

    tracker = {
        "object": "Tracker",
        "id": f"trk_{number}",
        "mode": "test",
        "tracking_code": number,
        "carrier": carrier,
        "status": status or (details[-1][0] if details else "unknown"),
        "tracking_details": [
            {
                "object": "TrackingDetail",
                "status": st,
                "status_detail": detail,
                "datetime": at,
                "message": f"{st} {detail or ''}".strip(),
                "tracking_location": {
                    "city": "Reno",
                    "state": "NV",
                    "country": "US",
                    "zip": "89502",
                },
            }
            for st, detail, at in details
        ],
    }
    if event_id is None:
        return json.dumps(tracker).encode()
    return json.dumps(
        {
            "object": "Event",
            "id": event_id,
            "description": "tracker.updated",
            "created_at": created_at,
            "result": tracker,
        }
    ).encode()
