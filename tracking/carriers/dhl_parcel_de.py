"""DHL Parcel Germany (Paket): the Parcel DE Tracking XML ``piece-shipment-list``.

Source: DHL Developer Portal "Parcel DE Tracking (Post & Parcel Germany) API",
``d-get-piece-detail``: everything in XML attributes; ``piece-event`` with
``event-timestamp`` ``DD.MM.YYYY HH:MM`` (German local time, no zone: the
carrier's home zone Europe/Berlin applies when the event's country gives none),
``standard-event-code``, ``ice``/``ric`` (DHL's internal event and reason
codes), ``event-status``/``event-text``. Events oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from xml.etree.ElementTree import Element

from . import _common as c
from .base import CarrierAdapter, Credentials, PayloadError, RawEvent, TrackingResult


class Adapter(CarrierAdapter):
    code = "dhl_parcel_de"
    name = "DHL Paket (Germany)"
    home_zone = "Europe/Berlin"
    mapping = "dhl_parcel_de"
    tracking_url_template = (
        "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={number}"
    )

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        root = c.load_xml(body)
        if root.get("name") != "piece-shipment-list":
            raise PayloadError("DHL Parcel DE: root is not a piece-shipment-list")
        results = []
        for piece in root:
            if piece.get("name") != "piece-shipment":
                continue
            number = piece.get("searched-piece-code") or piece.get("piece-code") or tracking_number
            if piece.get("error-status") not in (None, "0"):
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        found=False,
                        message=piece.get("status") or "error",
                    )
                )
                continue
            events: list[RawEvent] = []
            for lst in piece:
                if lst.get("name") != "piece-event-list":
                    continue
                for ev in lst:
                    if ev.get("name") == "piece-event":
                        events.append(self._event(ev, now))
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                    origin_country=c.opt(piece.get("origin-country")),
                    destination_country=c.opt(piece.get("dest-country")),
                )
            )
        if root.get("code") not in (None, "0") and not results:
            raise PayloadError(f"DHL Parcel DE error code {root.get('code')}")
        return results

    def _event(self, ev: Element, now: datetime) -> RawEvent:
        loc = c.location(city=ev.get("event-location"), country=ev.get("event-country"))
        local_text = c.opt(ev.get("event-timestamp"))
        info = c.time_of(local_text, now=now, order="dmy", location=loc, home_zone=self.home_zone)
        ice, ric = c.opt(ev.get("ice")), c.opt(ev.get("ric"))
        return c.event(
            code=ev.get("standard-event-code"),
            description=ev.get("event-status") or ev.get("event-text"),
            local_text=local_text,
            info=info,
            location=loc,
            detail_hint=f"{ice}/{ric}" if ice else None,
            status_hint=ice,
        )

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Parcel DE tracking through karrio-dhl-parcel-de (API key + basic auth)."""
        return c.karrio_fetch(
            "dhl_parcel_de",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("username", "password", "client_id", "client_secret"),
        )
