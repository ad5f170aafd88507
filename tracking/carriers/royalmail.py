"""Royal Mail Tracking API (v1/v2 JSON, ``mailPieces``).

Source: Royal Mail Developer Portal "Tracking API" (``/mailpieces/v2/{id}/events``):
``events[]`` with ``eventCode`` (``EV...``), ``eventName``, ``eventDateTime``
(ISO 8601 with offset), ``locationName``; newest first. ``summary`` repeats the
last event (``lastEventCode``/``lastEventDateTime``) plus an untimed
``statusCategory``; it is a pointer to an event, not a separate timed status,
so only ``statusCategory`` is kept as an untimed summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, SummaryStatus, TrackingResult


class Adapter(CarrierAdapter):
    code = "royalmail"
    name = "Royal Mail"
    home_zone = "Europe/London"
    mapping = "royalmail"
    tracking_url_template = "https://www.royalmail.com/track-your-item#/tracking-results/{number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        pieces = c.get(data, "mailPieces")
        if pieces is None:
            errors = c.get(data, "errors") or c.get(data, "httpMessage")
            if errors:
                return [
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(tracking_number)
                        if tracking_number
                        else None,
                        found=False,
                        message=c.clean(
                            c.get(data, "errors", 0, "errorDescription")
                            or (errors if isinstance(errors, str) else "Royal Mail error")
                        ),
                    )
                ]
            raise PayloadError("Royal Mail: no mailPieces")
        results = []
        pieces = c.as_objects(
            pieces if isinstance(pieces, list) else [pieces], "Royal Mail: mailPieces"
        )
        for piece in pieces:
            number = c.opt(piece.get("mailPieceId")) or tracking_number
            summary = c.as_object(piece.get("summary"), "Royal Mail: mailPieces.summary")
            events = []
            for ev in c.as_objects(piece.get("events"), "Royal Mail: mailPieces.events"):
                loc = c.location(facility=ev.get("locationName"), country="GB")
                local_text = c.opt(ev.get("eventDateTime"))
                info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone)
                events.append(
                    c.event(
                        code=ev.get("eventCode"),
                        description=ev.get("eventName"),
                        local_text=local_text,
                        info=info,
                        location=loc,
                    )
                )
            category = c.opt(summary.get("statusCategory"))
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=True),
                    summary=SummaryStatus(
                        code=None,
                        hint=category,
                        description=c.clean(summary.get("statusDescription")),
                    )
                    if category
                    else None,
                    eta=timeparse.parse_date(c.get(piece, "estimatedDelivery", "date")),
                    origin_country=timeparse.country_code(c.opt(summary.get("originCountryCode"))),
                    destination_country=timeparse.country_code(
                        c.opt(summary.get("destinationCountryCode"))
                    ),
                    extra={"barcode": c.clean(summary.get("oneDBarcode"))}
                    if summary.get("oneDBarcode")
                    else {},
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Tracking API through karrio-royalmail (client id/secret headers)."""
        return c.karrio_fetch(
            "royalmail",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("client_id", "client_secret"),
        )
