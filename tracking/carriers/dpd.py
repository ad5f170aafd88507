"""DPD ParcelLifeCycleService v2 ``getTrackingData`` (SOAP XML).

Source: DPD Web Services "ParcelLifeCycleService 2.0": ``trackingresult/statusInfo``
with ``status`` (``BetweenDepots``, ``Depot``, ``Courier``, ``DeliveryFailure``,
``ParcelShop``, ``PickedUp``, ``Delivered``...), ``statusHasBeenReached``,
``isCurrentStatus``, ``location/content`` ("Mechelen (BE)"), ``date/content``
(``M/D/YYYY h:mm:ss AM`` local time of the depot's country). Only reached
statuses are events; oldest first (the list is not strictly monotonic).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from xml.etree.ElementTree import Element

from . import _common as c
from .base import CarrierAdapter, Credentials, PayloadError, TrackingResult

_LOC = re.compile(r"^(?P<city>.*?)\s*\((?P<cc>[A-Z]{2})\)\s*$")


def _content(el: Element | None) -> str | None:
    if el is None:
        return None
    parts = [c.clean(n.text) for n in c.iter_local(el, "content") if n.text and n.text.strip()]
    return " ".join(parts) or None


class Adapter(CarrierAdapter):
    code = "dpd"
    name = "DPD"
    home_zone = "Europe/Berlin"
    mapping = "dpd"
    tracking_url_template = "https://tracking.dpd.de/status/en_US/parcel/{number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        root = c.load_xml(body)
        results_el = list(c.iter_local(root, "trackingresult"))
        if not results_el:
            fault = next(iter(c.iter_local(root, "faultstring")), None)
            if fault is not None:
                return [
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(tracking_number)
                        if tracking_number
                        else None,
                        found=False,
                        message=c.clean(fault.text),
                    )
                ]
            raise PayloadError("DPD: no trackingresult")
        results = []
        for tr in results_el:
            number = tracking_number
            for node in c.iter_local(tr, "parcelLabelNumber"):
                number = c.opt(node.text) or number
            events = []
            for si in c.children(tr, "statusInfo"):
                if (c.text(si, "statusHasBeenReached") or "true").lower() != "true":
                    continue
                loc_text = _content(c.child(si, "location"))
                m = _LOC.match(loc_text or "")
                loc = c.location(
                    city=m.group("city") if m else None,
                    country=m.group("cc") if m else None,
                    raw=loc_text,
                )
                local_text = _content(c.child(si, "date"))
                info = c.time_of(
                    local_text, now=now, order="mdy", location=loc, home_zone=self.home_zone
                )
                events.append(
                    c.event(
                        code=c.text(si, "status"),
                        description=_content(c.child(si, "description")),
                        local_text=local_text,
                        info=info,
                        location=loc,
                        detail_hint=_content(c.child(si, "label")),
                    )
                )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """getTrackingData through karrio-dpd (delisId login; one call per parcel)."""
        return c.karrio_fetch(
            "dpd",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("delis_id", "password", "depot", "message_language"),
        )
