"""GLS Group track and trace (JSON ``parcels[]``).

Source: GLS Group developer portal "Track and Trace" API: ``parcels[]`` with
``unitno``, ``status`` (parcel-level status code) and ``statusDateTime``,
``events[]`` with ``code`` (``<STATUS>.<DETAIL>``, spelled as GLS spells it,
e.g. ``INTIAL.PREADVICE``), ``eventDateTime`` with a ``+0200``-style offset,
``city``/``postalCode``/``country``. The parcel-level status with its
timestamp becomes a summary event. Event order is not guaranteed (newest first
in practice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, SummaryStatus, TrackingResult


class Adapter(CarrierAdapter):
    code = "gls"
    name = "GLS"
    home_zone = "Europe/Berlin"
    mapping = "gls"
    tracking_url_template = "https://gls-group.com/track/{number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        parcels = c.get(data, "parcels")
        if not isinstance(parcels, list):
            raise PayloadError("GLS: no parcels list")
        results = []
        for parcel in c.as_objects(parcels, "GLS: parcels"):
            number = (
                c.opt(parcel.get("unitno")) or c.opt(parcel.get("requested")) or tracking_number
            )
            events = []
            for ev in c.as_objects(parcel.get("events"), "GLS: parcels[].events"):
                loc = c.location(
                    city=ev.get("city"), postcode=ev.get("postalCode"), country=ev.get("country")
                )
                local_text = c.opt(ev.get("eventDateTime"))
                info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone)
                code = c.opt(ev.get("code"))
                events.append(
                    c.event(
                        code=code,
                        description=ev.get("description"),
                        local_text=local_text,
                        info=info,
                        location=loc,
                        status_hint=code.split(".", 1)[0] if code else None,
                    )
                )
            status = c.opt(parcel.get("status"))
            summary = None
            if status:
                summary = SummaryStatus(
                    code=status,
                    hint=status,
                    occurred_at=timeparse.parse_aware(c.opt(parcel.get("statusDateTime")), now=now),
                    occurred_at_local=c.opt(parcel.get("statusDateTime")),
                )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=True),
                    summary=summary,
                    found=bool(events) or bool(status),
                    message=None if events or status else "no events",
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Track and trace through karrio-gls (OAuth client credentials)."""
        return c.karrio_fetch(
            "gls",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("client_id", "client_secret"),
        )
