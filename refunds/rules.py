"""The refund rule engine (MISSION "Refund rules"; DESIGN.md sections 5 and 7). Pure.

Dataclasses in, a dataclass out; no database, no clock (`now` is a fact).

Rules are evaluated in `position` order and the **first match wins**. A
rule matches when every condition it sets holds (conditions it leaves empty
are ignored); within one condition any listed value matches:

- `risk_levels`: the order's risk level is one of them (`low`, `medium`,
  `high`; an order without one has risk level `""` and matches none).
- `order_total_min` / `order_total_max`: per currency (`{"USD": Decimal("500")}`),
  inclusive (`min <= total <= max`). Amounts compare only within the same
  currency: a rule with a value condition and no threshold for the order's
  currency **never matches** (DESIGN.md section 7; the rule admin warns).
- Line conditions, which one returned line must satisfy **together**:
  `line_value_min` / `line_value_max` (per currency, inclusive; the line
  value is the net value of the returned units of that line: unit price
  minus the unit's discount share, times the returned quantity, as
  `refunds.amounts` computes it), `reason_codes`, `skus`, `line_tags`
  (the order line's tags).
- `order_tags`: the order carries one of them.
- `shipping_countries`: the order's ISO 3166-1 shipping country is one of them.
- `prior_returns_min_count` / `prior_returns_min_rate` with
  `prior_returns_days`: the customer's earlier returns whose creation lies in
  `(now - days, now]` number at least the count; the rate is those returns
  divided by the customer's orders placed in the same window, in percent
  (an order-less window has rate 0).

When no rule matches (no rules, or all skipped) the fallback is the
"Standard" behaviour: refund at delivery to the original payment method.

The explanation names the rule and the conditions that made it match, e.g.
`rule 'High value' matched: line value 720.00 USD >= 500.00 USD`; the
snapshot (JSON-ready) records the rule's conditions, the facts and why each
earlier rule was skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from rma.money import format_amount

TRIGGERS = ("first_scan", "delivered", "received", "inspected", "manual")
METHODS = ("original_payment", "store_credit", "exchange")

#: Default high-value thresholds per currency (DESIGN.md section 7), in major units.
HIGH_VALUE_THRESHOLDS: dict[str, Decimal] = {
    "USD": Decimal("500"),
    "EUR": Decimal("500"),
    "GBP": Decimal("400"),
    "CAD": Decimal("650"),
    "AUD": Decimal("750"),
    "CHF": Decimal("450"),
    "CNY": Decimal("3500"),
    "JPY": Decimal("75000"),
    "KRW": Decimal("650000"),
    "ZAR": Decimal("9000"),
    "KWD": Decimal("150"),
}


@dataclass(frozen=True)
class LineFacts:
    """One returned line: the order line's public `line_id`, SKU and tags, the
    customer's reason code, the returned `quantity` and the net `value` of those
    units in the order's currency (Decimal, major units)."""

    line_id: str
    sku: str
    quantity: int
    value: Decimal
    reason: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerHistory:
    """The customer's earlier returns (creation instants, UTC) and orders (placed instants),
    excluding the return being decided."""

    return_times: tuple[datetime, ...] = ()
    order_times: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class RefundFacts:
    """What the engine may look at. `order_total` is Decimal in `currency`; `now` is aware."""

    currency: str
    order_total: Decimal
    risk_level: str
    lines: tuple[LineFacts, ...]
    now: datetime
    order_tags: tuple[str, ...] = ()
    shipping_country: str = ""
    history: CustomerHistory = field(default_factory=CustomerHistory)


@dataclass(frozen=True)
class RuleSpec:
    """A rule as data (see the module docstring for the conditions)."""

    name: str
    trigger: str
    method: str = "original_payment"
    rule_id: int | None = None
    position: int = 0
    store_credit_bonus_percent: Decimal = Decimal("0")
    risk_levels: frozenset[str] = frozenset()
    order_total_min: Mapping[str, Decimal] = field(default_factory=dict)
    order_total_max: Mapping[str, Decimal] = field(default_factory=dict)
    line_value_min: Mapping[str, Decimal] = field(default_factory=dict)
    line_value_max: Mapping[str, Decimal] = field(default_factory=dict)
    reason_codes: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    line_tags: frozenset[str] = frozenset()
    order_tags: frozenset[str] = frozenset()
    shipping_countries: frozenset[str] = frozenset()
    prior_returns_min_count: int | None = None
    prior_returns_min_rate: Decimal | None = None
    prior_returns_days: int = 365

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {self.trigger!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}")

    @property
    def has_value_condition(self) -> bool:
        return bool(
            self.order_total_min
            or self.order_total_max
            or self.line_value_min
            or self.line_value_max
        )

    def value_currencies(self) -> set[str]:
        """Currencies that have a threshold in every value condition this rule sets."""
        maps = [
            m
            for m in (
                self.order_total_min,
                self.order_total_max,
                self.line_value_min,
                self.line_value_max,
            )
            if m
        ]
        if not maps:
            return set()
        common = set(maps[0])
        for m in maps[1:]:
            common &= set(m)
        return common

    def conditions(self) -> dict:
        """The rule's conditions as JSON-ready data (amounts as strings)."""

        def money_map(m: Mapping[str, Decimal]) -> dict[str, str]:
            return {cur: str(amount) for cur, amount in sorted(m.items())}

        data: dict = {}
        if self.risk_levels:
            data["risk_levels"] = sorted(self.risk_levels)
        for name in ("order_total_min", "order_total_max", "line_value_min", "line_value_max"):
            if getattr(self, name):
                data[name] = money_map(getattr(self, name))
        for name in ("reason_codes", "skus", "line_tags", "order_tags", "shipping_countries"):
            if getattr(self, name):
                data[name] = sorted(getattr(self, name))
        if self.prior_returns_min_count is not None:
            data["prior_returns_min_count"] = self.prior_returns_min_count
        if self.prior_returns_min_rate is not None:
            data["prior_returns_min_rate"] = str(self.prior_returns_min_rate)
        if self.prior_returns_min_count is not None or self.prior_returns_min_rate is not None:
            data["prior_returns_days"] = self.prior_returns_days
        return data


@dataclass(frozen=True)
class Decision:
    """The chosen rule (or the fallback when `rule_name` is empty) with its reasons."""

    rule_id: int | None
    rule_name: str
    trigger: str
    method: str
    store_credit_bonus_percent: Decimal
    explanation: str
    snapshot: dict


FALLBACK_TRIGGER = "delivered"
FALLBACK_METHOD = "original_payment"


def _fmt(amount: Decimal, currency: str) -> str:
    return f"{format_amount(amount, currency)} {currency}"


def _lower(values: Sequence[str] | frozenset[str]) -> set[str]:
    return {v.strip().lower() for v in values if v and v.strip()}


def _check_money(
    label: str,
    value: Decimal,
    currency: str,
    minimum: Mapping[str, Decimal],
    maximum: Mapping[str, Decimal],
) -> tuple[bool, list[str]]:
    """(holds, reasons) for an inclusive per-currency range; reasons say why it held or failed."""
    reasons = []
    if minimum:
        if currency not in minimum:
            return False, [f"no {label} threshold for {currency}"]
        if value < minimum[currency]:
            return False, [f"{label} {_fmt(value, currency)} < {_fmt(minimum[currency], currency)}"]
        reasons.append(f"{label} {_fmt(value, currency)} >= {_fmt(minimum[currency], currency)}")
    if maximum:
        if currency not in maximum:
            return False, [f"no {label} threshold for {currency}"]
        if value > maximum[currency]:
            return False, [f"{label} {_fmt(value, currency)} > {_fmt(maximum[currency], currency)}"]
        reasons.append(f"{label} {_fmt(value, currency)} <= {_fmt(maximum[currency], currency)}")
    return True, reasons


def _line_matches(rule: RuleSpec, line: LineFacts, currency: str) -> tuple[bool, list[str]]:
    reasons: list[str] = []
    ok, why = _check_money(
        "line value", line.value, currency, rule.line_value_min, rule.line_value_max
    )
    if not ok:
        return False, why
    reasons += why
    if rule.reason_codes:
        if line.reason.lower() not in _lower(rule.reason_codes):
            return False, [f"reason {line.reason or '(none)'} not in {sorted(rule.reason_codes)}"]
        reasons.append(f"reason {line.reason}")
    if rule.skus:
        if line.sku.strip().lower() not in _lower(rule.skus):
            return False, [f"SKU {line.sku or '(none)'} not listed"]
        reasons.append(f"SKU {line.sku}")
    if rule.line_tags:
        hit = sorted(_lower(rule.line_tags) & _lower(line.tags))
        if not hit:
            return False, [f"line {line.line_id} has none of the tags {sorted(rule.line_tags)}"]
        reasons.append(f"line tag {hit[0]}")
    return True, reasons


def _has_line_condition(rule: RuleSpec) -> bool:
    return bool(
        rule.line_value_min
        or rule.line_value_max
        or rule.reason_codes
        or rule.skus
        or rule.line_tags
    )


def _window(times: tuple[datetime, ...], now: datetime, days: int) -> int:
    start = now - timedelta(days=days)
    return sum(1 for t in times if start < t <= now)


def evaluate_rule(rule: RuleSpec, facts: RefundFacts) -> tuple[bool, list[str]]:
    """Does `rule` match `facts`? Returns (matched, reasons): why it matched, or why not."""
    currency = facts.currency
    reasons: list[str] = []
    if rule.has_value_condition and currency not in rule.value_currencies():
        return False, [f"no threshold for {currency}"]
    if rule.risk_levels:
        level = (facts.risk_level or "").lower()
        if level not in _lower(rule.risk_levels):
            return False, [
                f"risk level {level or 'unknown'} not in {'/'.join(sorted(rule.risk_levels))}"
            ]
        reasons.append(f"risk level {level}")
    ok, why = _check_money(
        "order total", facts.order_total, currency, rule.order_total_min, rule.order_total_max
    )
    if not ok:
        return False, why
    reasons += why
    if rule.order_tags:
        hit = sorted(_lower(rule.order_tags) & _lower(facts.order_tags))
        if not hit:
            return False, [f"order has none of the tags {sorted(rule.order_tags)}"]
        reasons.append(f"order tag {hit[0]}")
    if rule.shipping_countries:
        country = (facts.shipping_country or "").upper()
        allowed = {c.upper() for c in rule.shipping_countries}
        if country not in allowed:
            return False, [f"shipping country {country or '(none)'} not in {sorted(allowed)}"]
        reasons.append(f"shipping country {country}")
    if rule.prior_returns_min_count is not None or rule.prior_returns_min_rate is not None:
        days = rule.prior_returns_days
        count = _window(facts.history.return_times, facts.now, days)
        if rule.prior_returns_min_count is not None:
            if count < rule.prior_returns_min_count:
                return False, [
                    f"{count} earlier returns in {days} days < {rule.prior_returns_min_count}"
                ]
            reasons.append(
                f"{count} earlier returns in {days} days >= {rule.prior_returns_min_count}"
            )
        if rule.prior_returns_min_rate is not None:
            orders = _window(facts.history.order_times, facts.now, days)
            rate = (Decimal(count) * 100 / Decimal(orders)) if orders else Decimal(0)
            shown = rate.quantize(Decimal("0.1"))
            if rate < rule.prior_returns_min_rate:
                return False, [
                    f"return rate {shown}% in {days} days < {rule.prior_returns_min_rate}%"
                ]
            reasons.append(f"return rate {shown}% in {days} days >= {rule.prior_returns_min_rate}%")
    if _has_line_condition(rule):
        failures = []
        for line in facts.lines:
            ok, why = _line_matches(rule, line, currency)
            if ok:
                reasons += why
                break
            failures += why
        else:
            return False, failures[:3] or ["no returned lines"]
    return True, reasons


def _facts_snapshot(facts: RefundFacts) -> dict:
    return {
        "currency": facts.currency,
        "order_total": format_amount(facts.order_total, facts.currency),
        "risk_level": facts.risk_level,
        "order_tags": list(facts.order_tags),
        "shipping_country": facts.shipping_country,
        "lines": [
            {
                "line_id": line.line_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "value": format_amount(line.value, facts.currency),
                "reason": line.reason,
                "tags": list(line.tags),
            }
            for line in facts.lines
        ],
        "earlier_returns": len(facts.history.return_times),
        "now": facts.now.isoformat(),
    }


def choose_rule(rules: Sequence[RuleSpec], facts: RefundFacts) -> Decision:
    """The first rule (by `position`, then the given order) matching `facts`, or the fallback."""
    skipped: list[dict[str, str]] = []
    ordered = sorted(enumerate(rules), key=lambda pair: (pair[1].position, pair[0]))
    for _i, rule in ordered:
        matched, reasons = evaluate_rule(rule, facts)
        if matched:
            because = "; ".join(reasons) if reasons else "no conditions (everything else)"
            return Decision(
                rule_id=rule.rule_id,
                rule_name=rule.name,
                trigger=rule.trigger,
                method=rule.method,
                store_credit_bonus_percent=rule.store_credit_bonus_percent,
                explanation=f"rule '{rule.name}' matched: {because}",
                snapshot={
                    "rule": {
                        "id": rule.rule_id,
                        "name": rule.name,
                        "position": rule.position,
                        "trigger": rule.trigger,
                        "method": rule.method,
                        "store_credit_bonus_percent": str(rule.store_credit_bonus_percent),
                        "conditions": rule.conditions(),
                    },
                    "matched_because": reasons,
                    "skipped": skipped,
                    "facts": _facts_snapshot(facts),
                },
            )
        skipped.append({"rule": rule.name, "because": "; ".join(reasons)})
    return Decision(
        rule_id=None,
        rule_name="",
        trigger=FALLBACK_TRIGGER,
        method=FALLBACK_METHOD,
        store_credit_bonus_percent=Decimal("0"),
        explanation="no rule matched: refund at delivery to the original payment method",
        snapshot={
            "rule": None,
            "matched_because": [],
            "skipped": skipped,
            "facts": _facts_snapshot(facts),
        },
    )


def default_rules() -> list[RuleSpec]:
    """The rules every new tenant gets (issue 6; DESIGN.md section 7 thresholds), in order."""
    return [
        RuleSpec(
            name="High risk", position=10, risk_levels=frozenset({"high"}), trigger="inspected"
        ),
        RuleSpec(
            name="High value",
            position=20,
            line_value_min=dict(HIGH_VALUE_THRESHOLDS),
            trigger="inspected",
        ),
        RuleSpec(
            name="Low risk", position=30, risk_levels=frozenset({"low"}), trigger="first_scan"
        ),
        RuleSpec(name="Standard", position=40, trigger="delivered"),
    ]
