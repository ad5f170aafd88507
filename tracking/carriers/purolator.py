"""Purolator TrackingService 1.2 ``TrackPackagesByPin`` (SOAP XML).

Source: Purolator E-Ship Web Services "Tracking Service" guide:
``TrackingInformation`` with ``PIN/Value`` and ``Scans/Scan[]`` (``ScanType``:
``Pickup``, ``ProofOfPickUp``, ``Delivery``, ``Undeliverable``, ``OnDelivery``,
``Other``...; ``ScanDate`` ``YYYY-MM-DD``, ``ScanTime`` ``HHMMSS`` local to
``Depot/Name``, ``Description``); newest first. Canada spans zones: the
depot's city decides, else the time stays unresolved. A depot name may end in
its province (``MONTREAL SORT CTR/CTR TRIE, PQ`` in karrio's public Purolator
fixture, with ``PQ``, the former abbreviation of Quebec): the province then
places the scan when the name before it is not a known city.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, Location, PayloadError, TrackingResult

#: Former province abbreviations still printed in depot names -> ISO 3166-2:CA.
_LEGACY_PROVINCES = {"PQ": "QC"}


def _depot_location(depot: str | None) -> Location | None:
    """``Depot/Name`` -> Location: ``NAME, XX`` with a Canadian province code is
    split into city and province (the carrier's text kept as ``raw``); any other
    name is the city, as before."""
    if not depot:
        return None
    head, sep, tail = depot.rpartition(",")
    province = tail.strip().upper()
    province = _LEGACY_PROVINCES.get(province, province)
    if sep and head.strip() and province in timeparse.SUBDIVISION_ZONES["CA"]:
        return c.location(city=head, region=province, country="CA", raw=depot)
    return c.location(city=depot, country="CA")


class Adapter(CarrierAdapter):
    code = "purolator"
    name = "Purolator"
    home_zone = None
    mapping = "purolator"
    tracking_url_template = "https://www.purolator.com/en/shipping/tracker?pin={number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        root = c.load_xml(body)
        infos = list(c.iter_local(root, "TrackingInformation"))
        if not infos:
            errors = list(c.iter_local(root, "Error"))
            if errors:
                return [
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(tracking_number)
                        if tracking_number
                        else None,
                        found=False,
                        message=c.text(errors[0], "Description"),
                    )
                ]
            raise PayloadError("Purolator: no TrackingInformation")
        results = []
        for info_el in infos:
            number = c.text(info_el, "PIN", "Value") or tracking_number
            events = []
            for scan in c.iter_local(info_el, "Scan"):
                loc = _depot_location(c.text(scan, "Depot", "Name"))
                t = c.text(scan, "ScanTime")
                local_text = c.joined(c.text(scan, "ScanDate"), t)
                compact = c.joined(c.text(scan, "ScanDate"), t.replace(":", "") if t else None)
                info = c.time_of(
                    compact.replace("-", "") if compact else None, now=now, location=loc
                )
                events.append(
                    c.event(
                        code=c.text(scan, "ScanType"),
                        description=c.text(scan, "Description"),
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
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """TrackPackagesByPin through karrio-purolator (key/password basic auth)."""
        return c.karrio_fetch(
            "purolator",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("username", "password", "account_number", "user_token"),
        )
