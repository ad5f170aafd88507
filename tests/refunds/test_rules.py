"""The pure rule engine (refunds/rules.py): every default rule and merchant rules, exact
decisions and explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from refunds.rules import (
    HIGH_VALUE_THRESHOLDS,
    CustomerHistory,
    LineFacts,
    RefundFacts,
    RuleSpec,
    choose_rule,
    default_rules,
    evaluate_rule,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D = Decimal


def facts(
    *,
    currency="USD",
    total="108.00",
    risk="medium",
    lines=None,
    tags=(),
    country="US",
    history=None,
):
    return RefundFacts(
        currency=currency,
        order_total=D(total),
        risk_level=risk,
        lines=tuple(lines or [LineFacts("li_1", "SKU-1", 1, D("50.00"), "too_small")]),
        now=NOW,
        order_tags=tuple(tags),
        shipping_country=country,
        history=history or CustomerHistory(),
    )


def line(value, currency_sku="SKU-1", qty=1, reason="too_small", tags=(), line_id="li_1"):
    return LineFacts(line_id, currency_sku, qty, D(value), reason, tuple(tags))


# --- default rules -------------------------------------------------------
def test_default_rules_are_in_the_issue_order():
    assert [(r.name, r.trigger) for r in default_rules()] == [
        ("High risk", "inspected"),
        ("High value", "inspected"),
        ("Low risk", "first_scan"),
        ("Standard", "delivered"),
    ]


def test_default_high_risk_wins_first():
    d = choose_rule(default_rules(), facts(risk="high", lines=[line("720.00")]))
    assert (d.rule_name, d.trigger, d.method) == ("High risk", "inspected", "original_payment")
    assert d.explanation == "rule 'High risk' matched: risk level high"


def test_default_high_value_explanation_names_the_line_value():
    d = choose_rule(default_rules(), facts(risk="low", lines=[line("720.00")]))
    assert d.rule_name == "High value"
    assert d.trigger == "inspected"
    assert d.explanation == "rule 'High value' matched: line value 720.00 USD >= 500.00 USD"
    assert d.snapshot["skipped"] == [{"rule": "High risk", "because": "risk level low not in high"}]
    assert d.snapshot["rule"]["conditions"]["line_value_min"]["USD"] == "500"


def test_default_high_value_threshold_is_inclusive():
    assert choose_rule(default_rules(), facts(lines=[line("500.00")])).rule_name == "High value"
    assert choose_rule(default_rules(), facts(lines=[line("499.99")])).rule_name == "Standard"


def test_default_low_risk_refunds_at_first_scan():
    d = choose_rule(default_rules(), facts(risk="low", lines=[line("120.00")]))
    assert (d.rule_name, d.trigger) == ("Low risk", "first_scan")
    assert d.explanation == "rule 'Low risk' matched: risk level low"


@pytest.mark.parametrize("risk", ["medium", "", "unknown"])
def test_default_standard_for_everything_else(risk):
    d = choose_rule(default_rules(), facts(risk=risk, lines=[line("120.00")]))
    assert (d.rule_name, d.trigger) == ("Standard", "delivered")
    assert d.explanation == "rule 'Standard' matched: no conditions (everything else)"


@pytest.mark.parametrize(
    ("currency", "below", "at"),
    [
        ("USD", "499.99", "500.00"),
        ("EUR", "499.99", "500.00"),
        ("GBP", "399.99", "400.00"),
        ("CAD", "649.99", "650.00"),
        ("AUD", "749.99", "750.00"),
        ("CHF", "449.99", "450.00"),
        ("CNY", "3499.99", "3500.00"),
        ("JPY", "74999", "75000"),
        ("KRW", "649999", "650000"),
        ("ZAR", "8999.99", "9000.00"),
        ("KWD", "149.999", "150.000"),
    ],
)
def test_default_high_value_threshold_per_currency(currency, below, at):
    assert set(HIGH_VALUE_THRESHOLDS) == {
        "USD",
        "EUR",
        "GBP",
        "CAD",
        "AUD",
        "CHF",
        "CNY",
        "JPY",
        "KRW",
        "ZAR",
        "KWD",
    }
    low = choose_rule(default_rules(), facts(currency=currency, lines=[line(below)]))
    high = choose_rule(default_rules(), facts(currency=currency, lines=[line(at)]))
    assert low.rule_name == "Standard"
    assert high.rule_name == "High value"


def test_high_value_explanations_use_the_currency_exponent():
    jpy = choose_rule(default_rules(), facts(currency="JPY", lines=[line("98990")]))
    assert jpy.explanation == "rule 'High value' matched: line value 98990 JPY >= 75000 JPY"
    kwd = choose_rule(default_rules(), facts(currency="KWD", lines=[line("151.5")]))
    assert kwd.explanation == "rule 'High value' matched: line value 151.500 KWD >= 150.000 KWD"


def test_currency_without_threshold_never_matches_a_value_rule():
    d = choose_rule(default_rules(), facts(currency="SEK", lines=[line("99999.00")]))
    assert d.rule_name == "Standard"
    assert {"rule": "High value", "because": "no threshold for SEK"} in d.snapshot["skipped"]


def test_high_value_needs_one_line_not_the_sum():
    d = choose_rule(
        default_rules(),
        facts(lines=[line("300.00", line_id="a"), line("300.00", line_id="b")]),
    )
    assert d.rule_name == "Standard"


def test_no_rules_falls_back_to_delivery():
    d = choose_rule([], facts())
    assert (d.rule_id, d.rule_name, d.trigger, d.method) == (
        None,
        "",
        "delivered",
        "original_payment",
    )
    assert d.explanation.startswith("no rule matched")


# --- merchant rules -------------------------------------------------------
def test_position_orders_rules_not_list_order():
    rules = [
        RuleSpec(name="B", position=20, trigger="delivered"),
        RuleSpec(name="A", position=10, trigger="received"),
    ]
    assert choose_rule(rules, facts()).rule_name == "A"


def test_order_total_range_per_currency_inclusive():
    rule = RuleSpec(
        name="Mid orders",
        trigger="received",
        order_total_min={"USD": D("100"), "EUR": D("90")},
        order_total_max={"USD": D("200"), "EUR": D("180")},
    )
    assert evaluate_rule(rule, facts(total="100.00"))[0]
    assert evaluate_rule(rule, facts(total="200.00"))[0]
    assert not evaluate_rule(rule, facts(total="200.01"))[0]
    assert not evaluate_rule(rule, facts(total="99.99"))[0]
    assert evaluate_rule(rule, facts(currency="EUR", total="95.00"))[0]
    ok, why = evaluate_rule(rule, facts(currency="GBP", total="150.00"))
    assert not ok and why == ["no threshold for GBP"]
    _ok, why = evaluate_rule(rule, facts(total="150.00"))
    assert why == ["order total 150.00 USD >= 100.00 USD", "order total 150.00 USD <= 200.00 USD"]


def test_value_rule_with_partial_currency_maps_needs_every_map():
    rule = RuleSpec(
        name="x",
        trigger="received",
        order_total_min={"USD": D("1"), "EUR": D("1")},
        line_value_max={"USD": D("100")},
    )
    assert not evaluate_rule(rule, facts(currency="EUR", total="50", lines=[line("10")]))[0]
    assert evaluate_rule(rule, facts(currency="USD", total="50", lines=[line("10")]))[0]


def test_reason_codes_and_store_credit_bonus():
    rule = RuleSpec(
        name="Changed mind gets credit",
        trigger="delivered",
        method="store_credit",
        store_credit_bonus_percent=D("10"),
        reason_codes=frozenset({"changed_mind"}),
    )
    d = choose_rule([rule], facts(lines=[line("40.00", reason="changed_mind")]))
    assert (d.rule_name, d.method, d.store_credit_bonus_percent) == (
        "Changed mind gets credit",
        "store_credit",
        D("10"),
    )
    assert d.explanation == "rule 'Changed mind gets credit' matched: reason changed_mind"
    assert choose_rule([rule], facts(lines=[line("40.00", reason="damaged")])).rule_name == ""


def test_line_conditions_must_hold_on_the_same_line():
    rule = RuleSpec(
        name="Expensive damaged",
        trigger="inspected",
        reason_codes=frozenset({"damaged"}),
        line_value_min={"USD": D("200")},
    )
    split = facts(
        lines=[
            line("300.00", reason="too_small", line_id="a"),
            line("20.00", reason="damaged", line_id="b"),
        ]
    )
    same = facts(
        lines=[
            line("20.00", reason="too_small", line_id="a"),
            line("300.00", reason="damaged", line_id="b"),
        ]
    )
    assert not evaluate_rule(rule, split)[0]
    d = choose_rule([rule], same)
    assert (
        d.explanation
        == "rule 'Expensive damaged' matched: line value 300.00 USD >= 200.00 USD; reason damaged"
    )


def test_sku_and_line_tags_case_insensitive():
    by_sku = RuleSpec(name="Final check", trigger="inspected", skus=frozenset({"cam-01"}))
    by_tag = RuleSpec(name="Electronics", trigger="inspected", line_tags=frozenset({"Electronics"}))
    f = facts(lines=[line("80.00", currency_sku="CAM-01", tags=("electronics", "sale"))])
    assert choose_rule([by_sku], f).explanation == "rule 'Final check' matched: SKU CAM-01"
    assert (
        choose_rule([by_tag], f).explanation == "rule 'Electronics' matched: line tag electronics"
    )
    assert not evaluate_rule(by_sku, facts())[0]


def test_order_tags_and_shipping_country():
    vip = RuleSpec(name="VIP", trigger="first_scan", order_tags=frozenset({"vip"}))
    abroad = RuleSpec(name="Abroad", trigger="received", shipping_countries=frozenset({"ca", "MX"}))
    assert (
        choose_rule([vip], facts(tags=("VIP", "wholesale"))).explanation
        == "rule 'VIP' matched: order tag vip"
    )
    assert not evaluate_rule(vip, facts(tags=()))[0]
    assert (
        choose_rule([abroad], facts(country="CA")).explanation
        == "rule 'Abroad' matched: shipping country CA"
    )
    assert not evaluate_rule(abroad, facts(country="US"))[0]
    assert not evaluate_rule(abroad, facts(country=""))[0]


def test_prior_returns_count_in_window():
    serial = RuleSpec(
        name="Serial returner",
        trigger="manual",
        prior_returns_min_count=3,
        prior_returns_days=90,
    )
    recent = tuple(NOW - timedelta(days=d) for d in (1, 30, 89))
    old = (NOW - timedelta(days=91),)
    d = choose_rule([serial], facts(history=CustomerHistory(return_times=recent + old)))
    assert (d.rule_name, d.trigger) == ("Serial returner", "manual")
    assert d.explanation == "rule 'Serial returner' matched: 3 earlier returns in 90 days >= 3"
    ok, why = evaluate_rule(serial, facts(history=CustomerHistory(return_times=recent[:2] + old)))
    assert not ok and why == ["2 earlier returns in 90 days < 3"]


def test_prior_returns_rate_in_window():
    rule = RuleSpec(
        name="High rate", trigger="inspected", prior_returns_min_rate=D("50"), prior_returns_days=30
    )
    orders = tuple(NOW - timedelta(days=d) for d in (2, 5, 10, 20))
    two = CustomerHistory(
        return_times=(NOW - timedelta(days=3), NOW - timedelta(days=4)), order_times=orders
    )
    one = CustomerHistory(return_times=(NOW - timedelta(days=3),), order_times=orders)
    assert choose_rule([rule], facts(history=two)).explanation == (
        "rule 'High rate' matched: return rate 50.0% in 30 days >= 50%"
    )
    assert not evaluate_rule(rule, facts(history=one))[0]
    assert not evaluate_rule(rule, facts(history=CustomerHistory()))[0]


def test_all_conditions_combine_with_and():
    rule = RuleSpec(
        name="Combo",
        trigger="received",
        risk_levels=frozenset({"medium", "high"}),
        order_tags=frozenset({"b2b"}),
        shipping_countries=frozenset({"US"}),
    )
    assert evaluate_rule(rule, facts(risk="medium", tags=("b2b",)))[0]
    assert not evaluate_rule(rule, facts(risk="low", tags=("b2b",)))[0]
    assert not evaluate_rule(rule, facts(risk="medium", tags=()))[0]


def test_merchant_rules_before_defaults():
    rules = [
        RuleSpec(
            name="Wholesale manual",
            position=5,
            trigger="manual",
            order_tags=frozenset({"wholesale"}),
        ),
        *default_rules(),
    ]
    assert choose_rule(rules, facts(risk="low", tags=("wholesale",))).trigger == "manual"
    assert choose_rule(rules, facts(risk="low")).rule_name == "Low risk"


def test_bad_trigger_or_method_is_refused():
    with pytest.raises(ValueError):
        RuleSpec(name="x", trigger="shipped")
    with pytest.raises(ValueError):
        RuleSpec(name="x", trigger="delivered", method="cash")


def test_snapshot_is_json_ready():
    import json

    d = choose_rule(default_rules(), facts(risk="high", lines=[line("720.00")]))
    json.dumps(d.snapshot)
    assert d.snapshot["facts"]["lines"][0]["value"] == "720.00"
