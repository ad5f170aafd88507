"""API keys over HTTP: the key's tenant is the API's tenant; another tenant's host is a 404."""

from __future__ import annotations

import pytest

from returns_portal.tenancy.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_key(tenant):
    return api_key_create(tenant=tenant, name="test").raw_key


@pytest.fixture
def globex_key(other_tenant):
    return api_key_create(tenant=other_tenant, name="test").raw_key


def test_schema_is_public_and_docs_page_self_hosted(client, tenant):
    schema = client.get("/api/v1/schema/", HTTP_HOST="acme.localhost")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/v1/docs/", HTTP_HOST="acme.localhost")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content


def test_api_key_authenticate_sets_tenant(rf, tenant, acme_key):
    from rest_framework.request import Request

    from returns_portal.api.auth import ApiKeyAuthentication

    django_request = rf.get("/api/v1/x/", HTTP_AUTHORIZATION=f"Api-Key {acme_key}")
    django_request.tenant = tenant
    request = Request(django_request)
    _user, key = ApiKeyAuthentication().authenticate(request)
    assert key.tenant == tenant
    assert request.api_tenant == tenant


def test_key_of_other_tenant_on_tenant_host_is_404(rf, tenant, globex_key):
    from rest_framework.exceptions import NotFound
    from rest_framework.request import Request

    from returns_portal.api.auth import ApiKeyAuthentication

    django_request = rf.get("/api/v1/x/", HTTP_AUTHORIZATION=f"Api-Key {globex_key}")
    django_request.tenant = tenant
    with pytest.raises(NotFound):
        ApiKeyAuthentication().authenticate(Request(django_request))


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Api-Key", "Api-Key rp_nothing.real", "Token rp_x.y"]
)
def test_malformed_or_unknown_keys_fail(rf, tenant, header):
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.request import Request

    from returns_portal.api.auth import ApiKeyAuthentication

    django_request = rf.get("/api/v1/x/", HTTP_AUTHORIZATION=header)
    django_request.tenant = tenant
    with pytest.raises(AuthenticationFailed):
        ApiKeyAuthentication().authenticate(Request(django_request))
