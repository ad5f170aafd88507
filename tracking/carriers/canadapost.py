"""Canada Post "Get Tracking Details" (XML ``tracking-detail``).

Source: Canada Post Developer Program, Tracking web service
(``/vis/track/pin/{pin}/detail``): ``significant-events/occurrence`` with
``event-identifier`` (numeric, sent zero-padded: ``0174``), ``event-date``,
``event-time``, ``event-time-zone`` (abbreviation: EST, EDT, CST, ...),
``event-site``/``event-province``; newest first. A ``messages`` document is a
per-number error (``004 No Pin History``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, TrackingResult


class Adapter(CarrierAdapter):
    code = "canadapost"
    name = "Canada Post"
    home_zone = None
    mapping = "canadapost"
    tracking_url_template = (
        "https://www.canadapost-postescanada.ca/track-reperage/en#/resultList?searchFor={number}"
    )

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        root = c.load_xml(body)
        details = list(c.iter_local(root, "tracking-detail"))
        if not details:
            messages = list(c.iter_local(root, "message"))
            if messages:
                msg = "; ".join(f"{c.text(m, 'code')} {c.text(m, 'description')}" for m in messages)
                return [
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(tracking_number)
                        if tracking_number
                        else None,
                        found=False,
                        message=msg,
                    )
                ]
            raise PayloadError("Canada Post: no tracking-detail")
        results = []
        for det in details:
            number = c.text(det, "pin") or tracking_number
            events = []
            for occ in c.iter_local(det, "occurrence"):
                loc = c.location(
                    city=c.text(occ, "event-site"),
                    region=c.text(occ, "event-province"),
                    facility=c.text(occ, "event-retail-name"),
                    country="CA" if c.text(occ, "event-province") else None,
                )
                local_text = c.joined(c.text(occ, "event-date"), c.text(occ, "event-time"))
                info = c.time_of(
                    local_text, now=now, location=loc, abbreviation=c.text(occ, "event-time-zone")
                )
                events.append(
                    c.event(
                        code=c.text(occ, "event-identifier"),
                        description=c.text(occ, "event-description"),
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
                    events=c.sequence(events, newest_first=True),
                    eta=timeparse.parse_date(
                        c.text(det, "changed-expected-date")
                        or c.text(det, "expected-delivery-date")
                    ),
                    destination_country="CA",
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Tracking details through karrio-canadapost (basic auth; one request per PIN)."""
        return c.karrio_fetch(
            "canadapost",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("username", "password", "customer_number", "contract_id"),
        )
