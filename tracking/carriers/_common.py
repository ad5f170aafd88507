"""Helpers shared by the adapters: safe JSON/XML loading, text cleaning, event
assembly, thin HTTP and karrio access. Internal to ``tracking.carriers``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from . import timeparse
from .base import CarrierError, Credentials, Location, PayloadError, RawEvent

JSON = Any


def load_json(body: bytes) -> JSON:
    """Decode a JSON body; PayloadError if it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from exc
    except RecursionError:
        raise PayloadError("not JSON: nested too deeply") from None


def load_xml(body: bytes) -> Element:
    """Parse XML with defusedxml (no entities, no external resources)."""
    try:
        return SafeET.fromstring(body)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise PayloadError(f"not XML: {exc}") from exc


def local(tag: str) -> str:
    """Tag name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def children(el: Element, name: str) -> list[Element]:
    return [c for c in el if local(c.tag) == name]


def child(el: Element | None, name: str) -> Element | None:
    if el is None:
        return None
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text(el: Element | None, *path: str) -> str | None:
    """Text at a child path (namespace-agnostic), stripped; None if absent/empty."""
    node = el
    for name in path:
        node = child(node, name)
        if node is None:
            return None
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


def iter_local(el: Element, name: str) -> Iterable[Element]:
    for node in el.iter():
        if local(node.tag) == name:
            yield node


def kind(value: object) -> str:
    """How a JSON value is named in a PayloadError message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _empty(value: object) -> bool:
    """None, ``""``, ``[]`` and ``{}`` all mean "nothing here" (some feeds, e.g.
    PHP's ``json_encode``, write an empty object as ``[]``)."""
    return value is None or (isinstance(value, str | list | dict) and not value)


def as_object(value: JSON, what: str) -> dict[str, Any]:
    """``value`` where the payload must hold an object: ``{}`` when empty (see
    :func:`_empty`); PayloadError naming ``what`` for any other type."""
    if isinstance(value, dict):
        return value
    if _empty(value):
        return {}
    raise PayloadError(f"{what} is {kind(value)}, not an object")


def as_objects(value: JSON, what: str) -> list[dict[str, Any]]:
    """``value`` where the payload must hold a list of objects: ``[]`` when
    empty; PayloadError naming ``what`` (and the item's index) otherwise."""
    if _empty(value):
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{what} is {kind(value)}, not a list")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise PayloadError(f"{what}[{i}] is {kind(item)}, not an object")
    return value


def clean(value: object) -> str:
    """Collapse whitespace (carriers wrap descriptions over lines); '' for None
    or an empty container. A number becomes its text; a non-empty list or
    object where text is expected is a PayloadError. NUL characters (valid in
    JSON as ``\\u0000``, refused by PostgreSQL text columns) are dropped."""
    if _empty(value):
        return ""
    if isinstance(value, list | dict):
        raise PayloadError(f"expected a text value, got {kind(value)}: {_excerpt(value)}")
    return " ".join(str(value).replace("\x00", "").split())


def _excerpt(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def opt(value: object) -> str | None:
    """Cleaned string or None when empty."""
    out = clean(value)
    return out or None


def get(obj: JSON, *path: str | int, default: Any = None) -> Any:
    """Nested dict/list access that tolerates missing keys and wrong types."""
    node = obj
    for key in path:
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node) or key < -len(node):
                return default
            node = node[key]
        else:
            if not isinstance(node, dict):
                return default
            node = node.get(key)
        if node is None:
            return default
    return node


def location(
    *,
    city: object = None,
    region: object = None,
    postcode: object = None,
    country: object = None,
    facility: object = None,
    raw: object = None,
    iata: object = None,
) -> Location | None:
    loc = Location(
        city=opt(city),
        region=opt(region),
        postcode=opt(postcode),
        country=timeparse.country_code(opt(country)),
        facility=opt(facility),
        raw=opt(raw),
        iata=opt(iata),
    )
    return None if loc.is_empty() else loc


def event(
    *,
    code: object,
    description: object,
    local_text: str | None,
    info: timeparse.TimeInfo,
    location: Location | None = None,
    status_hint: object = None,
    detail_hint: object = None,
    physical_carrier: str | None = None,
    physical_code: object = None,
) -> RawEvent:
    """Assemble a RawEvent (sequence/index are set by :func:`sequence`)."""
    return RawEvent(
        carrier_code=None if _empty(code) else (clean_code(code) or None),
        description=clean(description),
        occurred_at_local=local_text,
        occurred_at=info.occurred_at,
        time_precision=info.precision,
        local_date=info.local_date,
        tz_source=info.tz_source,
        tz_name=info.tz_name,
        location=location,
        status_hint=opt(status_hint),
        detail_hint=opt(detail_hint),
        physical_carrier=physical_carrier,
        physical_code=opt(physical_code),
        time_flag=info.flag,
    )


def clean_code(value: object) -> str:
    """A raw event code: stripped, inner spacing kept, NULs dropped (see
    :func:`clean`); containers are a PayloadError."""
    if _empty(value):
        return ""
    if isinstance(value, list | dict):
        raise PayloadError(f"expected an event code, got {kind(value)}: {_excerpt(value)}")
    return str(value).replace("\x00", "").strip()


def sequence(events: Sequence[RawEvent], *, newest_first: bool) -> tuple[RawEvent, ...]:
    """Set ``index`` (payload position) and ``sequence`` (carrier chronology:
    reversed for carriers that list newest first)."""
    n = len(events)
    return tuple(
        replace(ev, index=i, sequence=(n - 1 - i) if newest_first else i)
        for i, ev in enumerate(events)
    )


def time_of(
    text_value: str | None,
    *,
    now: datetime,
    order: str = "ymd",
    location: Location | None = None,
    home_zone: str | None = None,
    offset: timedelta | None = None,
    offset_source: timeparse.TzSource = "separate_field",
    utc_twin: datetime | None = None,
    abbreviation: str | None = None,
    zone: str | None = None,
    utc_midnight_is_date: bool = False,
) -> timeparse.TimeInfo:
    """Parse + resolve one carrier time string (see timeparse.resolve)."""
    wall = timeparse.parse_local(text_value, order=order) if text_value else None
    return timeparse.resolve(
        wall,
        now=now,
        offset=offset,
        offset_source=offset_source,
        utc_twin=utc_twin,
        abbreviation=abbreviation,
        location=location,
        home_zone=home_zone,
        zone=zone,
        utc_midnight_is_date=utc_midnight_is_date,
    )


def joined(*parts: str | None) -> str | None:
    """Join separate date and time fields with one space, as given."""
    values = [p.strip() for p in parts if p and p.strip()]
    return " ".join(values) if values else None


def http_json(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float,
) -> bytes:
    """Plain HTTPS call with urllib; returns the body bytes.

    4xx (except 408/429) -> CarrierError(permanent=True); 5xx, 408, 429 and
    network errors -> CarrierError(permanent=False). Not exercised against live
    services in this repository's tests.
    """
    import urllib.error
    import urllib.request

    if not url.startswith("https://"):
        raise CarrierError(f"refusing non-HTTPS carrier URL {url!r}", permanent=True)
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.read()
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise CarrierError(
            f"HTTP {exc.code} from {url}", permanent=permanent, code=str(exc.code)
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise CarrierError(f"network error calling {url}: {exc}", permanent=False) from exc


def karrio_fetch(
    carrier_name: str,
    numbers: Sequence[str],
    credentials: Credentials,
    *,
    timeout: float,
    settings_keys: Iterable[str],
    encode: Callable[[Any], bytes] | None = None,
) -> bytes:
    """Fetch raw tracking responses through karrio's gateway for ``carrier_name``
    (auth, request building, HTTP). karrio's own tracking parser is NOT used:
    the proxy's raw response value is returned as bytes (a ``{"batch": [...]}``
    envelope when karrio made one request per number).

    Thin by design; cannot be exercised against live carrier APIs here.
    """
    try:
        import karrio.core.models as models
        import karrio.sdk as karrio_sdk
    except ImportError as exc:  # pragma: no cover - pinned dependency
        raise CarrierError("karrio SDK not installed", permanent=True) from exc
    settings: dict[str, Any] = {
        k: credentials.get(k) for k in settings_keys if credentials.get(k) is not None
    }
    settings["test_mode"] = credentials.test_mode
    settings.setdefault("carrier_id", carrier_name)
    try:
        gateway = karrio_sdk.gateway[carrier_name].create(settings)
        request = gateway.mapper.create_tracking_request(
            models.TrackingRequest(tracking_numbers=list(numbers))
        )
        response = gateway.proxy.get_tracking(request)
    except CarrierError:
        raise
    except Exception as exc:  # karrio raises many types; classify as retryable
        raise CarrierError(
            f"karrio {carrier_name} tracking call failed: {exc}", permanent=False
        ) from exc
    value = response.value
    encoder = encode or _encode_value
    if isinstance(value, list):
        docs = [v if isinstance(v, (str, dict, list)) else str(v) for v in value]
        return json.dumps(
            {"batch": [d if isinstance(d, str) else json.dumps(d) for d in docs]}
        ).encode()
    return encoder(value)


def _encode_value(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


def not_built(code: str, what: str) -> CarrierError:
    return CarrierError(f"{code}: {what} is not built yet", permanent=True, code="not_implemented")
