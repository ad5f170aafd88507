"""Carrier adapter contract: the shapes every adapter produces and the base class.

Pure module: standard library only. Nothing here touches a database, a tenant or
Django; ``tracking.carriers`` imports no project app (import-linter enforces it).

Times: ``RawEvent.occurred_at`` is always an aware UTC ``datetime`` or ``None``
(date-only values and naive times whose zone cannot be resolved are ``None``; the
wall-clock text is kept verbatim in ``occurred_at_local``). See
``tracking.carriers.timeparse`` for how a carrier string becomes an instant.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Literal

TimePrecision = Literal["second", "minute", "date"]
TzSource = Literal[
    "offset",  # the time string carries its own offset (``+02:00``, ``+0200``, ``Z``)
    "gmt_field",  # a separate UTC twin of the same instant (USPS ``GMTTimestamp``)
    "separate_field",  # an offset in a separate field (Yanwen ``"time_zone": "+8"``)
    "abbreviation",  # a zone abbreviation (Canada Post ``EST``)
    "location",  # naive local time, zone derived from the scan location
    "carrier_home",  # naive local time, zone = the carrier's home zone
    "none",  # unresolvable (``occurred_at`` is None)
]
EventSource = Literal["event", "summary"]
TimeFlag = Literal["before_1990", "far_future"]


class CarrierError(Exception):
    """A carrier call or payload failed.

    ``permanent=True`` means retrying the same request cannot succeed (bad
    credentials, unsupported operation, invalid number); ``False`` means a retry
    later may work (timeout, 5xx, rate limit).
    """

    def __init__(self, message: str, *, permanent: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class PayloadError(CarrierError):
    """The body is not a payload this adapter understands (malformed JSON/XML,
    wrong shape). Always permanent: the same bytes never parse."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True, code="payload")


class WebhookVerificationError(CarrierError):
    """A webhook delivery failed signature verification (missing header,
    tampered body, wrong secret). Permanent for that delivery."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True, code="signature")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a scan happened, as structured as the carrier gives it.

    ``country`` is ISO 3166-1 alpha-2 (upper case) or None; ``raw`` is the
    carrier's own location text when it gives one string (never parsed further
    than the carrier's structure allows: no geocoding).
    """

    city: str | None = None
    region: str | None = None
    postcode: str | None = None
    country: str | None = None
    facility: str | None = None
    raw: str | None = None
    iata: str | None = None

    def display(self) -> str | None:
        """A human string such as ``"OTTAWA, ON, CA"``; None when nothing is known."""
        if self.raw:
            return self.raw
        parts = [
            p for p in (self.facility, self.city, self.region, self.postcode, self.country) if p
        ]
        if not parts:
            return None
        return ", ".join(parts)

    def is_empty(self) -> bool:
        return not any(
            (
                self.city,
                self.region,
                self.postcode,
                self.country,
                self.facility,
                self.raw,
                self.iata,
            )
        )


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One carrier event exactly as parsed, before status normalization.

    - ``carrier_code``: the carrier's own raw event code as printed by
      ``normalize_events`` (UPS ``KB``, AfterShip subtag, Shippo status; None when
      the payload has none, e.g. EasyPost test mode).
    - ``occurred_at_local``: the time text exactly as the payload gives it
      (date and time fields joined with one space when they are separate).
    - ``occurred_at``: aware UTC instant, or None for date-only / unresolvable.
    - ``local_date``: the calendar date for a date-only event (else the local
      date of the wall time, when known).
    - ``tz_name``: IANA zone used (or inferred) for the wall time, if any; used to
      place date-only events at the local start of their day.
    - ``sequence``: position in the carrier's chronological order (0 = oldest as
      the carrier lists it); ``index``: position in the payload as printed.
    - ``status_hint`` / ``detail_hint``: coarse classifiers the mapping needs
      (UPS type letter ``D/I/X/M/P``; aggregator tag + subtag; EasyPost
      status + status_detail; Shippo status + substatus; DHL Parcel DE ICE/RIC).
    - ``physical_carrier`` / ``physical_code``: for aggregator events, the
      physical carrier code (DESIGN section 9 spelling) and its raw code, so the
      physical carrier's mapping may refine a coarse aggregator status.
    - ``time_flag``: ``before_1990`` or ``far_future`` when the time was rejected
      (DESIGN section 6); the event is kept, ``occurred_at`` is None.
    """

    carrier_code: str | None
    description: str
    occurred_at_local: str | None
    occurred_at: datetime | None
    time_precision: TimePrecision = "second"
    local_date: date | None = None
    tz_source: TzSource = "none"
    tz_name: str | None = None
    location: Location | None = None
    sequence: int = 0
    index: int = 0
    status_hint: str | None = None
    detail_hint: str | None = None
    physical_carrier: str | None = None
    physical_code: str | None = None
    time_flag: TimeFlag | None = None
    source: EventSource = "event"


@dataclass(frozen=True, slots=True)
class SummaryStatus:
    """A shipment-level status the payload states besides its events.

    ``occurred_at`` is the summary's own timestamp (aware UTC) when the payload
    gives one (GLS ``statusDateTime``): then it becomes a synthetic event with
    ``source="summary"``. Without one it may only replace ``unknown``.
    ``code``/``hint`` are looked up in the provider's mapping like an event.
    """

    code: str | None
    description: str = ""
    occurred_at: datetime | None = None
    occurred_at_local: str | None = None
    hint: str | None = None
    detail: str | None = None
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class TrackingResult:
    """Everything one payload says about one tracking number.

    - ``provider``: the adapter code that reported it (``aftership``).
    - ``carrier``: the physical carrier code if the payload names it, else the
      provider code (for a physical carrier adapter both are equal).
    - ``tracking_number``: normalized per the physical carrier; None when the
      payload carries no number (UPS ``TW0001`` warning without a number).
    - ``events``: RawEvents in payload order.
    - ``found``: False for "not found" / per-number errors; ``message`` says why.
    - ``ship_date``/``eta``: local calendar dates when given (no zone implied).
    - ``origin_country``/``destination_country``: ISO-2.
    """

    provider: str
    carrier: str
    tracking_number: str | None
    events: tuple[RawEvent, ...] = ()
    summary: SummaryStatus | None = None
    found: bool = True
    message: str | None = None
    ship_date: date | None = None
    eta: date | None = None
    origin_country: str | None = None
    destination_country: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookVerification:
    """Result of a successful verification: the provider's delivery id (for
    de-duplication; None where the provider signs none) and the signed
    timestamp (for our replay window; None where unsigned)."""

    provider: str
    event_id: str | None = None
    signed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """Per-tenant carrier credentials, already decrypted by the caller.

    ``values`` holds the carrier-specific keys (``client_id``, ``api_key`` ...);
    ``test_mode`` selects the carrier's sandbox host.
    """

    values: Mapping[str, str]
    test_mode: bool = False

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def require(self, key: str) -> str:
        value = self.values.get(key)
        if not value:
            raise CarrierError(f"missing credential {key!r}", permanent=True, code="credentials")
        return value


@dataclass(frozen=True, slots=True)
class LabelRequest:
    """What a return label needs: addresses as plain mappings (name, street,
    city, postcode, region, country ISO-2), parcel weight in grams and a
    reference (the RMA number)."""

    ship_from: Mapping[str, str]
    ship_to: Mapping[str, str]
    weight_grams: int
    reference: str
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """A bought label: the tracking number (normalized), the label document
    bytes and media type, and the cost in major units as a decimal string."""

    tracking_number: str
    document: bytes
    media_type: str = "application/pdf"
    cost: str | None = None
    currency: str | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def unix_instant(seconds: float) -> datetime | None:
    """Aware UTC datetime for Unix ``seconds`` from a signed body or header.

    Never raises: a value beyond datetime's range is clamped to its first or
    last instant (so a replay-window check calls it stale, not a crash); NaN
    is None. Pure arithmetic, no platform ``fromtimestamp`` limits."""
    if seconds != seconds:  # NaN
        return None
    if seconds <= (_FIRST - _EPOCH).total_seconds():
        return _FIRST
    if seconds >= (_LAST - _EPOCH).total_seconds():
        return _LAST
    return _EPOCH + timedelta(seconds=seconds)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets in constant time (``hmac.compare_digest``)."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def nfkd_utf8(secret: str) -> bytes:
    """NFKD-normalize then UTF-8 encode a secret (EasyPost's key derivation)."""
    return unicodedata.normalize("NFKD", secret).encode("utf-8")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (WSGI/ASGI and test clients differ in case)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


class CarrierAdapter:
    """Base class of every adapter. Subclasses set the class attributes and
    implement ``parse``; the rest has safe defaults.

    - ``code``: DESIGN section 9 carrier code; ``name``: display name.
    - ``home_zone``: IANA zone for naive times with no location-derived zone;
      None for carriers spanning several zones (UPS, FedEx, USPS, DHL Express),
      whose unresolvable naive times stay ``occurred_at=None``.
    - ``aggregator``: True for EasyPost, AfterShip, Shippo, karrio.
    - ``mapping``: name of the mapping file in ``tracking/carriers/mappings``.

    A scripted fake (the ``sandbox``) only needs ``code``, ``name`` and ``parse``
    (and ``buy_label`` if it sells labels).
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    home_zone: ClassVar[str | None] = None
    aggregator: ClassVar[bool] = False
    mapping: ClassVar[str | None] = None
    tracking_url_template: ClassVar[str | None] = None
    #: Polling limits used by ``tracking.polling``: numbers per ``fetch`` call
    #: and ``fetch`` calls per minute per tenant account (the carrier's
    #: published API limits where known; conservative defaults otherwise).
    poll_batch_size: ClassVar[int] = 10
    poll_calls_per_minute: ClassVar[int] = 30

    def tracking_url(self, number: str) -> str | None:
        """Public tracking page for a number, or None if the carrier has none."""
        if not self.tracking_url_template:
            return None
        from urllib.parse import quote

        return self.tracking_url_template.format(
            number=quote(self.normalize_tracking_number(number))
        )

    def parse(
        self, body: bytes, *, tracking_number: str | None = None, now: datetime
    ) -> list[TrackingResult]:
        """Parse a tracking response or webhook body.

        Returns one TrackingResult per tracking number in the payload, events in
        payload order. ``tracking_number`` is used when the payload does not name
        its number. ``now`` (aware) bounds the far-future check.
        Raises PayloadError when the body cannot be parsed.

        A body produced by ``fetch`` for carriers that answer one request per
        number is a batch envelope ``{"batch": ["<document>", ...]}``; each
        document is parsed in turn.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if body[:10].lstrip().startswith(b'{"batch"'):
            import json

            try:
                docs = json.loads(body)["batch"]
            except (ValueError, KeyError, TypeError) as exc:
                raise PayloadError(f"bad batch envelope: {exc}") from exc
            except RecursionError:
                raise PayloadError("bad batch envelope: nested too deeply") from None
            if not isinstance(docs, list):
                raise PayloadError("bad batch envelope: batch is not a list")
            results: list[TrackingResult] = []
            for doc in docs:
                raw = doc.encode("utf-8") if isinstance(doc, str) else json.dumps(doc).encode()
                results.extend(self.parse_document(raw, tracking_number=tracking_number, now=now))
            return results
        return self.parse_document(body, tracking_number=tracking_number, now=now)

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        """Parse one carrier document; subclasses implement this."""
        raise NotImplementedError

    def normalize_tracking_number(self, number: str) -> str:
        """Default: strip all whitespace, upper-case."""
        return "".join(number.split()).upper()

    def check_digit_valid(self, number: str) -> bool | None:
        """True/False when the carrier has a check-digit scheme; None when not."""
        return None

    def verify_webhook(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        secret: str,
        now: datetime,
        query: Mapping[str, str] | None = None,
    ) -> WebhookVerification:
        """Verify a webhook delivery on the raw bytes, in constant time.

        ``query`` carries the delivery URL's query parameters (Shippo's token
        scheme). Returns the provider event id / signed time for the caller's
        de-duplication and replay window. Raises WebhookVerificationError; the
        default refuses (the carrier sends no webhooks)."""
        raise WebhookVerificationError(f"{self.code} sends no verifiable webhooks")

    def fetch(self, numbers: Sequence[str], credentials: Credentials, *, timeout: float) -> bytes:
        """Fetch the raw tracking response for a batch of numbers (polling).
        Returns bytes that ``parse`` accepts. Raises CarrierError."""
        raise CarrierError(
            f"{self.code}: polling is not built", permanent=True, code="not_implemented"
        )

    def buy_label(
        self, request: LabelRequest, credentials: Credentials, *, timeout: float
    ) -> Label:
        """Buy a return label. Raises CarrierError(permanent=True) where not built."""
        raise CarrierError(
            f"{self.code}: return labels are not built", permanent=True, code="not_implemented"
        )
