"""Every registered admin's add page, loaded and posted as a superuser on the base domain
(which picks the tenant in the form) and on a tenant host (which implies it): never a 500,
the row lands in the right tenant, and a tenant admin on the base domain can pick only
their own tenant (DESIGN.md section 3)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from refunds.models import GatewayAccount, RefundRule
from returns_portal.tenancy.models import ApiKey, Membership
from rma.models import Customer, ReturnCentre, ReturnReason
from tests.refunds.conftest import TEST_FERNET_KEY
from tracking.models import CarrierAccount, StatusOverride

pytestmark = pytest.mark.django_db
User = get_user_model()
A_HOST, BASE = "acme.localhost", "localhost"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FIELD_ENCRYPTION_KEYS = [TEST_FERNET_KEY]  # gateway and carrier secrets


def _datetime(prefix: str) -> dict[str, str]:
    return {f"{prefix}_0": "2026-11-30", f"{prefix}_1": "12:00:00"}


#: Admins that add rows, with a valid payload (without the tenant) and the row's lookup.
ADDABLE = {
    "auth.user": (
        {
            "username": "new-user",
            "usable_password": "true",
            "password1": "a-Long-pass-9412",
            "password2": "a-Long-pass-9412",
        },
        lambda: User.objects.filter(username="new-user"),
    ),
    "auth.group": ({"name": "auditors"}, None),
    "tenancy.joblease": (
        {"name": "poll", "holder": "me", **_datetime("expires_at"), **_datetime("acquired_at")},
        None,
    ),
    "tenancy.tenant": (
        {
            "slug": "gamma",
            "name": "Gamma",
            "country": "DE",
            "subdivision": "BY",
            "time_zone": "Europe/Berlin",
            "currency": "EUR",
            "brand_color": "#112233",
            "is_active": "on",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "0",
            "domains-0-domain": "returns.gamma.example",
            "domains-0-is_primary": "on",
        },
        None,
    ),
    "tenancy.membership": (
        {"email": "helper@example.com", "role": "agent"},
        lambda: Membership.objects.filter(user__email="helper@example.com"),
    ),
    "tenancy.apikey": ({"name": "ci"}, lambda: ApiKey.objects.filter(name="ci")),
    "rma.customer": (
        {"email_normalized": "c@example.com", "tags": "[]"},
        lambda: Customer.objects.filter(email_normalized="c@example.com"),
    ),
    "rma.returncentre": (
        {"name": "Depot", "country": "US", "subdivision": "CA", "time_zone": "UTC"},
        lambda: ReturnCentre.objects.filter(name="Depot"),
    ),
    "rma.returnreason": (
        {"code": "smells", "label": "Smells", "active": "on", "position": "5"},
        lambda: ReturnReason.objects.filter(code="smells"),
    ),
    "tracking.carrieraccount": (
        {"carrier": "ups", "name": "UPS", "is_active": "on", "credentials_json": ""},
        lambda: CarrierAccount.objects.filter(name="UPS"),
    ),
    "tracking.statusoverride": (
        {"carrier": "ups", "raw_code": "ZZ", "status": "in_transit"},
        lambda: StatusOverride.objects.filter(raw_code="ZZ"),
    ),
    "refunds.refundrule": (
        {
            "name": "Big orders",
            "position": "5",
            "trigger": "inspected",
            "method": "original_payment",
            "store_credit_bonus_percent": "0",
            **dict.fromkeys(
                ["order_total_min", "order_total_max", "line_value_min", "line_value_max"], "{}"
            ),
            **dict.fromkeys(
                ["risk_levels", "order_tags", "shipping_countries", "reason_codes", "skus"], "[]"
            ),
            "line_tags": "[]",
            "prior_returns_days": "365",
        },
        lambda: RefundRule.objects.filter(name="Big orders"),
    ),
    "refunds.gatewayaccount": (
        {"provider": "stripe", "is_active": "on", "api_version": "2025-01", "secret_key": "sk_x"},
        lambda: GatewayAccount.objects.filter(provider="stripe"),
    ),
}


def registered() -> list[str]:
    return sorted(f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry)


def add_url(label: str) -> str:
    app, model = label.split(".")
    return f"/admin/{app}/{model}/add/"


@pytest.fixture
def superuser(client, tenant, other_tenant):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return user


@pytest.mark.parametrize("label", registered())
@pytest.mark.parametrize("host", [BASE, A_HOST])
def test_every_add_page_loads_and_saves(client, superuser, tenant, other_tenant, label, host):
    url = add_url(label)
    page = client.get(url, HTTP_HOST=host)
    if label not in ADDABLE:
        # Rows written by services, or one per tenant made by provisioning. A new admin
        # that adds rows fails here until ADDABLE has its payload.
        assert page.status_code == 403
        assert client.post(url, {}, HTTP_HOST=host).status_code == 403
        return
    assert page.status_code == 200
    form = page.context["adminform"].form
    model = admin.site._registry[page.context["opts"].model].model
    owned = label not in ("auth.user", "auth.group", "tenancy.joblease", "tenancy.tenant")
    assert ("tenant" in form.fields) is (owned and host == BASE)
    payload, rows = ADDABLE[label]
    data = dict(payload)
    if owned and host == BASE:
        data["tenant"] = str(other_tenant.pk)  # not the first choice: the pick is used
    response = client.post(url, data, HTTP_HOST=host)
    assert response.status_code == 302, response.context["adminform"].form.errors
    if owned:
        expected = other_tenant if host == BASE else tenant
        assert list(rows().values_list("tenant_id", flat=True)) == [expected.pk]
    else:
        assert model.objects.count() >= 1


@pytest.mark.parametrize("label", ["refunds.refundrule", "refunds.gatewayaccount", "rma.customer"])
def test_base_domain_add_offers_only_the_users_tenants(
    client, tenant, other_tenant, tenant_admin, label
):
    client.force_login(tenant_admin)
    page = client.get(add_url(label), HTTP_HOST=BASE)
    choices = [value for value, _text in page.context["adminform"].form.fields["tenant"].choices]
    assert [str(v) for v in choices if v] == [str(tenant.pk)]
    payload, rows = ADDABLE[label]
    response = client.post(
        add_url(label), {**payload, "tenant": str(other_tenant.pk)}, HTTP_HOST=BASE
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not rows().exists()


def test_duplicate_provider_on_a_tenant_host_is_a_form_error(client, tenant, tenant_admin):
    """The (tenant, provider) constraint is checked although the form hides the tenant."""
    client.force_login(tenant_admin)
    payload, rows = ADDABLE["refunds.gatewayaccount"]
    assert (
        client.post(add_url("refunds.gatewayaccount"), payload, HTTP_HOST=A_HOST).status_code == 302
    )
    again = client.post(add_url("refunds.gatewayaccount"), payload, HTTP_HOST=A_HOST)
    assert again.status_code == 200
    assert "already exists" in again.content.decode()
    assert rows().count() == 1


@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_adding_an_existing_member_again_is_a_form_error(
    client, tenant, tenant_admin, tenant_agent, host
):
    client.force_login(tenant_admin)
    data = {"email": tenant_agent.email, "role": "admin"}
    if host == BASE:
        data["tenant"] = str(tenant.pk)
    response = client.post(add_url("tenancy.membership"), data, HTTP_HOST=host)
    assert response.status_code == 200
    assert "This person is already a member of this tenant." in response.content.decode()
    assert Membership.objects.get(tenant=tenant, user=tenant_agent).role == "agent"
