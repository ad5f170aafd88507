"""bpost track & trace (XML ``itemTracking``, Shipping Manager tracking info v1).

Source: bpost "Track & Trace web service" (``tracking_info_v1`` schema):
``itemTracking`` with ``itemCode``, ``stateInfo[]`` (``stateCode``,
``stateDescription``, ``time`` ISO 8601 with offset, sometimes with
milliseconds), ``deliveryTime``; oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, TrackingResult


class Adapter(CarrierAdapter):
    code = "bpost"
    name = "bpost"
    home_zone = "Europe/Brussels"
    mapping = "bpost"
    tracking_url_template = "https://track.bpost.cloud/btr/web/#/search?itemCode={number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        root = c.load_xml(body)
        items = (
            [root]
            if c.local(root.tag) == "itemTracking"
            else list(c.iter_local(root, "itemTracking"))
        )
        if not items:
            err = next(iter(c.iter_local(root, "error")), None)
            if err is not None:
                return [
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(tracking_number)
                        if tracking_number
                        else None,
                        found=False,
                        message=c.clean("".join(err.itertext())),
                    )
                ]
            raise PayloadError("bpost: no itemTracking")
        results = []
        for item in items:
            number = c.text(item, "itemCode") or tracking_number
            events = []
            for st in c.children(item, "stateInfo"):
                local_text = c.text(st, "time")
                info = c.time_of(local_text, now=now, home_zone=self.home_zone)
                events.append(
                    c.event(
                        code=c.text(st, "stateCode"),
                        description=c.text(st, "stateDescription"),
                        local_text=local_text,
                        info=info,
                    )
                )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                    eta=timeparse.parse_date(c.text(item, "deliveryTime")),
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Tracking through karrio-bpost (account id + passphrase)."""
        return c.karrio_fetch(
            "bpost",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("account_id", "passphrase"),
        )
