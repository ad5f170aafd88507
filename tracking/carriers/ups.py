"""UPS: Track API v1 (JSON, ``trackResponse``) and the legacy XML ``TrackResponse``.

Sources: UPS Developer Kit "Tracking API" (OpenAPI, 2023+) for the JSON shape
(``shipment[].package[].activity[]`` with ``status.type/code/description`` and
optional ``gmtDate``/``gmtTime``/``gmtOffset``); the UPS "Tracking XML Developer
Guide" (legacy Track tool) for ``Shipment/Package/Activity`` with
``Status/StatusType/Code`` and ``Date``/``Time`` in local time. Both list newest
first. Times without a GMT twin are local to the activity location; UPS spans
many zones, so there is no home zone (unresolvable times stay None).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

from . import _common as c
from . import timeparse
from .base import (
    CarrierAdapter,
    Credentials,
    PayloadError,
    RawEvent,
    SummaryStatus,
    TrackingResult,
)

_1Z = re.compile(r"^1Z[0-9A-Z]{16}$")


def ups_check_digit(number: str) -> bool | None:
    """UPS 1Z check digit (mod 10 over characters 3-17, letters as
    (ord - 63) mod 10, odd positions doubled). None for non-1Z numbers.
    Source: UPS "Tracking number check digit" algorithm as published in the UPS
    shipping label specification."""
    n = "".join(number.split()).upper()
    if not _1Z.match(n):
        return None
    total = 0
    for i, ch in enumerate(n[2:17]):
        value = int(ch) if ch.isdigit() else (ord(ch) - 63) % 10
        total += value * 2 if i % 2 == 1 else value
    return (10 - total % 10) % 10 == int(n[17]) if n[17].isdigit() else False


def _plausible_number(value: str | None) -> bool:
    return (
        bool(value)
        and value is not None
        and bool(re.fullmatch(r"[0-9A-Za-z]{8,40}", value.strip()))
    )


class Adapter(CarrierAdapter):
    code = "ups"
    name = "UPS"
    home_zone = None
    mapping = "ups"
    tracking_url_template = "https://www.ups.com/track?tracknum={number}"

    def check_digit_valid(self, number: str) -> bool | None:
        return ups_check_digit(number)

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        head = body.lstrip()[:1]
        if head == b"<":
            return self._parse_xml(c.load_xml(body), tracking_number, now)
        data = c.load_json(body)
        if not isinstance(data, dict) or "trackResponse" not in data:
            raise PayloadError("UPS: no trackResponse in body")
        return self._parse_json(
            c.as_object(data["trackResponse"], "UPS: trackResponse"), tracking_number, now
        )

    # ----- JSON (Track API v1)
    def _parse_json(
        self, resp: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        results: list[TrackingResult] = []
        shipments = c.as_objects(resp.get("shipment"), "UPS: trackResponse.shipment")
        for shipment in shipments:
            inquiry = c.opt(shipment.get("inquiryNumber"))
            warnings = c.as_objects(shipment.get("warnings"), "UPS: shipment.warnings")
            packages = c.as_objects(shipment.get("package"), "UPS: shipment.package")
            if not packages:
                message = "; ".join(
                    f"{c.clean(w.get('code'))} {c.clean(w.get('message'))}".strip()
                    for w in warnings
                )
                number = inquiry or tracking_number
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        found=False,
                        message=message or "no package in response",
                    )
                )
                continue
            for pkg in packages:
                pkg_number = c.opt(c.get(pkg, "trackingNumber"))
                number = (
                    pkg_number
                    if _plausible_number(pkg_number) and len(packages) > 1
                    else (inquiry or pkg_number)
                )
                if not _plausible_number(number):
                    number = tracking_number or number
                events = [
                    self._json_event(a, now)
                    for a in c.as_objects(pkg.get("activity"), "UPS: package.activity")
                ]
                status = c.as_object(pkg.get("currentStatus"), "UPS: package.currentStatus")
                summary = None
                if status:
                    summary = SummaryStatus(
                        code=c.opt(status.get("code")),
                        description=c.clean(status.get("description")),
                        hint=c.opt(status.get("type")),
                    )
                eta = None
                for kind in ("RDD", "SDD", "EDD"):
                    for d in c.as_objects(pkg.get("deliveryDate"), "UPS: package.deliveryDate"):
                        if d.get("type") == kind:
                            eta = eta or timeparse.parse_date(c.get(d, "date"))
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        events=c.sequence(events, newest_first=True),
                        summary=summary,
                        eta=eta,
                    )
                )
        return results

    def _json_event(self, activity: Mapping[str, Any], now: datetime) -> RawEvent:
        where = c.as_object(activity.get("location"), "UPS: activity.location")
        addr = c.as_object(where.get("address"), "UPS: activity.location.address")
        loc = c.location(
            city=addr.get("city"),
            region=addr.get("stateProvince"),
            postcode=addr.get("postalCode"),
            country=addr.get("countryCode") or addr.get("country"),
        )
        date_s, time_s = c.opt(activity.get("date")), c.opt(activity.get("time"))
        local_text = c.joined(date_s, time_s)
        twin = _gmt_twin(
            c.opt(activity.get("gmtDate")),
            c.opt(activity.get("gmtTime")),
            c.opt(activity.get("gmtOffset")),
        )
        info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone, utc_twin=twin)
        status = c.as_object(activity.get("status"), "UPS: activity.status")
        return c.event(
            code=status.get("code"),
            description=status.get("description"),
            local_text=local_text,
            info=info,
            location=loc,
            status_hint=status.get("type"),
            detail_hint=status.get("statusCode"),
        )

    # ----- legacy XML
    def _parse_xml(
        self, root: Element, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        if c.local(root.tag) != "TrackResponse":
            raise PayloadError(f"UPS: unexpected XML root {c.local(root.tag)}")
        results: list[TrackingResult] = []
        response_code = c.text(root, "Response", "ResponseStatusCode")
        shipments = c.children(root, "Shipment")
        if response_code == "0" or not shipments:
            message = (
                c.text(root, "Response", "Error", "ErrorDescription") or "UPS returned no shipment"
            )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(tracking_number)
                    if tracking_number
                    else None,
                    found=False,
                    message=message,
                )
            )
            return results
        for shipment in shipments:
            ship_id = c.opt(c.text(shipment, "ShipmentIdentificationNumber"))
            pickup = timeparse.parse_date(c.text(shipment, "PickupDate"))
            scheduled = timeparse.parse_date(c.text(shipment, "ScheduledDeliveryDate"))
            origin = c.text(shipment, "Shipper", "Address", "CountryCode")
            dest = c.text(shipment, "ShipTo", "Address", "CountryCode")
            packages = c.children(shipment, "Package")
            for pkg in packages:
                number = c.opt(c.text(pkg, "TrackingNumber")) or ship_id or tracking_number
                rescheduled = timeparse.parse_date(c.text(pkg, "RescheduledDeliveryDate"))
                events = [self._xml_event(a, now) for a in c.children(pkg, "Activity")]
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        events=c.sequence(events, newest_first=True),
                        ship_date=pickup,
                        eta=rescheduled or scheduled,
                        origin_country=origin,
                        destination_country=dest,
                    )
                )
            if not packages:
                number = ship_id or tracking_number
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        ship_date=pickup,
                        eta=scheduled,
                    )
                )
        return results

    def _xml_event(self, activity: Element, now: datetime) -> RawEvent:
        addr = c.child(c.child(activity, "ActivityLocation"), "Address")
        loc = c.location(
            city=c.text(addr, "City"),
            region=c.text(addr, "StateProvinceCode"),
            postcode=c.text(addr, "PostalCode"),
            country=c.text(addr, "CountryCode"),
        )
        local_text = c.joined(c.text(activity, "Date"), c.text(activity, "Time"))
        twin = _gmt_twin(
            c.text(activity, "GMTDate"), c.text(activity, "GMTTime"), c.text(activity, "GMTOffset")
        )
        info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone, utc_twin=twin)
        status = c.child(activity, "Status")
        return c.event(
            code=c.text(status, "StatusCode", "Code"),
            description=c.text(status, "StatusType", "Description"),
            local_text=local_text,
            info=info,
            location=loc,
            status_hint=c.text(status, "StatusType", "Code"),
        )

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Track API v1 through karrio-ups (OAuth, one request per number)."""
        return c.karrio_fetch(
            "ups",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("client_id", "client_secret", "account_number"),
        )


def _gmt_twin(
    gmt_date: str | None, gmt_time: str | None, gmt_offset: str | None
) -> datetime | None:
    """UPS ``gmtDate``/``gmtTime`` give the UTC instant of the activity."""
    if not gmt_date or not gmt_time:
        return None
    wall = timeparse.parse_local(f"{gmt_date} {gmt_time.replace(':', '')}")
    if wall is None:
        return None
    return wall.naive.replace(tzinfo=UTC) + timedelta(0)
