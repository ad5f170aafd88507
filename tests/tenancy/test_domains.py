"""Tenant domains (DESIGN.md section 3): a host name alone, not the base domain, not a
`<slug>.<BASE_DOMAIN>` host (always that slug's), unique whatever its case. The same
model checks serve `create_tenant` (exit 1, section 9) and the tenant admin's inline.
Also the tenant's currency, country and subdivision codes."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from returns_portal.tenancy.models import Tenant, TenantDomain
from tests.tenancy.test_commands import run

pytestmark = pytest.mark.django_db
BASE = "localhost"


@pytest.fixture
def demo(db):
    tenant = Tenant.objects.create(slug="demo", name="Demo")
    TenantDomain.objects.create(tenant=tenant, domain="returns.demo.example", is_primary=True)
    return tenant


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("demo.localhost", "domain: demo.localhost is reserved for the tenant slug 'demo'."),
        ("other.localhost", "domain: other.localhost is reserved for the tenant slug 'other'."),
        ("localhost", "domain: This is the base domain; it serves no tenant."),
        (
            "http://bad domain/",
            "domain: Give the host name alone, like returns.example.com (no scheme, path or port).",
        ),
        (
            "returns.gamma.example:8000",
            "domain: Give the host name alone, like returns.example.com (no scheme, path or port).",
        ),
        ("intranet", "domain: 'intranet' is not a host name."),
        ("-bad.example", "domain: '-bad.example' is not a host name."),
        ("127.0.0.1", "domain: '127.0.0.1' is not a host name."),
        ("Returns.Demo.Example", "domain: Tenant domain with this Domain already exists."),
    ],
)
def test_create_tenant_refuses_bad_domains(demo, domain, message):
    with pytest.raises(CommandError) as info:
        run("create_tenant", "gamma", "--name", "G", f"--domain={domain}")
    assert info.value.returncode == 1
    assert str(info.value) == f"Invalid tenant: {message}"
    assert not Tenant.objects.filter(slug="gamma").exists()  # nothing half-made
    assert TenantDomain.objects.count() == 1


def test_create_tenant_accepts_a_host_name_and_its_own_slug_host(demo):
    out, _err = run(
        "create_tenant",
        "gamma",
        "--name",
        "G",
        "--domain",
        "Returns.Gamma.Example.",
        "--domain",
        "gamma.localhost",
        "--domain",
        "rma.gamma.localhost",
    )
    assert "http://returns.gamma.example:8000/" in out
    assert sorted(
        TenantDomain.objects.filter(tenant__slug="gamma").values_list("domain", "is_primary")
    ) == [
        ("gamma.localhost", False),
        ("returns.gamma.example", True),
        ("rma.gamma.localhost", False),
    ]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--currency", "ZZZ", "currency: 'ZZZ' is not an ISO 4217 currency code."),
        ("--country", "ZZ", "country: 'ZZ' is not an ISO 3166-1 country code."),
    ],
)
def test_create_tenant_refuses_unknown_codes(option, value, message):
    with pytest.raises(CommandError) as info:
        run("create_tenant", "gamma", "--name", "G", option, value)
    assert info.value.returncode == 1
    assert str(info.value) == f"Invalid tenant: {message}"


# --- the tenant admin (domains are an inline, for superusers) ----------------------------
def tenant_form(**overrides):
    data = {
        "name": "Demo",
        "country": "US",
        "subdivision": "",
        "time_zone": "UTC",
        "currency": "USD",
        "brand_color": "#1f4e79",
        "is_active": "on",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-0-domain": "returns.new.example",
    }
    data.update(overrides)
    return data


@pytest.fixture
def superuser(client):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("acme.localhost", "acme.localhost is reserved for the tenant slug &#x27;acme&#x27;."),
        ("localhost", "This is the base domain; it serves no tenant."),
        ("https://returns.demo.example/", "Give the host name alone"),
        ("RETURNS.DEMO.EXAMPLE", "Tenant domain with this Domain already exists."),
    ],
)
def test_tenant_admin_refuses_bad_domains(client, superuser, demo, tenant, domain, message):
    response = client.post(
        f"/admin/tenancy/tenant/{demo.pk}/change/",
        tenant_form(**{"domains-0-domain": domain}),
        HTTP_HOST=BASE,
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list(TenantDomain.objects.values_list("domain", flat=True)) == ["returns.demo.example"]


def test_tenant_admin_add_page_checks_the_new_tenants_own_slug_host(client, superuser, demo):
    data = tenant_form(slug="gamma", **{"domains-0-domain": "gamma.localhost"})
    assert client.post("/admin/tenancy/tenant/add/", data, HTTP_HOST=BASE).status_code == 302
    assert TenantDomain.objects.get(domain="gamma.localhost").tenant.slug == "gamma"
    data = tenant_form(slug="delta", **{"domains-0-domain": "demo.localhost"})
    response = client.post("/admin/tenancy/tenant/add/", data, HTTP_HOST=BASE)
    assert response.status_code == 200
    assert not Tenant.objects.filter(slug="delta").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("currency", "ZZZ", "&#x27;ZZZ&#x27; is not an ISO 4217 currency code."),
        ("country", "ZZ", "&#x27;ZZ&#x27; is not an ISO 3166-1 country code."),
        ("subdivision", "XX", "&#x27;XX&#x27; is not a subdivision of US."),
    ],
)
def test_tenant_admin_refuses_unknown_codes(client, tenant, tenant_admin, field, value, message):
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/",
        tenant_form(**{field: value, "domains-TOTAL_FORMS": "0"}),
        HTTP_HOST="acme.localhost",
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.currency, tenant.country, tenant.subdivision) == ("USD", "US", "NY")


def test_tenant_admin_accepts_and_upper_cases_known_codes(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/",
        tenant_form(country="de", subdivision="by", currency="eur", **{"domains-TOTAL_FORMS": "0"}),
        HTTP_HOST="acme.localhost",
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.currency, tenant.country, tenant.subdivision) == ("EUR", "DE", "BY")


def test_tenant_admin_cannot_change_another_tenant(client, tenant_admin, other_tenant):
    client.force_login(tenant_admin)
    url = f"/admin/tenancy/tenant/{other_tenant.pk}/change/"
    for host in ("acme.localhost", BASE):
        client.post(
            url, tenant_form(currency="EUR", **{"domains-TOTAL_FORMS": "0"}), HTTP_HOST=host
        )
    other_tenant.refresh_from_db()
    assert other_tenant.currency == "GBP"
