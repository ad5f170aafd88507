"""Sendle parcel tracking (``GET /api/tracking/{ref}``) and tracking webhooks.

Source: Sendle API docs "Tracking a parcel": ``tracking_events[]`` with
``event_type`` (``Pickup``, ``Dropped Off``, ``In Transit``, ``Out for
Delivery``, ``Delivered``, ``Card Left``, ``Left with Agent``, ``Damaged``,
``Unable to Deliver``...), ``scan_time`` (UTC, ``Z``), ``local_scan_time``
(naive local copy; sometimes just the UTC value again), ``description``,
``location``/``location_data``; oldest first. A webhook posts one event with
``sendle_reference``. Sendle documents no webhook signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, RawEvent, SummaryStatus, TrackingResult


class Adapter(CarrierAdapter):
    code = "sendle"
    name = "Sendle"
    home_zone = "Australia/Sydney"
    mapping = "sendle"
    tracking_url_template = "https://track.sendle.com/tracking?ref={number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict):
            raise PayloadError("Sendle: not an object")
        if "payload" in data and isinstance(data["payload"], dict):
            data = data["payload"]
        if "tracking_events" in data:
            raw_events = c.as_objects(data["tracking_events"], "Sendle: tracking_events")
            number = tracking_number or c.opt(data.get("sendle_reference"))
        elif "event_type" in data:
            raw_events = [data]
            number = c.opt(data.get("sendle_reference")) or tracking_number
        else:
            raise PayloadError("Sendle: no tracking_events")
        events = [self._event(e, now) for e in raw_events]
        state = c.opt(data.get("state"))
        return [
            TrackingResult(
                provider=self.code,
                carrier=self.code,
                tracking_number=self.normalize_tracking_number(number) if number else None,
                events=c.sequence(events, newest_first=False),
                summary=SummaryStatus(code=None, hint=state, description=state or "")
                if state
                else None,
            )
        ]

    def _event(self, ev: Mapping[str, Any], now: datetime) -> RawEvent:
        ld = c.as_object(ev.get("location_data"), "Sendle: location_data")
        loc = c.location(
            city=ld.get("suburb"),
            region=ld.get("state"),
            postcode=ld.get("postcode"),
            country=ld.get("country"),
            raw=ev.get("location"),
        )
        scan = c.opt(ev.get("scan_time"))
        local_text = c.opt(ev.get("local_scan_time")) or scan
        twin = timeparse.parse_aware(scan)
        info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone, utc_twin=twin)
        return c.event(
            code=ev.get("event_type"),
            description=ev.get("description") or ev.get("event_type"),
            local_text=local_text,
            info=info,
            location=loc,
            detail_hint=ev.get("reason"),
        )

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Tracking through karrio-sendle (Sendle ID + API key basic auth)."""
        return c.karrio_fetch(
            "sendle", numbers, credentials, timeout=timeout, settings_keys=("sendle_id", "api_key")
        )
