"""Chronopost ``trackSkybillV2`` (SOAP XML).

Source: Chronopost "Web Services Tracking" (TrackingServiceWS, operation
``trackSkybillV2``): ``listEventInfoComp/events`` with ``code``, ``eventDate``
(ISO 8601 with offset), ``eventLabel``, ``officeLabel`` (``Web Services`` means
no physical site), ``zipCode``; oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import _common as c
from .base import CarrierAdapter, Credentials, PayloadError, TrackingResult


class Adapter(CarrierAdapter):
    code = "chronopost"
    name = "Chronopost"
    home_zone = "Europe/Paris"
    mapping = "chronopost"
    tracking_url_template = (
        "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={number}"
    )

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        root = c.load_xml(body)
        returns = list(c.iter_local(root, "return"))
        if not returns:
            raise PayloadError("Chronopost: no trackSkybillV2 return element")
        results = []
        for ret in returns:
            error = c.text(ret, "errorCode")
            lists = c.children(ret, "listEventInfoComp")
            for lst in lists or [None]:  # type: ignore[list-item]  # None: no event list
                number = c.text(lst, "skybillNumber") if lst is not None else None
                number = number or tracking_number
                events = []
                for ev in c.children(lst, "events") if lst is not None else []:
                    office = c.text(ev, "officeLabel")
                    loc = (
                        None
                        if office == "Web Services"
                        else c.location(
                            facility=office, postcode=c.text(ev, "zipCode"), country="FR"
                        )
                    )
                    local_text = c.text(ev, "eventDate")
                    info = c.time_of(local_text, now=now, location=loc, home_zone=self.home_zone)
                    events.append(
                        c.event(
                            code=c.text(ev, "code"),
                            description=c.text(ev, "eventLabel"),
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
                        found=error in (None, "0") or bool(events),
                        message=None
                        if error in (None, "0")
                        else c.text(ret, "errorMessage") or f"error {error}",
                    )
                )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """trackSkybillV2 through karrio-chronopost (account number + password)."""
        return c.karrio_fetch(
            "chronopost",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("account_number", "password", "id_emit", "language"),
        )
