"""Yanwen (燕文) tracking API (JSON ``result[].checkpoints[]``).

Source: Yanwen tracking API documentation (track.yw56.com.cn, ``/api/tracking``):
``checkpoints[]`` with ``time_stamp`` (local, naive), ``time_zone`` (the offset
as a separate field, e.g. ``"+8"``), ``tracking_status`` (event code),
``message``, ``location``; oldest first. ``result[].tracking_status`` is a
shipment-level code without a timestamp. No 2026 karrio extension: plain HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from . import _common as c
from . import timeparse
from .base import CarrierAdapter, Credentials, PayloadError, SummaryStatus, TrackingResult


class Adapter(CarrierAdapter):
    code = "yanwen"
    name = "Yanwen"
    home_zone = "Asia/Shanghai"
    mapping = "yanwen"
    tracking_url_template = "https://track.yw56.com.cn/en/querydel?nums={number}"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict) or "result" not in data:
            raise PayloadError("Yanwen: no result")
        if data.get("code") not in (0, "0", None) and not data.get("result"):
            return [
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(tracking_number)
                    if tracking_number
                    else None,
                    found=False,
                    message=c.clean(data.get("message")),
                )
            ]
        results = []
        for item in c.as_objects(data.get("result"), "Yanwen: result"):
            number = c.opt(item.get("tracking_number")) or tracking_number
            events = []
            for cp in c.as_objects(item.get("checkpoints"), "Yanwen: result[].checkpoints"):
                loc = c.location(raw=cp.get("location"))
                local_text = c.opt(cp.get("time_stamp"))
                offset = timeparse.parse_offset(c.opt(cp.get("time_zone")))
                info = c.time_of(
                    local_text,
                    now=now,
                    location=loc,
                    home_zone=self.home_zone,
                    offset=offset,
                    offset_source="separate_field",
                )
                events.append(
                    c.event(
                        code=cp.get("tracking_status"),
                        description=cp.get("message"),
                        local_text=local_text,
                        info=info,
                        location=loc,
                    )
                )
            status = c.opt(item.get("tracking_status"))
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                    summary=SummaryStatus(code=status) if status else None,
                    found=bool(events) or bool(status),
                )
            )
        return results

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """GET the tracking API with the account's API token (plain HTTPS; no
        karrio extension exists for Yanwen in 2026). Up to 30 numbers per call."""
        token = credentials.require("api_token")
        base = credentials.get("base_url") or "https://api.track.yw56.com.cn/api/tracking"
        url = f"{base}?nums={quote(','.join(numbers[:30]))}"
        return c.http_json("GET", url, headers={"Authorization": token}, timeout=timeout)
