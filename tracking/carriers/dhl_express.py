"""DHL Express: XML-PI ``TrackingResponse`` (single and multi-AWB) and the
MyDHL API JSON tracking response.

Sources: DHL XML Services "Tracking" (XML-PI 6.x) schema ``TrackingResponse.xsd``:
``AWBInfo/ShipmentInfo/ShipmentEvent`` with ``Date``, ``Time`` (local to the
``ServiceArea``), ``ServiceEvent/EventCode``; events oldest first per AWB.
MyDHL API (express.api.dhl.com) ``GET /shipments/{id}/tracking``:
``shipments[].events[]`` with ``date``, ``time``, ``GMTOffset``, ``typeCode``,
``serviceArea[].code``. The zone of a naive time comes from the service area's
IATA code (airportsdata), else its "City - Country" description.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, Location, PayloadError, RawEvent, TrackingResult


def _area_location(code: str | None, description: str | None) -> Location | None:
    desc = c.clean(description)
    country = None
    city = None
    if desc:
        for sep in (" - ", "-", ","):
            if sep in desc:
                city_part, country_part = desc.rsplit(sep, 1)
                country = timeparse.country_code(country_part.strip())
                city = city_part.strip() or None
                break
    return c.location(city=city, country=country, facility=None, raw=desc or None, iata=code)


def dhl_express_check_digit(number: str) -> bool | None:
    """10-digit DHL Express waybills: last digit = first nine mod 7. Source: DHL
    Express waybill numbering rule (airway bill check digit, mod 7)."""
    n = "".join(number.split())
    if len(n) != 10 or not n.isdigit():
        return None
    return int(n[:9]) % 7 == int(n[9])


class Adapter(CarrierAdapter):
    code = "dhl_express"
    name = "DHL Express"
    home_zone = None
    mapping = "dhl_express"
    tracking_url_template = "https://www.dhl.com/en/express/tracking.html?AWB={number}"

    def check_digit_valid(self, number: str) -> bool | None:
        return dhl_express_check_digit(number)

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        if body.lstrip()[:1] == b"<":
            return self._parse_xml(c.load_xml(body), tracking_number, now)
        data = c.load_json(body)
        if not isinstance(data, dict) or "shipments" not in data:
            raise PayloadError("DHL Express: no shipments in JSON body")
        return self._parse_json(data, tracking_number, now)

    def _parse_xml(
        self, root: Element, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        if c.local(root.tag) not in ("TrackingResponse", "ErrorResponse"):
            raise PayloadError(f"DHL Express: unexpected XML root {c.local(root.tag)}")
        results: list[TrackingResult] = []
        for awb in c.children(root, "AWBInfo"):
            number = c.text(awb, "AWBNumber") or tracking_number
            action = (c.text(awb, "Status", "ActionStatus") or "").lower()
            info = c.child(awb, "ShipmentInfo")
            events: list[RawEvent] = []
            if info is not None:
                for se in c.children(info, "ShipmentEvent"):
                    events.append(self._xml_event(se, now))
            if info is None and action != "success":
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        found=False,
                        message=c.text(awb, "Status", "Condition", "ConditionData") or action,
                    )
                )
                continue
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                    ship_date=timeparse.parse_date(c.text(info, "ShipmentDate")),
                    eta=timeparse.parse_date(c.text(info, "EstDlvyDate")),
                    origin_country=c.text(info, "Shipper", "CountryCode"),
                    destination_country=c.text(info, "Consignee", "CountryCode"),
                )
            )
        if not results:
            raise PayloadError("DHL Express: no AWBInfo in response")
        return results

    def _xml_event(self, se: Element, now: datetime) -> RawEvent:
        area = c.child(se, "ServiceArea")
        loc = _area_location(c.text(area, "ServiceAreaCode"), c.text(area, "Description"))
        local_text = c.joined(c.text(se, "Date"), c.text(se, "Time"))
        info = c.time_of(local_text, now=now, location=loc)
        return c.event(
            code=c.text(se, "ServiceEvent", "EventCode"),
            description=c.text(se, "ServiceEvent", "Description"),
            local_text=local_text,
            info=info,
            location=loc,
        )

    def _parse_json(
        self, data: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        results = []
        for sh in c.as_objects(data.get("shipments"), "DHL Express: shipments"):
            number = c.opt(sh.get("shipmentTrackingNumber")) or tracking_number
            events = []
            for ev in c.as_objects(sh.get("events"), "DHL Express: events"):
                areas = c.as_objects(ev.get("serviceArea"), "DHL Express: events[].serviceArea")
                area = areas[0] if areas else {}
                loc = _area_location(c.opt(area.get("code")), c.opt(area.get("description")))
                local_text = c.joined(c.opt(ev.get("date")), c.opt(ev.get("time")))
                offset = timeparse.parse_offset(c.opt(ev.get("GMTOffset")))
                info = c.time_of(
                    local_text, now=now, location=loc, offset=offset, offset_source="separate_field"
                )
                events.append(
                    c.event(
                        code=ev.get("typeCode"),
                        description=ev.get("description"),
                        local_text=local_text,
                        info=info,
                        location=loc,
                    )
                )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                    ship_date=timeparse.parse_date(c.opt(sh.get("shipmentTimestamp"))),
                    eta=timeparse.parse_date(c.opt(sh.get("estimatedDeliveryDate"))),
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """MyDHL API tracking through karrio-dhl-express (basic auth)."""
        return c.karrio_fetch(
            "dhl_express",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("username", "password", "account_number"),
        )
