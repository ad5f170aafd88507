"""Shared fixtures: every test has a `tenant` and an `other_tenant` (STYLE.md "Tenancy")."""

from __future__ import annotations

import os

import pytest

from returns_portal.tenancy.models import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request through LocaleMiddleware
    leaves its language active in the thread, which would leak into the next test."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


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


@pytest.fixture
def live_worker():
    """A real `celery worker` subprocess on this test's PostgreSQL database and Redis.

    Needs `django_db(transaction=True)` so the worker sees committed rows.
    Skips without PostgreSQL or Redis, except in CI where that fails. Yields a
    `wait_until(predicate, timeout=60)` helper that polls while checking the
    worker is alive; the worker is stopped afterwards.
    """
    import subprocess
    import sys
    import time
    from pathlib import Path

    from celery import current_app
    from django.conf import settings
    from django.db import connection

    require_postgres()
    if not settings.REDIS_URL:
        if IN_CI:
            pytest.fail("CI must run live worker tests with REDIS_URL")
        pytest.skip("needs Redis")
    current_app.control.purge()
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    env.update(
        {
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": "live-worker-test-" + "x" * 40,
        }
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "returns_portal",
            "worker",
            "-l",
            "warning",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def wait_until(predicate, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(0.25)
        return bool(predicate())

    try:
        yield wait_until
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
