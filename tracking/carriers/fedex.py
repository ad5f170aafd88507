"""FedEx Track API (JSON, ``output.completeTrackResults[].trackResults[]``).

Source: FedEx Developer Portal, Track API v1 (``POST /track/v1/trackingnumbers``)
response schema: ``scanEvents[]`` with ``date`` (ISO 8601 with the scan's
offset), ``eventType`` (the scan code), ``eventDescription``,
``exceptionCode``/``exceptionDescription``, ``scanLocation``. Newest first.
A time without an offset is local to the scan; a bare ``00:00:00`` is a
date-only value (shared/carriers/EXPECTED.md, FedEx PU). Per-number errors
(``TRACKING.TRACKINGNUMBER.NOTFOUND``) become ``found=False`` results.
``dateAndTimes``/``latestStatusDetail`` are not used to derive events
(the doc example's ACTUAL_DELIVERY contradicts its scans).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, RawEvent, SummaryStatus, TrackingResult


def fedex_check_digit(number: str) -> bool | None:
    """FedEx Express/Ground 12-digit (mod 11, weights 1,3,7 from the right) and
    15-digit Ground (mod 10, weights 3,1) check digits. Source: FedEx
    "Tracking number check digit" rules from the FedEx Ship Manager label
    specification. None for other lengths (SmartPost/Door Tag)."""
    n = "".join(number.split())
    if not n.isdigit():
        return None
    if len(n) == 12:
        weights = (1, 3, 7)
        body = n[:11][::-1]
        total = sum(int(d) * weights[i % 3] for i, d in enumerate(body))
        return total % 11 % 10 == int(n[11])
    if len(n) == 15:
        body = n[:14][::-1]
        total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
        return (10 - total % 10) % 10 == int(n[14])
    return None


class Adapter(CarrierAdapter):
    code = "fedex"
    poll_batch_size = 30  # FedEx Track API: up to 30 numbers per request
    poll_calls_per_minute = 60
    name = "FedEx"
    home_zone = None
    mapping = "fedex"
    tracking_url_template = "https://www.fedex.com/fedextrack/?trknbr={number}"

    def check_digit_valid(self, number: str) -> bool | None:
        return fedex_check_digit(number)

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        complete = c.get(data, "output", "completeTrackResults")
        if not isinstance(complete, list):
            errors = c.get(data, "errors", default=[])
            if errors:
                raise PayloadError(f"FedEx error response: {c.clean(c.get(errors, 0, 'message'))}")
            raise PayloadError("FedEx: no output.completeTrackResults")
        results: list[TrackingResult] = []
        for item in c.as_objects(complete, "FedEx: completeTrackResults"):
            top_number = c.opt(item.get("trackingNumber"))
            for tr in c.as_objects(item.get("trackResults"), "FedEx: trackResults"):
                number = (
                    top_number
                    or c.opt(c.get(tr, "trackingNumberInfo", "trackingNumber"))
                    or tracking_number
                )
                scans = c.as_objects(tr.get("scanEvents"), "FedEx: scanEvents")
                error = c.as_object(tr.get("error"), "FedEx: trackResults[].error")
                if not scans and error:
                    results.append(
                        TrackingResult(
                            provider=self.code,
                            carrier=self.code,
                            tracking_number=self.normalize_tracking_number(number)
                            if number
                            else None,
                            found=False,
                            message=f"{c.clean(error.get('code'))}: {c.clean(error.get('message'))}",
                        )
                    )
                    continue
                events = [self._event(s, now) for s in scans]
                latest = c.as_object(
                    tr.get("latestStatusDetail"), "FedEx: trackResults[].latestStatusDetail"
                )
                summary = (
                    SummaryStatus(
                        code=c.opt(latest.get("code")),
                        description=c.clean(latest.get("description")),
                    )
                    if latest.get("code")
                    else None
                )
                ship = None
                for dt in c.as_objects(tr.get("dateAndTimes"), "FedEx: dateAndTimes"):
                    if dt.get("type") in ("SHIP", "ACTUAL_PICKUP") and ship is None:
                        ship = timeparse.parse_date(dt.get("dateTime"))
                eta = timeparse.parse_date(
                    c.get(tr, "estimatedDeliveryTimeWindow", "window", "ends")
                    or c.get(tr, "standardTransitTimeWindow", "window", "ends")
                )
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        events=c.sequence(events, newest_first=True),
                        summary=summary,
                        ship_date=ship,
                        eta=eta,
                        origin_country=c.opt(
                            c.get(tr, "shipperInformation", "address", "countryCode")
                        ),
                        destination_country=c.opt(
                            c.get(tr, "recipientInformation", "address", "countryCode")
                        ),
                    )
                )
        return results

    def _event(self, scan: Mapping[str, Any], now: datetime) -> RawEvent:
        addr = c.as_object(scan.get("scanLocation"), "FedEx: scanEvents[].scanLocation")
        loc = c.location(
            city=addr.get("city"),
            region=addr.get("stateOrProvinceCode"),
            postcode=addr.get("postalCode"),
            country=addr.get("countryCode"),
        )
        local_text = c.opt(scan.get("date"))
        info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone)
        return c.event(
            code=scan.get("eventType"),
            description=scan.get("eventDescription"),
            local_text=local_text,
            info=info,
            location=loc,
            status_hint=scan.get("derivedStatusCode"),
            detail_hint=c.opt(scan.get("exceptionCode")),
        )

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Track API through karrio-fedex (OAuth, batch of up to 30 numbers)."""
        return c.karrio_fetch(
            "fedex",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=(
                "api_key",
                "secret_key",
                "account_number",
                "track_api_key",
                "track_secret_key",
            ),
        )
