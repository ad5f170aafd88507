"""La Poste / Colissimo "Suivi v2" API (JSON ``shipment.event[]``).

Source: La Poste developer portal, API Suivi v2 (``/suivi/v2/idships/{id}``):
``shipment.event[]`` with ``code`` (``DR1``, ``PC1``, ``ET1``..., ``DI1``),
``label``, ``date`` (ISO 8601 with offset); newest first. ``isFinal`` and
``deliveryDate`` are shipment-level; the events carry the statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, TrackingResult


class Adapter(CarrierAdapter):
    code = "laposte"
    name = "La Poste / Colissimo"
    home_zone = "Europe/Paris"
    mapping = "laposte"
    tracking_url_template = "https://www.laposte.fr/outils/suivre-vos-envois?code={number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        items = data if isinstance(data, list) else [data]
        results = []
        for item in items:
            if not isinstance(item, dict):
                raise PayloadError("La Poste: unexpected JSON shape")
            shipment = item.get("shipment")
            if not isinstance(shipment, dict):
                if "returnCode" in item:
                    number = c.opt(item.get("idShip")) or tracking_number
                    results.append(
                        TrackingResult(
                            provider=self.code,
                            carrier=self.code,
                            tracking_number=self.normalize_tracking_number(number)
                            if number
                            else None,
                            found=False,
                            message=c.clean(item.get("returnMessage")),
                        )
                    )
                    continue
                raise PayloadError("La Poste: no shipment")
            results.append(self._shipment(shipment, tracking_number, now))
        return results

    def _shipment(
        self, sh: Mapping[str, Any], tracking_number: str | None, now: datetime
    ) -> TrackingResult:
        number = c.opt(sh.get("idShip")) or tracking_number
        origin = c.opt(c.get(sh, "contextData", "originCountry"))
        events = []
        for ev in c.as_objects(sh.get("event"), "La Poste: shipment.event"):
            local_text = c.opt(ev.get("date"))
            info = c.time_of(local_text, now=now, home_zone=self.home_zone)
            events.append(
                c.event(
                    code=ev.get("code"),
                    description=ev.get("label"),
                    local_text=local_text,
                    info=info,
                )
            )
        return TrackingResult(
            provider=self.code,
            carrier=self.code,
            tracking_number=self.normalize_tracking_number(number) if number else None,
            events=c.sequence(events, newest_first=True),
            ship_date=timeparse.parse_date(c.opt(sh.get("entryDate"))),
            eta=timeparse.parse_date(c.opt(sh.get("estimDate"))),
            origin_country=origin,
            destination_country=c.opt(c.get(sh, "contextData", "arrivalCountry")),
        )

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Suivi v2 through karrio-laposte (X-Okapi-Key; one request per number)."""
        return c.karrio_fetch(
            "laposte", numbers, credentials, timeout=timeout, settings_keys=("api_key", "lang")
        )
