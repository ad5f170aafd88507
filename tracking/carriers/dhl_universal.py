"""DHL Shipment Tracking - Unified API (``shipments[].events[]``, JSON).

Source: DHL Developer Portal "Shipment Tracking - Unified" (``GET /track/shipments``):
``statusCode`` is the normalized field, one of ``pre-transit``, ``transit``,
``delivered``, ``failure``, ``unknown``; ``status`` is free text;
``timestamp`` may lack an offset. When an event's naive wall time equals the
shipment ``status.timestamp`` that carries an offset (the same reading), that
offset is used (tz_source ``gmt_field``); otherwise the location's zone.
``shipments[].status`` with its own timestamp is the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, Location, PayloadError, SummaryStatus, TrackingResult


def _addr_location(node: object, what: str) -> Location | None:
    addr = c.as_object(c.as_object(node, what).get("address"), f"{what}.address")
    locality = c.opt(addr.get("addressLocality"))
    city = locality.rsplit(",", 1)[-1].strip() if locality else None
    return c.location(
        city=city, postcode=addr.get("postalCode"), country=addr.get("countryCode"), raw=locality
    )


class Adapter(CarrierAdapter):
    code = "dhl_universal"
    name = "DHL (Unified Tracking)"
    home_zone = None
    mapping = "dhl_universal"
    tracking_url_template = "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict):
            raise PayloadError("DHL Unified: not an object")
        if "shipments" not in data:
            if data.get("status") in (404, "404") or data.get("title"):
                number = tracking_number
                return [
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        found=False,
                        message=c.clean(data.get("detail") or data.get("title")),
                    )
                ]
            raise PayloadError("DHL Unified: no shipments")
        results = []
        for sh in c.as_objects(data["shipments"], "DHL Unified: shipments"):
            number = c.opt(sh.get("id")) or tracking_number
            status = c.as_object(sh.get("status"), "DHL Unified: shipments[].status")
            status_at = timeparse.parse_aware(c.opt(status.get("timestamp")), now=now)
            twins: dict[str, timedelta] = {}
            st_wall = timeparse.parse_iso(c.clean(status.get("timestamp")))
            if st_wall is not None and st_wall.offset is not None:
                twins[st_wall.naive.isoformat()] = st_wall.offset
            events = []
            for ev in c.as_objects(sh.get("events"), "DHL Unified: events"):
                loc = _addr_location(ev.get("location"), "DHL Unified: events[].location")
                local_text = c.opt(ev.get("timestamp"))
                wall = timeparse.parse_iso(local_text or "")
                offset = (
                    twins.get(wall.naive.isoformat())
                    if wall is not None and wall.offset is None
                    else None
                )
                info = c.time_of(
                    local_text, now=now, location=loc, offset=offset, offset_source="gmt_field"
                )
                events.append(
                    c.event(
                        code=ev.get("statusCode"),
                        description=ev.get("description") or ev.get("status"),
                        local_text=local_text,
                        info=info,
                        location=loc,
                        detail_hint=ev.get("status"),
                    )
                )
            summary = None
            if status.get("statusCode"):
                summary = SummaryStatus(
                    code=c.opt(status.get("statusCode")),
                    description=c.clean(status.get("description") or status.get("status")),
                    occurred_at=status_at,
                    occurred_at_local=c.opt(status.get("timestamp")),
                    location=_addr_location(status.get("location"), "DHL Unified: status.location"),
                )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=True),
                    summary=summary,
                    eta=timeparse.parse_date(c.opt(sh.get("estimatedTimeOfDelivery"))),
                    origin_country=c.opt(c.get(sh, "origin", "address", "countryCode")),
                    destination_country=c.opt(c.get(sh, "destination", "address", "countryCode")),
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Unified tracking through karrio-dhl-universal (DHL-API-Key header)."""
        return c.karrio_fetch(
            "dhl_universal",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("consumer_key", "consumer_secret", "language"),
        )
