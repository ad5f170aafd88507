"""Per-currency money maps in refund settings and rules (DESIGN.md section 7): the model
refuses what is not an amount of a known currency, so the admin, services and commands
refuse alike; a bad map stored before that holds the refund instead of crashing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from refunds import services
from refunds.models import RefundRule, RefundSettings
from rma.money import MONEY_MAX, MoneyError, amount_check, money_map_read
from rma.warehouse import checkin_record
from tests.refunds.conftest import T0, make_order, make_return, refund_of

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"


# --- rma.money: one reading of a configured amount ---------------------------------------
@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("5.00", "USD", Decimal("5.00")),
        ("5.5", "usd", Decimal("5.5")),
        (700, "JPY", Decimal("700")),
        ("10.500", "USD", Decimal("10.500")),  # two decimals, written with three
        ("1.125", "KWD", Decimal("1.125")),
        ("0", "EUR", Decimal("0")),
        (str(MONEY_MAX), "KWD", MONEY_MAX),
    ],
)
def test_amount_check_accepts(value, currency, expected):
    assert amount_check(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "code"),
    [
        ("abc", "USD", "invalid"),
        ("", "USD", "invalid"),
        (True, "USD", "invalid"),
        ({"a": 1}, "USD", "invalid"),
        (float("inf"), "USD", "not_finite"),
        ("NaN", "USD", "not_finite"),
        ("-1", "USD", "negative"),
        ("1e15", "USD", "too_large"),
        ("10.5", "JPY", "too_precise"),
        ("1.001", "USD", "too_precise"),
        ("10", "XYZ", "unknown_currency"),
    ],
)
def test_amount_check_refuses(value, currency, code):
    with pytest.raises(MoneyError) as info:
        amount_check(value, currency)
    assert info.value.code == code


def test_money_map_read_upper_cases_and_refuses_non_maps():
    assert money_map_read({"usd": "5", "JPY": 700}) == {"USD": Decimal("5"), "JPY": Decimal(700)}
    assert money_map_read(None) == {} and money_map_read({}) == {}
    with pytest.raises(MoneyError) as info:
        money_map_read(["USD", "5"])
    assert info.value.code == "not_a_map"


# --- the model (what the admin, API and commands share) -----------------------------------
def test_settings_full_clean_refuses_bad_fee_and_bank_days(tenant):
    settings_ = RefundSettings.objects.get(tenant=tenant)
    settings_.restocking_fee_fixed = {"JPY": "10.5"}
    settings_.bank_days_original_min, settings_.bank_days_original_max = 5, 1
    with pytest.raises(ValidationError) as info:
        settings_.full_clean()
    assert info.value.message_dict == {
        "restocking_fee_fixed": ["JPY: at most 0 decimals."],
        "bank_days_original_max": ["The maximum is below the minimum."],
    }


def test_rule_full_clean_normalizes_a_good_map(tenant):
    rule = RefundRule(
        tenant=tenant, name="Big", trigger="inspected", order_total_min={"usd": 1000, "jpy": "9"}
    )
    rule.full_clean()
    assert rule.order_total_min == {"USD": "1000", "JPY": "9"}


def test_rule_full_clean_refuses_min_above_max(tenant):
    rule = RefundRule(
        tenant=tenant,
        name="Odd",
        trigger="inspected",
        line_value_min={"USD": "500"},
        line_value_max={"USD": "100", "EUR": "100"},
    )
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert info.value.message_dict == {"line_value_max": ["USD: the maximum is below the minimum."]}


# --- the refund settings admin -----------------------------------------------------------
def settings_form(**overrides):
    data = {
        "refund_taxes": "on",
        "restocking_fee_percent": "0",
        "restocking_fee_fixed": "{}",
        "bank_days_original_min": "1",
        "bank_days_original_max": "3",
        "bank_days_store_credit_min": "0",
        "bank_days_store_credit_max": "0",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("restocking_fee_fixed", '{"USD": "abc"}', "USD: abc is not an amount."),
        ("restocking_fee_fixed", '{"JPY": "10.5"}', "JPY: at most 0 decimals."),
        ("restocking_fee_fixed", '{"USD": 1e400}', "USD: inf is not an amount."),
        ("restocking_fee_fixed", '{"XYZ": "10"}', "XYZ is not an ISO 4217 currency code."),
        ("restocking_fee_fixed", '{"USD": "-5"}', "USD: an amount cannot be negative."),
        ("restocking_fee_fixed", '{"USD": "1e20"}', "USD: 1e20 is too large."),
        ("restocking_fee_fixed", '["USD", 5]', "Use an object like {&quot;USD&quot;: &quot;5.00"),
        ("bank_days_original_max", "1", "The maximum is below the minimum."),
        ("bank_days_original_max", "31", "less than or equal to 30"),
    ],
)
def test_settings_admin_refuses_bad_values(client, tenant, tenant_admin, field, value, message):
    settings_ = RefundSettings.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    overrides = {field: value}
    if field == "bank_days_original_max" and value == "1":
        overrides["bank_days_original_min"] = "5"
    response = client.post(
        f"/admin/refunds/refundsettings/{settings_.pk}/change/",
        settings_form(**overrides),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    settings_.refresh_from_db()
    assert (settings_.restocking_fee_fixed, settings_.bank_days_original_max) == ({}, 3)


def test_settings_admin_saves_a_good_fee_normalized(client, tenant, tenant_admin):
    settings_ = RefundSettings.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/refunds/refundsettings/{settings_.pk}/change/",
        settings_form(restocking_fee_fixed='{"usd": "5.00", "JPY": 700}'),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302
    settings_.refresh_from_db()
    assert settings_.restocking_fee_fixed == {"USD": "5.00", "JPY": "700"}


def test_settings_admin_cannot_reach_another_tenants_settings(client, tenant_admin, other_tenant):
    theirs = RefundSettings.objects.get(tenant=other_tenant)
    client.force_login(tenant_admin)
    url = f"/admin/refunds/refundsettings/{theirs.pk}/change/"
    for host in (A_HOST, "localhost"):
        assert client.get(url, HTTP_HOST=host).status_code == 302  # "does not exist" redirect
        client.post(url, settings_form(restocking_fee_fixed='{"GBP": "9"}'), HTTP_HOST=host)
    theirs.refresh_from_db()
    assert theirs.restocking_fee_fixed == {}


# --- the refund rule admin ---------------------------------------------------------------
def rule_form(**overrides):
    data = {
        "name": "Big orders",
        "position": "5",
        "is_active": "on",
        "trigger": "inspected",
        "method": "original_payment",
        "store_credit_bonus_percent": "0",
        "risk_levels": "[]",
        "order_total_min": "{}",
        "order_total_max": "{}",
        "order_tags": "[]",
        "shipping_countries": "[]",
        "line_value_min": "{}",
        "line_value_max": "{}",
        "reason_codes": "[]",
        "skus": "[]",
        "line_tags": "[]",
        "prior_returns_days": "365",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"order_total_min": '{"USD": 1e400}'}, "USD: inf is not an amount."),
        ({"order_total_min": '{"XYZ": "10"}'}, "XYZ is not an ISO 4217 currency code."),
        ({"line_value_min": '{"EUR": "-1"}'}, "EUR: an amount cannot be negative."),
        (
            {"order_total_min": '{"USD": "900"}', "order_total_max": '{"USD": "100"}'},
            "USD: the maximum is below the minimum.",
        ),
        ({"prior_returns_days": "100000"}, "less than or equal to 3650"),
    ],
)
def test_rule_admin_refuses_bad_values(client, tenant, tenant_admin, overrides, message):
    client.force_login(tenant_admin)
    response = client.post(
        "/admin/refunds/refundrule/add/", rule_form(**overrides), HTTP_HOST=A_HOST
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RefundRule.objects.filter(name="Big orders").exists()


# --- bad maps stored before the checks: a hold reason, never a crash or a 500 -------------
def test_bad_stored_fee_holds_the_refund_at_checkin(tenant, worker):
    RefundSettings.objects.filter(tenant=tenant).update(restocking_fee_fixed={"USD": "abc"})
    rr = make_return(make_order(tenant, risk="medium"), [1])
    worker.run(
        checkin_record,
        tenant=tenant,
        return_request=rr,
        condition="intact",
        now=T0,
        actor="acme-agent",
        channel="scanner",
    )
    worker.drain(now=T0)  # the milestone dispatch runs to the end
    refund = refund_of(rr)
    assert (refund.state, refund.hold_reason) == ("held", services.HOLD_SETTINGS_REASON)
    change = refund.state_changes.get(to_state="held")
    assert change.reason == (
        "held: refund settings restocking_fee_fixed: USD 'abc' is not an amount"
    )


def test_approve_and_reevaluate_actions_report_bad_stored_maps(client, tenant, tenant_admin):
    rr = make_return(make_order(tenant, risk="medium"), [1])
    RefundSettings.objects.filter(tenant=tenant).update(restocking_fee_fixed={"USD": "abc"})
    RefundRule.objects.filter(tenant=tenant, name="High value").update(
        line_value_min={"USD": "Infinity"}
    )
    client.force_login(tenant_admin)
    pk = refund_of(rr).pk
    approve = client.post(
        "/admin/refunds/refund/",
        {"action": "approve", "_selected_action": [pk]},
        HTTP_HOST=A_HOST,
        follow=True,
    )
    assert approve.status_code == 200
    messages = [str(m) for m in approve.context["messages"]]
    assert messages == [
        f"{rr.rma_number}: refund settings restocking_fee_fixed: USD 'abc' is not an amount"
    ]
    again = client.post(
        "/admin/refunds/refund/",
        {"action": "reevaluate", "_selected_action": [pk]},
        HTTP_HOST=A_HOST,
        follow=True,
    )
    assert [str(m) for m in again.context["messages"]] == [
        f"{rr.rma_number}: rule 'High value' line_value_min: USD 'Infinity' is not a finite amount"
    ]
    assert refund_of(rr).state == "pending"
    rules = client.get("/admin/refunds/refundrule/", HTTP_HOST=A_HOST)
    assert rules.status_code == 200
    assert (
        "line_value_min: USD &#x27;Infinity&#x27; is not a finite amount" in rules.content.decode()
    )


def test_bad_stored_rule_makes_new_refunds_wait_for_manual_approval(tenant):
    RefundRule.objects.filter(tenant=tenant, name="High value").update(
        line_value_min={"USD": "lots"}
    )
    rr = make_return(make_order(tenant, risk="medium"), [1])
    refund = refund_of(rr)
    assert (refund.state, refund.trigger, refund.hold_reason) == (
        "held",
        "manual",
        services.HOLD_MANUAL_REASON,
    )
    assert refund.explanation == (
        "manual approval: rule 'High value' line_value_min: USD 'lots' is not an amount"
    )
