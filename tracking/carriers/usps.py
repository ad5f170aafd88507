"""USPS: Tracking API v3 (JSON) and the retired Web Tools TrackV2 (XML).

Sources: USPS APIs "Tracking 3.0" (developers.usps.com): ``trackingEvents[]``
with ``eventTimestamp`` (local, no offset), ``GMTTimestamp`` (UTC, with
seconds), ``GMTOffset``, ``eventCode``, ``eventType``, ``eventCity/State/ZIP``;
newest first. Web Tools "Track and Confirm API" (TrackV2, revision 2016+):
``TrackInfo`` with ``TrackSummary`` (latest event) then ``TrackDetail``s
(newest first), ``EventDate`` ``January 6, 2016`` and ``EventTime``
``10:45 pm`` in the facility's local time. US-wide carrier: no home zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, RawEvent, SummaryStatus, TrackingResult


def usps_check_digit(number: str) -> bool | None:
    """USPS IMpb 20-22 digit numbers (mod 10, weights 3/1 from the right, as in
    the USPS Publication 199 "IMpb Implementation Guide"). None otherwise."""
    n = "".join(number.split())
    if not n.isdigit() or not 20 <= len(n) <= 22:
        return None
    body = n[:-1][::-1]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return (10 - total % 10) % 10 == int(n[-1])


class Adapter(CarrierAdapter):
    code = "usps"
    name = "USPS"
    home_zone = None
    mapping = "usps"
    tracking_url_template = "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"

    def check_digit_valid(self, number: str) -> bool | None:
        return usps_check_digit(number)

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        if body.lstrip()[:1] == b"<":
            return self._parse_xml(c.load_xml(body), tracking_number, now)
        data = c.load_json(body)
        items = data if isinstance(data, list) else [data]
        results = []
        for item in items:
            if not isinstance(item, dict):
                raise PayloadError("USPS: unexpected JSON shape")
            if "trackingEvents" not in item and "error" in item:
                number = c.opt(item.get("trackingNumber")) or tracking_number
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        found=False,
                        message=c.clean(c.get(item, "error", "message")),
                    )
                )
                continue
            if "trackingEvents" not in item and "trackingNumber" not in item:
                raise PayloadError("USPS: no trackingEvents")
            results.append(self._json_result(item, tracking_number, now))
        return results

    def _json_result(
        self, item: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> TrackingResult:
        number = c.opt(item.get("trackingNumber")) or tracking_number
        events = [
            self._json_event(e, now)
            for e in c.as_objects(item.get("trackingEvents"), "USPS: trackingEvents")
        ]
        category = c.opt(item.get("statusCategory"))
        return TrackingResult(
            provider=self.code,
            carrier=self.code,
            tracking_number=self.normalize_tracking_number(number) if number else None,
            events=c.sequence(events, newest_first=True),
            summary=SummaryStatus(code=None, description=c.clean(item.get("status")), hint=category)
            if category
            else None,
            eta=timeparse.parse_date(c.opt(item.get("expectedDeliveryDate"))),
            origin_country="US" if item.get("originState") else None,
        )

    def _json_event(self, ev: Mapping[str, Any], now: datetime) -> RawEvent:
        loc = c.location(
            city=ev.get("eventCity"),
            region=ev.get("eventState"),
            postcode=ev.get("eventZIP"),
            country=ev.get("eventCountry") or ("US" if ev.get("eventState") else None),
        )
        local_text = c.opt(ev.get("eventTimestamp"))
        twin = timeparse.parse_aware(c.opt(ev.get("GMTTimestamp")))
        offset = timeparse.parse_offset(c.opt(ev.get("GMTOffset")))
        info = c.time_of(
            local_text,
            now=now,
            location=loc,
            utc_twin=twin,
            offset=offset,
            offset_source="separate_field",
        )
        return c.event(
            code=ev.get("eventCode"),
            description=ev.get("eventType"),
            local_text=local_text,
            info=info,
            location=loc,
        )

    def _parse_xml(
        self, root: Element, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        if c.local(root.tag) == "Error":
            raise PayloadError(f"USPS error: {c.text(root, 'Description')}")
        infos = list(c.iter_local(root, "TrackInfo"))
        if not infos:
            raise PayloadError("USPS: no TrackInfo")
        results = []
        for info in infos:
            number = info.get("ID") or tracking_number
            err = c.child(info, "Error")
            nodes: list[Element] = []
            summary = c.child(info, "TrackSummary")
            if summary is not None:
                nodes.append(summary)
            nodes.extend(c.children(info, "TrackDetail"))
            events = [
                self._xml_event(n, now)
                for n in nodes
                if c.text(n, "EventDate") or c.text(n, "Event")
            ]
            category = c.text(info, "StatusCategory")
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=True),
                    summary=SummaryStatus(
                        code=None, description=c.clean(c.text(info, "Status")), hint=category
                    )
                    if category
                    else None,
                    found=err is None or bool(events),
                    message=c.text(err, "Description") if err is not None else None,
                    eta=timeparse.parse_date(
                        c.text(info, "ExpectedDeliveryDate")
                        or c.text(info, "PredictedDeliveryDate"),
                        order="mdy",
                    ),
                )
            )
        return results

    def _xml_event(self, node: Element, now: datetime) -> RawEvent:
        loc = c.location(
            city=c.text(node, "EventCity"),
            region=c.text(node, "EventState"),
            postcode=c.text(node, "EventZIPCode"),
            country=c.text(node, "EventCountry") or ("US" if c.text(node, "EventState") else None),
        )
        local_text = c.joined(c.text(node, "EventDate"), c.text(node, "EventTime"))
        info = c.time_of(local_text, now=now, order="mdy", location=loc)
        return c.event(
            code=c.text(node, "EventCode"),
            description=c.text(node, "Event"),
            local_text=local_text,
            info=info,
            location=loc,
        )

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Tracking API v3 through karrio-usps (OAuth; one request per number)."""
        return c.karrio_fetch(
            "usps",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("client_id", "client_secret", "account_number"),
        )
