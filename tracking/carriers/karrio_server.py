"""A karrio server (self-hosted or karrio.io) as a tracking provider.

Source: karrio REST API docs "Trackers" (``GET /v1/trackers/{id_or_number}``)
and "Webhooks": a Tracker has ``carrier_name`` (the physical carrier),
``tracking_number``, ``status`` and ``events[]`` (``code``, ``description``,
``date`` + ``time`` or ``timestamp``, ``location``, ``status``); events newest
first. karrio's per-event ``status`` is kept as the hint and mapped through our
table; where karrio gives the carrier's raw ``code`` and the carrier is known,
the physical carrier's mapping refines a coarse status. karrio's timestamps
label local wall time with ``Z`` (shared/carriers/NOTES.md 1.1), so the
``date``/``time`` pair is read as local time at the event's location.
Webhooks: ``{"type": "tracker.updated", "data": {...tracker}}`` signed with
``X-Karrio-Signature`` = hex HMAC-SHA256 of the raw body (karrio docs
"Webhooks - verifying signatures").
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import _common as c
from ._names import physical_carrier
from .base import (
    CarrierAdapter,
    Credentials,
    Location,
    PayloadError,
    SummaryStatus,
    TrackingResult,
    WebhookVerification,
    WebhookVerificationError,
    header,
)


def _split_location(text: str | None) -> Location | None:
    """karrio joins "city, state, postal, country"; split it back when the
    last part is an ISO-2 country, else keep the raw text only."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) >= 2 and len(parts[-1]) == 2 and parts[-1].isalpha():
        region = parts[1] if len(parts) >= 3 and parts[1].isalpha() and len(parts[1]) <= 3 else None
        return c.location(city=parts[0], region=region, country=parts[-1], raw=text)
    return c.location(raw=text)


class Adapter(CarrierAdapter):
    code = "karrio"
    poll_batch_size = 50  # karrio server /v1/trackers
    poll_calls_per_minute = 60
    name = "karrio"
    aggregator = True
    mapping = "karrio"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if isinstance(data, dict) and isinstance(data.get("data"), dict) and "type" in data:
            trackers = [data["data"]]
        elif isinstance(data, dict) and isinstance(data.get("results"), list):
            trackers = c.as_objects(data["results"], "karrio: results")
        elif isinstance(data, dict) and "events" in data:
            trackers = [data]
        else:
            raise PayloadError("karrio: no tracker object")
        return [self._tracker(t, tracking_number, now) for t in trackers]

    def _tracker(
        self, t: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> TrackingResult:
        carrier = physical_carrier(t.get("carrier_name"))
        events = []
        for ev in c.as_objects(t.get("events"), "karrio: events"):
            loc = _split_location(c.opt(ev.get("location")))
            local_text = c.joined(c.opt(ev.get("date")), c.opt(ev.get("time")))
            info = c.time_of(local_text, now=now, location=loc)
            events.append(
                c.event(
                    code=ev.get("code"),
                    description=ev.get("description"),
                    local_text=local_text,
                    info=info,
                    location=loc,
                    status_hint=ev.get("status"),
                    physical_carrier=carrier,
                    physical_code=ev.get("code"),
                )
            )
        number = c.opt(t.get("tracking_number")) or tracking_number
        status = c.opt(t.get("status"))
        return TrackingResult(
            provider=self.code,
            carrier=carrier or self.code,
            tracking_number="".join(number.split()).upper() if number else None,
            events=c.sequence(events, newest_first=True),
            summary=SummaryStatus(code=None, hint=status) if status else None,
        )

    def verify_webhook(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        secret: str,
        now: datetime,
        query: Mapping[str, str] | None = None,
    ) -> WebhookVerification:
        """Hex HMAC-SHA256 of the raw body in ``X-Karrio-Signature``, constant time."""
        if not secret:
            raise WebhookVerificationError("karrio webhook secret is not configured")
        value = header(headers, "X-Karrio-Signature")
        if not value:
            raise WebhookVerificationError("missing X-Karrio-Signature")
        expected = hmac.new(secret.encode(), body, "sha256").hexdigest()
        if not hmac.compare_digest(expected.encode(), value.strip().lower().encode()):
            raise WebhookVerificationError("karrio signature mismatch")
        event_id = None
        with contextlib.suppress(PayloadError, AttributeError):
            event_id = c.opt(c.load_json(body).get("id"))
        return WebhookVerification(provider=self.code, event_id=event_id)

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """GET {base_url}/v1/trackers?tracking_number=... with ``Authorization:
        Token <key>`` (plain HTTPS against the tenant's karrio server)."""
        from urllib.parse import urlencode

        base = credentials.require("base_url").rstrip("/")
        key = credentials.require("api_key")
        query = urlencode({"tracking_number": ",".join(numbers)})
        return c.http_json(
            "GET",
            f"{base}/v1/trackers?{query}",
            headers={"Authorization": f"Token {key}"},
            timeout=timeout,
        )
