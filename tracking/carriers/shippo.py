"""Shippo Track objects (``GET /tracks/{carrier}/{number}``) and the
``track_updated`` webhook (``{event, test, data}``).

Sources: Shippo API reference "Tracking" (docs.goshippo.com): ``tracking_history[]``
(oldest first) and ``tracking_status`` with ``status`` (UNKNOWN, PRE_TRANSIT,
TRANSIT, DELIVERED, RETURNED, FAILURE), ``substatus {code}`` (newer
responses), ``status_details``, ``status_date`` ("displayed in UTC").
Shippo pads date-only carrier records with ``T00:00:00Z``: such values are
date-only. Webhook security (docs "Webhook security"): a secret ``token``
query parameter in the webhook URL (constant-time compared); optionally an
HMAC header ``Shippo-Auth-Signature: t=<unix>,v1=<hex>`` over ``"<t>.<body>"``
with a 300 s tolerance (from third-party descriptions; unverified against an
official fixture).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from . import _common as c
from . import timeparse
from ._names import physical_carrier
from .base import (
    CarrierAdapter,
    Credentials,
    PayloadError,
    RawEvent,
    SummaryStatus,
    TrackingResult,
    WebhookVerification,
    WebhookVerificationError,
    header,
)

TOLERANCE = timedelta(seconds=300)
#: Unix seconds fit in 11 digits until the year 5138; longer ``t`` values are malformed.
MAX_STAMP_DIGITS = 12


def _substatus(node: Mapping[str, Any], what: str) -> object:
    """``substatus.code`` (newer responses); ``substatus`` itself must be an object."""
    return c.as_object(node.get("substatus"), what).get("code")


class Adapter(CarrierAdapter):
    code = "shippo"
    name = "Shippo"
    aggregator = True
    mapping = "shippo"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict):
            raise PayloadError("Shippo: body is not an object")
        track = data.get("data") if isinstance(data.get("data"), dict) and "event" in data else data
        if not isinstance(track, dict) or (
            "tracking_status" not in track and "tracking_history" not in track
        ):
            raise PayloadError("Shippo: no Track object")
        carrier = physical_carrier(track.get("carrier"))
        events = []
        history = c.as_objects(track.get("tracking_history"), "Shippo: tracking_history")
        for i, st in enumerate(history):
            events.append(self._event(st, i, carrier, now))
        status = c.as_object(track.get("tracking_status"), "Shippo: tracking_status")
        summary = None
        if status.get("status"):
            summary_at = timeparse.parse_aware(c.opt(status.get("status_date")), now=now)
            wall = timeparse.parse_iso(c.clean(status.get("status_date")))
            if wall is not None and wall.naive.time().isoformat() == "00:00:00":
                summary_at = None  # date-only padding is not a timestamp
            summary = SummaryStatus(
                code=c.opt(status.get("status")),
                description=c.clean(status.get("status_details")),
                occurred_at=summary_at,
                occurred_at_local=c.opt(status.get("status_date")),
                hint=c.opt(status.get("status")),
                detail=c.opt(_substatus(status, "Shippo: tracking_status.substatus")),
            )
        number = c.opt(track.get("tracking_number")) or tracking_number
        return [
            TrackingResult(
                provider=self.code,
                carrier=carrier or self.code,
                tracking_number="".join(number.split()).upper() if number else None,
                events=c.sequence(events, newest_first=False),
                summary=summary,
                eta=timeparse.parse_date(c.opt(track.get("eta"))),
                origin_country=c.opt(c.get(track, "address_from", "country")),
                destination_country=c.opt(c.get(track, "address_to", "country")),
            )
        ]

    def _event(self, st: Mapping[str, Any], i: int, carrier: str | None, now: datetime) -> RawEvent:
        loc_d = c.as_object(st.get("location"), f"Shippo: tracking_history[{i}].location")
        loc = c.location(
            city=loc_d.get("city"),
            region=loc_d.get("state"),
            postcode=loc_d.get("zip"),
            country=loc_d.get("country"),
        )
        local_text = c.opt(st.get("status_date"))
        info = c.time_of(local_text, now=now, location=loc, utc_midnight_is_date=True)
        return c.event(
            code=st.get("status"),
            description=st.get("status_details"),
            local_text=local_text,
            info=info,
            location=loc,
            status_hint=st.get("status"),
            detail_hint=_substatus(st, f"Shippo: tracking_history[{i}].substatus"),
            physical_carrier=carrier,
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
        """Accept either a valid ``Shippo-Auth-Signature`` (t within 300 s of
        ``now``) or the URL's ``token`` query parameter equal to the secret.
        Both compared in constant time. Raises WebhookVerificationError."""
        if not secret:
            raise WebhookVerificationError("Shippo webhook secret is not configured")
        sig = header(headers, "Shippo-Auth-Signature")
        if sig:
            parts = dict(p.strip().split("=", 1) for p in sig.split(",") if "=" in p)
            stamp = parts.get("t", "").strip()
            # Untrusted text: plain ASCII digits of a sane length, compared as
            # integers; nothing is turned into a datetime before it is signed
            # and within the tolerance (a huge ``t`` must not overflow).
            if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_STAMP_DIGITS):
                raise WebhookVerificationError("malformed Shippo-Auth-Signature")
            expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, "sha256").hexdigest()
            if not hmac.compare_digest(expected.encode(), parts.get("v1", "").lower().encode()):
                raise WebhookVerificationError("Shippo signature mismatch")
            if abs(int(now.timestamp()) - int(stamp)) > TOLERANCE.total_seconds():
                raise WebhookVerificationError("Shippo signature timestamp outside the tolerance")
            signed_at = datetime.fromtimestamp(int(stamp), tz=UTC)
            return WebhookVerification(provider=self.code, signed_at=signed_at)
        token = (query or {}).get("token") or header(headers, "X-Shippo-Token")
        if token and hmac.compare_digest(token.encode(), secret.encode()):
            return WebhookVerification(provider=self.code)
        raise WebhookVerificationError("Shippo delivery carries no valid token or signature")

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """GET /tracks/{carrier}/{number} per number (``ShippoToken`` auth,
        plain HTTPS); the physical carrier token comes from credentials
        ``carrier``. Returns a batch envelope. Not exercised live here."""
        import json
        from urllib.parse import quote

        key = credentials.require("api_key")
        carrier = credentials.get("carrier") or "usps"
        docs = []
        for n in numbers:
            raw = c.http_json(
                "GET",
                f"https://api.goshippo.com/tracks/{quote(carrier)}/{quote(n)}",
                headers={"Authorization": f"ShippoToken {key}"},
                timeout=timeout,
            )
            docs.append(raw.decode("utf-8"))
        return json.dumps({"batch": docs}).encode()
