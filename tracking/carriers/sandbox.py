"""The ``sandbox`` carrier: a scripted, deterministic scan progression.

Used by a new tenant until its carriers are configured, by the demo and by
tests. It is answered to polling exactly like a real carrier: ``fetch``
returns a JSON document listing the scans due by "now", and ``parse`` reads
that document like any carrier payload, so sandbox returns move through every
milestone by the same ingest path (normalize, de-duplicate, status,
milestones) as UPS or EasyPost. Pure module: imports no app.

**Tracking numbers.** ``SBX`` + 9 digits (the label time in whole minutes
since the Unix epoch, UTC) + 4 digits (a serial) + 1 Luhn check digit over
the 13 digits, e.g. ``SBX02990538000100``. :func:`sandbox_tracking_number`
makes one. For any other number the label time comes from the credentials
(``label_at:<number>``, ISO 8601; the poller passes the shipment's creation
time), so any number works; a number whose label time is unknown is answered
"not found".

**Scripts** (hours after the label; ``SCRIPTS``):

- ``delivered``: ACCEPTED +2 h (drop-off), DEPARTED +8 h, ARRIVED +30 h,
  OUT_FOR_DELIVERY +46 h, DELIVERED +50 h.
- ``no_scan``: never scanned (always "not found"), for the no-first-scan alert.
- ``delayed``: ACCEPTED +2, DEPARTED +8, DELAYED +30 (exception ``delayed``),
  ARRIVED +54, OUT_FOR_DELIVERY +70, DELIVERED +74.
- ``failed_attempt``: ACCEPTED +2, DEPARTED +8, ARRIVED +30,
  OUT_FOR_DELIVERY +46, ATTEMPT_FAILED +50 (exception ``failed_attempt``),
  OUT_FOR_DELIVERY +70, DELIVERED +74.

The script is chosen from the number, deterministically: for an ``SBX``
number the serial's last digit (0-6 delivered, 7 no_scan, 8 delayed,
9 failed_attempt); for any other number the first byte of the SHA-256 of the
normalized number, modulo 10, through the same table.

**Time.** ``fetch`` answers "as of" ``credentials["as_of"]`` (ISO 8601 with
an offset; the poller passes its ``now``), else the wall clock (UTC). Scan
times are UTC with ``Z``; the payload's ``as_of`` echoes the instant used.

Mapping: ``mappings/sandbox.toml`` (synthetic codes, source: this module).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from . import _common as c
from .base import CarrierAdapter, Credentials, PayloadError, TrackingResult

PREFIX = "SBX"
ORIGIN = {"city": "Newark", "region": "NJ", "postcode": "07102", "country": "US"}
HUB = {"city": "Columbus", "region": "OH", "postcode": "43215", "country": "US"}
DESTINATION = {"city": "Reno", "region": "NV", "postcode": "89502", "country": "US"}


@dataclass(frozen=True, slots=True)
class ScriptedScan:
    """One scripted scan: ``hours`` after the label, the sandbox's raw ``code``."""

    hours: int
    code: str
    description: str
    location: Mapping[str, str]


_ACCEPTED = ScriptedScan(2, "ACCEPTED", "Parcel dropped off at the drop-off point", ORIGIN)
_DEPARTED = ScriptedScan(8, "DEPARTED", "Departed the origin facility", ORIGIN)

SCRIPTS: dict[str, tuple[ScriptedScan, ...]] = {
    "delivered": (
        _ACCEPTED,
        _DEPARTED,
        ScriptedScan(30, "ARRIVED", "Arrived at the destination facility", HUB),
        ScriptedScan(46, "OUT_FOR_DELIVERY", "Out for delivery", DESTINATION),
        ScriptedScan(50, "DELIVERED", "Delivered to the return centre", DESTINATION),
    ),
    "no_scan": (),
    "delayed": (
        _ACCEPTED,
        _DEPARTED,
        ScriptedScan(30, "DELAYED", "Delayed: missed the connecting truck", HUB),
        ScriptedScan(54, "ARRIVED", "Arrived at the destination facility", HUB),
        ScriptedScan(70, "OUT_FOR_DELIVERY", "Out for delivery", DESTINATION),
        ScriptedScan(74, "DELIVERED", "Delivered to the return centre", DESTINATION),
    ),
    "failed_attempt": (
        _ACCEPTED,
        _DEPARTED,
        ScriptedScan(30, "ARRIVED", "Arrived at the destination facility", HUB),
        ScriptedScan(46, "OUT_FOR_DELIVERY", "Out for delivery", DESTINATION),
        ScriptedScan(
            50, "ATTEMPT_FAILED", "Delivery attempted: receiving dock closed", DESTINATION
        ),
        ScriptedScan(70, "OUT_FOR_DELIVERY", "Out for delivery", DESTINATION),
        ScriptedScan(74, "DELIVERED", "Delivered to the return centre", DESTINATION),
    ),
}
#: digit -> script name (0-6 delivered, 7 no_scan, 8 delayed, 9 failed_attempt)
SCRIPT_BY_DIGIT = {**dict.fromkeys(range(7), "delivered"), 7: "no_scan"}
SCRIPT_BY_DIGIT.update({8: "delayed", 9: "failed_attempt"})
DIGIT_OF_SCRIPT = {"delivered": 0, "no_scan": 7, "delayed": 8, "failed_attempt": 9}


def _luhn_digit(digits: str) -> int:
    """The Luhn check digit to append to ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def sandbox_tracking_number(*, label_at: datetime, serial: int, script: str | None = None) -> str:
    """A sandbox number encoding ``label_at`` (aware; whole minutes, UTC).

    ``serial`` (0..9999) keeps numbers of the same minute apart; ``script``
    (a ``SCRIPTS`` name) forces the serial's last digit so the number follows
    that script. Raises ValueError for a naive time or an unknown script.
    """
    if label_at.tzinfo is None:
        raise ValueError("label_at must be timezone-aware")
    minutes = int(label_at.timestamp() // 60)
    serial = serial % 10_000
    if script is not None:
        if script not in DIGIT_OF_SCRIPT:
            raise ValueError(f"unknown sandbox script {script!r}")
        serial = (serial // 10) * 10 + DIGIT_OF_SCRIPT[script]
    body = f"{minutes:09d}{serial:04d}"
    return f"{PREFIX}{body}{_luhn_digit(body)}"


def _parts(number: str) -> tuple[str, str] | None:
    n = "".join(number.split()).upper()
    if len(n) == 17 and n.startswith(PREFIX) and n[3:].isdigit():
        return n[3:16], n[16]
    return None


def label_time(number: str) -> datetime | None:
    """The label time an ``SBX`` number encodes (aware UTC), else None."""
    parts = _parts(number)
    if parts is None or _luhn_digit(parts[0]) != int(parts[1]):
        return None
    return datetime.fromtimestamp(int(parts[0][:9]) * 60, tz=UTC)


def script_for(number: str) -> str:
    """The script a number follows (see the module docstring)."""
    parts = _parts(number)
    if parts is not None:
        return SCRIPT_BY_DIGIT[int(parts[0][-1])]
    digest = hashlib.sha256("".join(number.split()).upper().encode()).digest()
    return SCRIPT_BY_DIGIT[digest[0] % 10]


def scans_due(
    number: str, *, label_at: datetime, now: datetime
) -> list[tuple[datetime, ScriptedScan]]:
    """The scripted scans of ``number`` whose time is at or before ``now``, oldest first."""
    out = []
    for scan in SCRIPTS[script_for(number)]:
        at = label_at + timedelta(hours=scan.hours)
        if at <= now:
            out.append((at, scan))
    return out


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tracking_document(
    numbers: Sequence[str], *, now: datetime, label_times: Mapping[str, datetime] | None = None
) -> bytes:
    """The JSON document ``fetch`` returns, for ``numbers`` as of ``now``.

    Shape: ``{"carrier": "sandbox", "as_of": ISO, "trackers": [{"tracking_number",
    "found", "script", "label_created_at", "message", "events": [{"code",
    "description", "occurred_at", "location": {city, region, postcode,
    country}}]}]}``; events oldest first.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    trackers = []
    for raw in numbers:
        number = "".join(raw.split()).upper()
        label_at = label_time(number) or (label_times or {}).get(number)
        entry: dict[str, object] = {"tracking_number": number, "script": script_for(number)}
        if label_at is None:
            entry.update(found=False, message="unknown sandbox number", events=[])
        else:
            due = scans_due(number, label_at=label_at, now=now)
            entry.update(
                found=bool(due),
                label_created_at=_iso(label_at),
                message=None if due else "no scan yet",
                events=[
                    {
                        "code": scan.code,
                        "description": scan.description,
                        "occurred_at": _iso(at),
                        "location": dict(scan.location),
                    }
                    for at, scan in due
                ],
            )
        trackers.append(entry)
    return json.dumps({"carrier": "sandbox", "as_of": _iso(now), "trackers": trackers}).encode()


def _parse_instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"sandbox: bad instant {value!r}") from exc
    if parsed.tzinfo is None:
        raise PayloadError(f"sandbox: instant without offset {value!r}")
    return parsed.astimezone(UTC)


class Adapter(CarrierAdapter):
    """The scripted sandbox carrier (code ``sandbox``)."""

    code = "sandbox"
    name = "Sandbox carrier"
    home_zone = "UTC"
    mapping = "sandbox"
    poll_batch_size = 100
    poll_calls_per_minute = 600

    def check_digit_valid(self, number: str) -> bool | None:
        parts = _parts(number)
        if parts is None:
            return None
        return _luhn_digit(parts[0]) == int(parts[1])

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """The scans due for ``numbers`` as of ``credentials["as_of"]`` (else the
        wall clock); ``label_at:<number>`` entries give label times for numbers
        that do not encode one. No network; never raises for an unknown number."""
        now = _parse_instant(credentials.get("as_of")) or datetime.now(UTC)
        label_times = {}
        for key, value in credentials.values.items():
            if key.startswith("label_at:") and value:
                parsed = _parse_instant(value)
                if parsed is not None:
                    label_times["".join(key[9:].split()).upper()] = parsed
        return tracking_document(numbers, now=now, label_times=label_times)

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        data = c.load_json(body)
        if not isinstance(data, dict) or not isinstance(data.get("trackers"), list):
            raise PayloadError("sandbox: no trackers list")
        results = []
        for t, tracker in enumerate(c.as_objects(data["trackers"], "sandbox: trackers")):
            number = c.opt(tracker.get("tracking_number")) or tracking_number
            events = []
            for e, ev in enumerate(
                c.as_objects(tracker.get("events"), f"sandbox: trackers[{t}].events")
            ):
                loc_data = c.as_object(
                    ev.get("location"), f"sandbox: trackers[{t}].events[{e}].location"
                )
                loc = c.location(
                    city=loc_data.get("city"),
                    region=loc_data.get("region"),
                    postcode=loc_data.get("postcode"),
                    country=loc_data.get("country"),
                )
                text = c.opt(ev.get("occurred_at"))
                events.append(
                    c.event(
                        code=ev.get("code"),
                        description=ev.get("description"),
                        local_text=text,
                        info=c.time_of(text, now=now, location=loc, home_zone=self.home_zone),
                        location=loc,
                    )
                )
            results.append(
                TrackingResult(
                    provider=self.code,
                    carrier=self.code,
                    tracking_number=self.normalize_tracking_number(number) if number else None,
                    events=c.sequence(events, newest_first=False),
                    found=bool(tracker.get("found", bool(events))),
                    message=c.opt(tracker.get("message")),
                    extra={"script": c.clean(tracker.get("script"))},
                )
            )
        return results
