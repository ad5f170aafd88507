"""Host rules (DESIGN.md section 3): tenant hosts, BASE_DOMAIN, unknown hosts, /healthz."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from returns_portal.tenancy.middleware import request_host, tenant_for_host
from returns_portal.tenancy.models import TenantDomain

pytestmark = pytest.mark.django_db


def test_tenant_host_serves_its_portal(client, tenant):
    response = client.get("/", HTTP_HOST="acme.localhost")
    assert response.status_code == 200
    assert b"Acme Outdoor" in response.content


def test_tenant_host_with_port_serves_its_portal(client, tenant):
    response = client.get("/", HTTP_HOST="acme.localhost:8000")
    assert response.status_code == 200


def test_other_tenant_host_never_serves_first_tenant(client, tenant, other_tenant):
    response = client.get("/", HTTP_HOST="globex.localhost")
    assert response.status_code == 200
    assert b"Globex Apparel" in response.content
    assert b"Acme Outdoor" not in response.content


def test_custom_domain_serves_tenant(client, tenant):
    TenantDomain.objects.create(tenant=tenant, domain="returns.acme.example", is_primary=True)
    response = client.get("/", HTTP_HOST="Returns.Acme.Example.")
    assert response.status_code == 200
    assert b"Acme Outdoor" in response.content


@pytest.mark.parametrize(
    "host", ["nope.localhost", "evil.example", "a.b.localhost", "127.0.0.1", "localhost.evil"]
)
def test_unknown_host_is_404(client, tenant, host):
    assert client.get("/", HTTP_HOST=host).status_code == 404
    assert client.get("/admin/", HTTP_HOST=host).status_code == 404
    assert client.get("/api/v1/schema/", HTTP_HOST=host).status_code == 404


def test_inactive_tenant_host_is_404(client, tenant):
    tenant.is_active = False
    tenant.save()
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 404


def test_base_domain_serves_admin_and_api_only(client, tenant):
    assert client.get("/", HTTP_HOST="localhost").status_code == 404
    assert client.get("/r/anything/", HTTP_HOST="localhost").status_code == 404
    assert client.get("/admin/", HTTP_HOST="localhost").status_code == 302
    assert client.get("/api/v1/schema/", HTTP_HOST="localhost").status_code == 200


@pytest.mark.parametrize(
    "host", ["localhost", "acme.localhost", "unknown.example", "10.0.0.7:8000"]
)
def test_healthz_answers_on_every_host(client, tenant, host):
    response = client.get("/healthz", HTTP_HOST=host)
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok", "db": "ok", "broker": "ok"}


def test_healthz_reports_503_when_broker_unreachable(client, tenant):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz", HTTP_HOST="unknown.example")
    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "error", "db": "ok", "broker": "error"}


def test_request_host_strips_port_and_case(rf):
    assert request_host(rf.get("/", HTTP_HOST="Acme.LocalHost:8000")) == "acme.localhost"
    assert request_host(rf.get("/", HTTP_HOST="[::1]:8000")) == "[::1]"


def test_tenant_for_host_rejects_nested_labels(tenant):
    assert tenant_for_host("acme.localhost") == tenant
    assert tenant_for_host("x.acme.localhost") is None
    assert tenant_for_host("localhost") is None
