"""Loading and querying the per-carrier mapping tables (``mappings/<carrier>.toml``).

A mapping file is data, written from the carrier's documentation, with a
``source`` on every entry. Shape::

    [meta]
    carrier = "ups"
    case = "upper"                 # how codes are normalized: upper | lower | keep
    strip_leading_zeros = false    # Canada Post sends 0174 for 174
    pad = 2                        # USPS: numeric codes are two digits (7 -> 07)
    keys = ["{hint}:{code}", "{code}", "{hint}"]   # lookup order; a key whose
                                   # fields are missing is skipped
    refine = ["accepted"]          # aggregators: statuses the physical carrier's
                                   # own mapping may substitute for a coarse one

    [codes."I:OR"]
    status = "accepted"
    source = "UPS Tracking API ... "

    [codes.X]                      # a coarse code: the description decides
    status = "exception"
    reason = "other"
    rules = "ups_exception_text"
    source = "..."

    [[rules.ups_exception_text]]
    pattern = "refund"             # Python regex, searched case-insensitively
    status = "info"
    source = "..."

Pure module (standard library only).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

STATUSES = (
    "label_created",
    "accepted",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "exception",
    "info",
    "unknown",
)
REASONS = (
    "delayed",
    "failed_attempt",
    "address_issue",
    "damaged",
    "lost",
    "held",
    "awaiting_pickup",
    "returned_to_sender",
    "refused",
    "cancelled",
    "misrouted",
    "other",
)

MAPPINGS_DIR = Path(__file__).parent / "mappings"


class MappingError(ValueError):
    """A mapping file is malformed (unknown status/reason, missing source)."""


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    status: str
    reason: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Entry:
    status: str
    reason: str | None
    source: str
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class CarrierMapping:
    """One carrier's table. ``lookup`` is the only query the normalizer needs."""

    carrier: str
    case: str
    strip_leading_zeros: bool
    pad: int
    keys: tuple[str, ...]
    refine: tuple[str, ...]
    entries: dict[str, Entry]

    def norm(self, value: str | None) -> str | None:
        """Normalize a code for lookup: trim, collapse whitespace, case per the
        file, and drop leading zeros where the carrier pads (all-zero stays ``0``)."""
        if value is None:
            return None
        text = " ".join(str(value).split())
        if not text:
            return None
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if self.strip_leading_zeros and text.isdigit():
            text = text.lstrip("0") or "0"
        elif self.pad and text.isdigit() and len(text) < self.pad:
            text = text.zfill(self.pad)
        return text

    def candidate_keys(self, code: str | None, hint: str | None, detail: str | None) -> list[str]:
        values = {"code": self.norm(code), "hint": self.norm(hint), "detail": self.norm(detail)}
        keys: list[str] = []
        for template in self.keys:
            fields = re.findall(r"{(\w+)}", template)
            if any(values.get(f) is None for f in fields):
                continue
            keys.append(template.format(**values))
        return keys

    def lookup(
        self, code: str | None, hint: str | None, detail: str | None, description: str
    ) -> tuple[str, str | None, str | None, str | None]:
        """-> (status, reason, matched key, source). ``unknown`` when no key
        matches: never guessed. A coarse entry (one with rules) lets the first
        matching description rule decide, else its own status stands."""
        for key in self.candidate_keys(code, hint, detail):
            entry = self.entries.get(key)
            if entry is None:
                continue
            for rule in entry.rules:
                if rule.pattern.search(description):
                    return rule.status, rule.reason, key, rule.source
            return entry.status, entry.reason, key, entry.source
        return "unknown", None, None, None


def _check_status(carrier: str, where: str, status: str, reason: str | None) -> None:
    if status not in STATUSES:
        raise MappingError(f"{carrier}: {where}: unknown status {status!r}")
    if status == "exception":
        if reason not in REASONS:
            raise MappingError(f"{carrier}: {where}: exception needs a reason, got {reason!r}")
    elif reason is not None:
        raise MappingError(f"{carrier}: {where}: reason only allowed with exception")


@functools.cache
def load_mapping(name: str) -> CarrierMapping:
    """Load and validate ``mappings/<name>.toml`` (cached). Raises MappingError."""
    path = MAPPINGS_DIR / f"{name}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    meta = data.get("meta", {})
    rulesets: dict[str, tuple[Rule, ...]] = {}
    for rs_name, rules in data.get("rules", {}).items():
        built = []
        for i, rule in enumerate(rules):
            status, reason = rule["status"], rule.get("reason")
            _check_status(name, f"rules.{rs_name}[{i}]", status, reason)
            if not rule.get("source"):
                raise MappingError(f"{name}: rules.{rs_name}[{i}] has no source")
            built.append(
                Rule(re.compile(rule["pattern"], re.IGNORECASE), status, reason, rule["source"])
            )
        rulesets[rs_name] = tuple(built)
    entries: dict[str, Entry] = {}
    mapping = CarrierMapping(
        carrier=meta.get("carrier", name),
        case=meta.get("case", "upper"),
        strip_leading_zeros=bool(meta.get("strip_leading_zeros", False)),
        pad=int(meta.get("pad", 0)),
        keys=tuple(meta.get("keys", ["{code}"])),
        refine=tuple(meta.get("refine", ())),
        entries=entries,
    )
    for raw_key, entry in data.get("codes", {}).items():
        status, reason = entry["status"], entry.get("reason")
        _check_status(name, f"codes.{raw_key}", status, reason)
        if not entry.get("source"):
            raise MappingError(f"{name}: codes.{raw_key} has no source")
        rules_name = entry.get("rules")
        if rules_name and rules_name not in rulesets:
            raise MappingError(f"{name}: codes.{raw_key} names missing rules {rules_name!r}")
        key = raw_key
        # keys are stored normalized so the file may spell them as the carrier does
        parts = re.split(r"([:/])", raw_key)
        key = "".join(p if p in (":", "/") else (mapping.norm(p) or p) for p in parts)
        entries[key] = Entry(
            status, reason, entry["source"], rulesets.get(rules_name, ()) if rules_name else ()
        )
    return mapping


def available_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml"))
