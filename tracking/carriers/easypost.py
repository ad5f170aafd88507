"""EasyPost Trackers (JSON ``Tracker`` objects and ``tracker.*`` webhook Events).

Sources: EasyPost API docs "Trackers" and "Events"/"Webhooks"
(docs.easypost.com): ``tracking_details[]`` with ``status``, ``status_detail``,
``datetime`` (UTC, ``Z``), ``message``, ``carrier_code`` (the physical
carrier's own code), ``tracking_location``; oldest first. Webhook signature:
``X-Hmac-Signature: hmac-sha256-hex=<hex>``, HMAC-SHA256 over the raw body
with the NFKD-normalized webhook secret as key (official fixture in
EasyPost/examples ``official/fixtures``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import _common as c
from . import timeparse
from ._names import physical_carrier
from .base import (
    CarrierAdapter,
    Credentials,
    PayloadError,
    SummaryStatus,
    TrackingResult,
    WebhookVerification,
    WebhookVerificationError,
    header,
    nfkd_utf8,
)

SIGNATURE_PREFIX = "hmac-sha256-hex="


class Adapter(CarrierAdapter):
    code = "easypost"
    poll_batch_size = 100  # EasyPost GET /v2/trackers pages of up to 100
    poll_calls_per_minute = 60
    name = "EasyPost"
    aggregator = True
    mapping = "easypost"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict):
            raise PayloadError("EasyPost: body is not an object")
        if data.get("object") == "Event":
            trackers = [data.get("result")]
        elif isinstance(data.get("trackers"), list):
            trackers = data["trackers"]
        else:
            trackers = [data]
        results = []
        for tracker in trackers:
            if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
                raise PayloadError("EasyPost: no Tracker object")
            results.append(self._tracker(tracker, tracking_number, now))
        return results

    def _tracker(
        self, tracker: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> TrackingResult:
        carrier = physical_carrier(tracker.get("carrier"))
        number = c.opt(tracker.get("tracking_code")) or tracking_number
        events = []
        details = c.as_objects(tracker.get("tracking_details"), "EasyPost: tracking_details")
        for i, d in enumerate(details):
            tl = c.as_object(
                d.get("tracking_location"), f"EasyPost: tracking_details[{i}].tracking_location"
            )
            loc = c.location(
                city=tl.get("city"),
                region=tl.get("state"),
                postcode=tl.get("zip"),
                country=tl.get("country"),
            )
            local_text = c.opt(d.get("datetime"))
            info = c.time_of(local_text, now=now, location=loc)
            events.append(
                c.event(
                    code=d.get("carrier_code"),
                    description=d.get("message") or d.get("description"),
                    local_text=local_text,
                    info=info,
                    location=loc,
                    status_hint=d.get("status"),
                    detail_hint=d.get("status_detail"),
                    physical_carrier=carrier,
                    physical_code=d.get("carrier_code"),
                )
            )
        status = c.opt(tracker.get("status"))
        summary = (
            SummaryStatus(code=None, hint=status, detail=c.opt(tracker.get("status_detail")))
            if status
            else None
        )
        number_out = number
        if carrier and number:
            from .registry import get_adapter

            number_out = get_adapter(carrier).normalize_tracking_number(number)
        elif number:
            number_out = self.normalize_tracking_number(number)
        return TrackingResult(
            provider=self.code,
            carrier=carrier or self.code,
            tracking_number=number_out,
            events=c.sequence(events, newest_first=False),
            summary=summary,
            eta=timeparse.parse_date(c.opt(tracker.get("est_delivery_date"))),
            extra={"tracker_id": c.clean(tracker.get("id")), "mode": c.clean(tracker.get("mode"))},
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
        """Check ``X-Hmac-Signature`` on the raw bytes in constant time.
        EasyPost signs no timestamp: the caller de-duplicates on the returned
        event id and applies its own replay window."""
        if not secret:
            raise WebhookVerificationError("EasyPost webhook secret is not configured")
        value = header(headers, "X-Hmac-Signature")
        if not value or not value.startswith(SIGNATURE_PREFIX):
            raise WebhookVerificationError("missing or malformed X-Hmac-Signature")
        expected = hmac.new(nfkd_utf8(secret), body, "sha256").hexdigest()
        if not hmac.compare_digest(
            expected.encode(), value[len(SIGNATURE_PREFIX) :].strip().lower().encode()
        ):
            raise WebhookVerificationError("EasyPost signature mismatch")
        event_id = None
        try:
            event_id = c.opt(c.load_json(body).get("id"))
        except (PayloadError, AttributeError):
            event_id = None
        return WebhookVerification(provider=self.code, event_id=event_id)

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """GET /v2/trackers?tracking_codes[]=... with the API key (basic auth,
        plain HTTPS; karrio-easypost exists but its tracker *creation* flow does
        not suit polling by number). Not exercised against the live API here."""
        import base64
        from urllib.parse import urlencode

        key = credentials.require("api_key")
        query = urlencode([("tracking_codes[]", n) for n in numbers] + [("page_size", "100")])
        auth = base64.b64encode(f"{key}:".encode()).decode()
        return c.http_json(
            "GET",
            f"https://api.easypost.com/v2/trackers?{query}",
            headers={"Authorization": f"Basic {auth}"},
            timeout=timeout,
        )
