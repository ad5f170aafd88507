"""AfterShip Tracking API (``data.tracking`` / ``data.trackings[]``) and the
``tracking_update`` webhook (``{event, event_id, is_tracking_first_tag, msg, ts}``).

Sources: AfterShip Tracking API docs (aftership.com/docs/tracking): checkpoint
``tag``/``subtag`` ("Delivery statuses", "Delivery sub-statuses"),
``checkpoint_time`` (carrier-local, offset optional), ``slug`` (courier);
tracking-level dates (``shipment_delivery_date``) are UTC without ``Z``.
Checkpoints are oldest first. Webhook signature: header
``aftership-hmac-sha256`` = base64(HMAC-SHA256(secret, raw body))
("Webhook signature" page). The body's ``ts`` (unix seconds) is covered by the
signature and returned for the replay window.
"""

from __future__ import annotations

import base64
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
    unix_instant,
)


class Adapter(CarrierAdapter):
    code = "aftership"
    poll_batch_size = 50  # AfterShip Tracking API: 10 requests/s per key
    poll_calls_per_minute = 300
    name = "AfterShip"
    aggregator = True
    mapping = "aftership"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict):
            raise PayloadError("AfterShip: body is not an object")
        if "msg" in data and isinstance(data["msg"], dict):
            trackings = [data["msg"]]
        else:
            inner = data.get("data", data)
            if isinstance(inner, dict) and isinstance(inner.get("tracking"), dict):
                trackings = [inner["tracking"]]
            elif isinstance(inner, dict) and isinstance(inner.get("trackings"), list):
                trackings = c.as_objects(inner["trackings"], "AfterShip: data.trackings")
            elif isinstance(inner, dict) and "checkpoints" in inner:
                trackings = [inner]
            else:
                raise PayloadError("AfterShip: no tracking object")
        return [self._tracking(t, tracking_number, now) for t in trackings]

    def _tracking(
        self, t: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> TrackingResult:
        carrier = physical_carrier(t.get("slug"))
        events = []
        for cp in c.as_objects(t.get("checkpoints"), "AfterShip: checkpoints"):
            loc = c.location(
                city=cp.get("city"),
                region=cp.get("state"),
                postcode=cp.get("zip"),
                country=cp.get("country_iso3") or cp.get("country_region"),
                raw=cp.get("location"),
            )
            local_text = c.opt(cp.get("checkpoint_time"))
            info = c.time_of(local_text, now=now, location=loc)
            events.append(
                c.event(
                    code=cp.get("subtag") or cp.get("tag"),
                    description=cp.get("message"),
                    local_text=local_text,
                    info=info,
                    location=loc,
                    status_hint=cp.get("tag"),
                    detail_hint=cp.get("subtag"),
                    physical_carrier=carrier,
                    physical_code=cp.get("raw_tag"),
                )
            )
        number = c.opt(t.get("tracking_number")) or tracking_number
        tag = c.opt(t.get("tag"))
        summary = (
            SummaryStatus(
                code=c.opt(t.get("subtag")), hint=tag, description=c.clean(t.get("subtag_message"))
            )
            if tag
            else None
        )
        return TrackingResult(
            provider=self.code,
            carrier=carrier or self.code,
            tracking_number="".join(number.split()).upper() if number else None,
            events=c.sequence(events, newest_first=False),
            summary=summary,
            eta=timeparse.parse_date(c.opt(t.get("expected_delivery"))),
            ship_date=timeparse.parse_date(c.opt(t.get("shipment_pickup_date"))),
            origin_country=timeparse.country_code(c.opt(t.get("origin_country_iso3"))),
            destination_country=timeparse.country_code(c.opt(t.get("destination_country_iso3"))),
            extra={
                k: c.clean(t.get(k)) for k in ("id", "slug", "shipment_delivery_date") if t.get(k)
            },
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
        """base64 HMAC-SHA256 of the raw body, compared in constant time. Returns
        the body's ``event_id`` and ``ts`` (signed, as part of the body)."""
        if not secret:
            raise WebhookVerificationError("AfterShip webhook secret is not configured")
        value = header(headers, "aftership-hmac-sha256")
        if not value:
            raise WebhookVerificationError("missing aftership-hmac-sha256 header")
        expected = base64.b64encode(hmac.new(secret.encode("utf-8"), body, "sha256").digest())
        if not hmac.compare_digest(expected, value.strip().encode()):
            raise WebhookVerificationError("AfterShip signature mismatch")
        event_id, signed_at = None, None
        try:
            data = c.load_json(body)
            event_id = c.opt(data.get("event_id"))
            ts = data.get("ts")
            if isinstance(ts, int | float) and not isinstance(ts, bool):
                signed_at = unix_instant(ts)
        except (PayloadError, AttributeError):
            pass
        return WebhookVerification(provider=self.code, event_id=event_id, signed_at=signed_at)

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """GET /tracking/2024-07/trackings?tracking_numbers=... (``as-api-key``
        header, plain HTTPS). Not exercised against the live API here."""
        from urllib.parse import urlencode

        key = credentials.require("api_key")
        query = urlencode({"tracking_numbers": ",".join(numbers), "limit": "200"})
        return c.http_json(
            "GET",
            f"https://api.aftership.com/tracking/2024-07/trackings?{query}",
            headers={"as-api-key": key, "Content-Type": "application/json"},
            timeout=timeout,
        )
