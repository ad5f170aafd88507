"""Australia Post Shipping & Tracking API (``GET /shipping/v1/track``, JSON).

Source: Australia Post developer centre "Track items": ``tracking_results[]``
with ``trackable_items[]`` (or ``trackable_items[].items[]`` for consignments),
``events[]`` with ``description``, ``location`` (free text, sometimes the
pseudo-location "Transit Scan"), ``date`` (ISO 8601 with the *system's*
offset, not the scan's); newest first. Events carry no code: the mapping is
by description (the ``*`` entry's rules). Per-number ``errors`` give
``found=False``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import _common as c
from .base import CarrierAdapter, Credentials, PayloadError, SummaryStatus, TrackingResult


class Adapter(CarrierAdapter):
    code = "australiapost"
    name = "Australia Post"
    home_zone = "Australia/Sydney"
    mapping = "australiapost"
    tracking_url_template = "https://auspost.com.au/mypost/track/details/{number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict) or "tracking_results" not in data:
            raise PayloadError("Australia Post: no tracking_results")
        results = []
        for tr in c.as_objects(data["tracking_results"], "Australia Post: tracking_results"):
            tid = c.opt(tr.get("tracking_id")) or tracking_number
            if tr.get("errors") and not tr.get("trackable_items"):
                errors = c.as_objects(tr["errors"], "Australia Post: errors")
                err = errors[0] if errors else {}
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(tid) if tid else None,
                        found=False,
                        message=f"{c.clean(err.get('code'))} {c.clean(err.get('name'))}",
                    )
                )
                continue
            items: list[Mapping[str, Any]] = []
            for ti in c.as_objects(tr.get("trackable_items"), "Australia Post: trackable_items"):
                items.extend(c.as_objects(ti.get("items"), "Australia Post: items") or [ti])
            for item in items:
                number = c.opt(item.get("article_id")) or tid
                events = []
                for ev in c.as_objects(item.get("events"), "Australia Post: events"):
                    raw_loc = c.opt(ev.get("location"))
                    loc = (
                        c.location(raw=raw_loc)
                        if raw_loc and raw_loc.lower() != "transit scan"
                        else None
                    )
                    local_text = c.opt(ev.get("date"))
                    info = c.time_of(local_text, now=now, home_zone=self.home_zone)
                    events.append(
                        c.event(
                            code=None,
                            description=ev.get("description"),
                            local_text=local_text,
                            info=info,
                            location=loc,
                        )
                    )
                status = c.opt(item.get("status")) or c.opt(tr.get("status"))
                results.append(
                    TrackingResult(
                        provider=self.code,
                        carrier=self.code,
                        tracking_number=self.normalize_tracking_number(number) if number else None,
                        events=c.sequence(events, newest_first=True),
                        summary=SummaryStatus(code=None, hint=status, description=status or "")
                        if status
                        else None,
                    )
                )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Track items through karrio-australiapost (API key + account; up to 10 ids)."""
        return c.karrio_fetch(
            "australiapost",
            numbers,
            credentials,
            timeout=timeout,
            settings_keys=("api_key", "password", "account_number"),
        )
