"""Shared fixtures: every test has a `tenant` and an `other_tenant` (STYLE.md "Tenancy")."""

from __future__ import annotations

import os

import pytest

from returns_portal.tenancy.models import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="Acme Outdoor")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(
        slug="globex",
        name="Globex Apparel",
        country="GB",
        subdivision="",
        time_zone="Europe/London",
        currency="GBP",
    )


@pytest.fixture
def tenant_admin(tenant):
    return MembershipFactory(
        tenant=tenant, user=UserFactory(username="acme-admin"), role=Role.ADMIN
    ).user


@pytest.fixture
def tenant_agent(tenant):
    return MembershipFactory(
        tenant=tenant, user=UserFactory(username="acme-agent"), role=Role.AGENT
    ).user


@pytest.fixture
def tenant_viewer(tenant):
    return MembershipFactory(
        tenant=tenant, user=UserFactory(username="acme-viewer"), role=Role.VIEWER
    ).user


@pytest.fixture
def other_admin(other_tenant):
    return MembershipFactory(
        tenant=other_tenant, user=UserFactory(username="globex-admin"), role=Role.ADMIN
    ).user


def tenant_host(tenant) -> str:
    """The Host header that reaches `tenant`'s portal in tests."""
    return f"{tenant.slug}.localhost"


def require_postgres() -> None:
    """Skip outside PostgreSQL, except in CI where skipping is a failure."""
    from django.db import connection

    if connection.vendor != "postgresql":
        if IN_CI:
            pytest.fail("CI must run this test on PostgreSQL (DATABASE_URL)")
        pytest.skip("needs PostgreSQL")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores photos and labels in its own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def clear_redis_cache(settings):
    """Rate-limit counters never leak between tests. The database cache (no REDIS_URL)
    lives in the test transaction and rolls back by itself."""
    if not settings.REDIS_URL:
        yield
        return
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
