"""create_tenant and create_api_key: exact I/O (DESIGN.md section 9)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from returns_portal.tenancy.models import ApiKey, Tenant, TenantDomain
from returns_portal.tenancy.services import api_key_authenticate
from rma.models import ReturnCentre, SlaPolicy

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_tenant_creates_domains_and_provisions():
    out, _ = run(
        "create_tenant",
        "north",
        "--name",
        "North Goods",
        "--domain",
        "returns.north.example",
        "--domain",
        "rma.north.example",
    )
    tenant = Tenant.objects.get(slug="north")
    assert tenant.name == "North Goods"
    assert list(
        TenantDomain.objects.filter(tenant=tenant)
        .order_by("domain")
        .values_list("domain", "is_primary")
    ) == [
        ("returns.north.example", True),
        ("rma.north.example", False),
    ]
    assert "http://returns.north.example:8000/" in out
    policy = SlaPolicy.objects.get(tenant=tenant)
    assert (
        policy.first_scan_hours,
        policy.transit_domestic_business_days,
        policy.no_movement_days,
    ) == (72, 3, 5)
    assert ReturnCentre.objects.filter(tenant=tenant, is_default=True).count() == 1


def test_create_tenant_twice_exits_1():
    run("create_tenant", "north", "--name", "North Goods")
    with pytest.raises(CommandError) as info:
        run("create_tenant", "north", "--name", "Again")
    assert info.value.returncode == 1
    assert "already exists" in str(info.value)
    assert Tenant.objects.get(slug="north").name == "North Goods"


@pytest.mark.parametrize(
    "slug", ["www", "admin", "api", "static", "Bad_Slug", "-lead", "trail-", "a" * 64, "dot.ted"]
)
def test_create_tenant_refuses_bad_or_reserved_slugs(slug):
    with pytest.raises(CommandError) as info:
        run("create_tenant", slug, "--name", "X")
    assert info.value.returncode == 1
    assert not Tenant.objects.filter(slug=slug.lower()).exists()


def test_create_api_key_prints_key_alone_on_last_stdout_line(tenant):
    out, err = run("create_api_key", "--tenant", "acme", "--name", "erp")
    lines = out.strip().splitlines()
    assert len(lines) == 1
    raw = lines[-1]
    assert raw.startswith("rp_")
    assert "shown once" in err
    key = api_key_authenticate(raw)
    assert key is not None and key.tenant == tenant and key.name == "erp"
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw not in (stored.key_hash, stored.lookup_id)


def test_create_api_key_unknown_tenant_exits_1():
    with pytest.raises(CommandError) as info:
        run("create_api_key", "--tenant", "missing")
    assert info.value.returncode == 1


def test_revoked_or_tampered_key_does_not_authenticate(tenant):
    out, _ = run("create_api_key", "--tenant", "acme")
    raw = out.strip()
    assert api_key_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert api_key_authenticate("Bearer " + raw) is None
    ApiKey.objects.update(revoked_at="2026-11-01T00:00:00Z")
    assert api_key_authenticate(raw) is None
