"""Refund admin: rules (order, history, per-currency warning), refunds and their actions by
role, and scoping to the user's tenant."""

from __future__ import annotations

import pytest

from refunds.models import RefundDecisionChange, RefundRule
from tests.refunds.conftest import make_order, make_return, refund_of

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"


@pytest.fixture
def returns(tenant, other_tenant):
    a = make_return(make_order(tenant, risk="medium"), [1])
    b = make_return(make_order(other_tenant, currency="GBP", risk="medium"), [1])
    return a, b


@pytest.mark.parametrize(
    "url",
    ["/admin/refunds/refund/", "/admin/refunds/refundrule/", "/admin/refunds/refundsettings/"],
)
@pytest.mark.parametrize("host", [A_HOST, "localhost"])
def test_lists_show_only_own_tenant(client, tenant, tenant_admin, returns, url, host):
    client.force_login(tenant_admin)
    response = client.get(url, HTTP_HOST=host)
    assert response.status_code == 200
    assert {obj.tenant_id for obj in response.context["cl"].result_list} == {tenant.pk}


def test_rule_list_is_ordered_by_position(client, tenant_admin, returns):
    client.force_login(tenant_admin)
    names = [
        r.name
        for r in client.get("/admin/refunds/refundrule/", HTTP_HOST=A_HOST)
        .context["cl"]
        .result_list
    ]
    assert names == ["High risk", "High value", "Low risk", "Standard"]


def test_refund_change_page_shows_explanation_and_transactions(client, tenant_viewer, returns):
    a, b = returns
    client.force_login(tenant_viewer)
    page = client.get(f"/admin/refunds/refund/{refund_of(a).pk}/change/", HTTP_HOST=A_HOST)
    assert page.status_code == 200
    assert "no conditions (everything else)" in page.content.decode()
    assert client.get(
        f"/admin/refunds/refund/{refund_of(b).pk}/change/", HTTP_HOST=A_HOST
    ).status_code in (302, 404)


def test_rule_save_warns_about_currencies_without_threshold(client, tenant, tenant_admin, returns):
    make_order(tenant, currency="SEK")
    client.force_login(tenant_admin)
    data = {
        "name": "Big orders",
        "position": "5",
        "is_active": "on",
        "trigger": "inspected",
        "method": "original_payment",
        "store_credit_bonus_percent": "0",
        "risk_levels": "[]",
        "order_total_min": '{"usd": "1000"}',
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
    response = client.post("/admin/refunds/refundrule/add/", data, HTTP_HOST=A_HOST, follow=True)
    assert response.status_code == 200
    rule = RefundRule.objects.get(tenant=tenant, name="Big orders")
    assert rule.order_total_min == {"USD": "1000"}
    warnings = [str(m) for m in response.context["messages"]]
    assert any("without a threshold for SEK" in w for w in warnings)
    assert rule.history.count() == 1


def test_rule_form_refuses_bad_json_shapes(client, tenant_admin, returns):
    client.force_login(tenant_admin)
    data = {
        "name": "Bad",
        "position": "5",
        "trigger": "inspected",
        "method": "original_payment",
        "store_credit_bonus_percent": "0",
        "risk_levels": '"high"',
        "order_total_min": '{"USD": "lots"}',
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
    response = client.post("/admin/refunds/refundrule/add/", data, HTTP_HOST=A_HOST)
    assert response.status_code == 200  # form redisplayed
    assert not RefundRule.objects.filter(name="Bad").exists()


@pytest.mark.parametrize(
    ("role", "allowed"), [("viewer", False), ("agent", False), ("admin", True)]
)
def test_approve_action_needs_admin(
    client, tenant, returns, role, allowed, django_capture_on_commit_callbacks
):
    from tests.factories import MembershipFactory, UserFactory

    a, _ = returns
    user = MembershipFactory(tenant=tenant, user=UserFactory(username=f"u-{role}"), role=role).user
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            "/admin/refunds/refund/",
            {"action": "approve", "_selected_action": [refund_of(a).pk]},
            HTTP_HOST=A_HOST,
        )
    assert (refund_of(a).state == "approved") is allowed
    if allowed:
        assert refund_of(a).amount is not None
        assert refund_of(a).state_changes.get(to_state="approved").actor == "u-admin"


def test_hold_action_for_agents(client, tenant_agent, returns):
    a, _ = returns
    client.force_login(tenant_agent)
    client.post(
        "/admin/refunds/refund/",
        {"action": "hold", "_selected_action": [refund_of(a).pk]},
        HTTP_HOST=A_HOST,
    )
    assert refund_of(a).state == "held"


def test_reevaluate_action_is_recorded(client, tenant, tenant_admin, returns):
    a, _ = returns
    RefundRule.objects.filter(tenant=tenant, name="Standard").update(trigger="received")
    client.force_login(tenant_admin)
    client.post(
        "/admin/refunds/refund/",
        {"action": "reevaluate", "_selected_action": [refund_of(a).pk]},
        HTTP_HOST=A_HOST,
    )
    assert refund_of(a).trigger == "received"
    assert RefundDecisionChange.objects.get().actor == "acme-admin"


def test_actions_never_touch_another_tenants_refund(client, tenant_admin, returns):
    _a, b = returns
    client.force_login(tenant_admin)
    client.post(
        "/admin/refunds/refund/",
        {"action": "hold", "_selected_action": [refund_of(b).pk]},
        HTTP_HOST="localhost",
    )
    assert refund_of(b).state == "pending"


def test_gateway_secrets_are_write_only_and_encrypted(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(
        "/admin/refunds/gatewayaccount/add/",
        {
            "provider": "stripe",
            "is_active": "on",
            "shop_domain": "",
            "api_version": "2025-01",
            "secret_key": "sk_live_secret",
            "webhook_secret": "whsec_abc",
            "access_token": "",
        },
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302
    from refunds.models import GatewayAccount
    from returns_portal.tenancy.crypto import decrypt, decrypt_json

    account = GatewayAccount.objects.get(tenant=tenant)
    assert "sk_live_secret" not in account.credentials_encrypted
    assert decrypt_json(account.credentials_encrypted) == {"secret_key": "sk_live_secret"}
    assert decrypt(account.webhook_secret_encrypted) == "whsec_abc"
    page = client.get(
        f"/admin/refunds/gatewayaccount/{account.pk}/change/", HTTP_HOST=A_HOST
    ).content.decode()
    assert "sk_live_secret" not in page and "whsec_abc" not in page
