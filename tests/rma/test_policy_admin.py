"""Return policy, reasons and photos in the admin: provisioned per tenant, scoped,
role-checked, with history; photos served only to staff of their tenant."""

from __future__ import annotations

import pytest

from returns_portal.tenancy.services import tenant_create
from rma.models import ReturnPhoto, ReturnPolicy, ReturnReason
from rma.provisioning import DEFAULT_REASONS
from tests.factories import ReturnLineFactory

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"
B_HOST = "globex.localhost"
BASE = "localhost"


def test_new_tenants_get_policy_and_default_reasons():
    tenant = tenant_create(slug="newshop", name="New Shop")
    policy = ReturnPolicy.objects.get(tenant=tenant)
    assert (policy.window_days, policy.label_carrier, policy.pickup_enabled) == (
        30,
        "sandbox",
        True,
    )
    reasons = list(ReturnReason.objects.filter(tenant=tenant).order_by("position"))
    assert [(r.code, r.requires_photo) for r in reasons] == [
        ("damaged", True),
        ("wrong_item", True),
        ("too_small", False),
        ("too_large", False),
        ("not_as_described", False),
        ("changed_mind", False),
        ("other", False),
    ]
    assert len(DEFAULT_REASONS) == 7
    assert reasons[0].history.count() == 1  # history from the start


@pytest.mark.parametrize("url", ["/admin/rma/returnpolicy/", "/admin/rma/returnreason/"])
@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_staff_see_only_their_tenants_policy_and_reasons(
    client, tenant, other_tenant, tenant_admin, url, host
):
    client.force_login(tenant_admin)
    response = client.get(url, HTTP_HOST=host)
    assert response.status_code == 200
    tenants = {obj.tenant_id for obj in response.context["cl"].result_list}
    assert tenants == {tenant.pk}


def test_other_tenants_rows_are_not_found(client, tenant, other_tenant, tenant_admin):
    client.force_login(tenant_admin)
    b_policy = ReturnPolicy.objects.get(tenant=other_tenant)
    b_reason = ReturnReason.objects.get(tenant=other_tenant, code="damaged")
    for url in (
        f"/admin/rma/returnpolicy/{b_policy.pk}/change/",
        f"/admin/rma/returnreason/{b_reason.pk}/change/",
        f"/admin/rma/returnreason/{b_reason.pk}/history/",
    ):
        response = client.get(url, HTTP_HOST=BASE)
        assert response.status_code in (302, 403, 404), url
    response = client.post(
        f"/admin/rma/returnreason/{b_reason.pk}/change/",
        {"label": "Hacked", "requires_photo": "", "active": "on", "position": 1},
        HTTP_HOST=BASE,
    )
    assert response.status_code in (302, 403, 404)
    assert ReturnReason.objects.get(pk=b_reason.pk).label != "Hacked"


def test_admin_edits_policy_with_history(client, tenant, tenant_admin):
    policy = ReturnPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/returnpolicy/{policy.pk}/change/",
        {
            "window_days": 45,
            "final_sale_skus": "CLEARANCE-1\nCLEARANCE-2, CLEARANCE-1",
            "final_sale_tags": "final sale",
            "pickup_enabled": "",
        },
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    policy.refresh_from_db()
    assert policy.window_days == 45 and not policy.pickup_enabled
    assert policy.final_sale_skus == ["CLEARANCE-1", "CLEARANCE-2"]
    assert policy.final_sale_tags == ["final sale"]
    assert policy.history.first().history_user == tenant_admin


def test_admin_adds_reason_on_tenant_host_and_codes_are_unique_per_tenant(
    client, tenant, other_tenant, tenant_admin
):
    client.force_login(tenant_admin)
    ok = client.post(
        "/admin/rma/returnreason/add/",
        {"code": "late_delivery", "label": "Arrived too late", "active": "on", "position": 80},
        HTTP_HOST=A_HOST,
    )
    assert ok.status_code == 302, ok.content.decode()[:3000]
    assert ReturnReason.objects.get(code="late_delivery").tenant == tenant
    clash = client.post(
        "/admin/rma/returnreason/add/",
        {"code": "damaged", "label": "Again", "active": "on", "position": 1},
        HTTP_HOST=A_HOST,
    )
    assert clash.status_code == 200 and b"already has a reason" in clash.content


def test_viewer_cannot_change_reasons_or_policy(client, tenant, tenant_viewer):
    client.force_login(tenant_viewer)
    reason = ReturnReason.objects.get(tenant=tenant, code="damaged")
    page = client.get(f"/admin/rma/returnreason/{reason.pk}/change/", HTTP_HOST=A_HOST)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    response = client.post(
        f"/admin/rma/returnreason/{reason.pk}/change/",
        {"label": "Changed", "active": "on", "position": 1},
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 403
    assert client.get("/admin/rma/returnreason/add/", HTTP_HOST=A_HOST).status_code == 403
    policy = ReturnPolicy.objects.get(tenant=tenant)
    response = client.post(
        f"/admin/rma/returnpolicy/{policy.pk}/change/", {"window_days": 1}, HTTP_HOST=A_HOST
    )
    assert response.status_code == 403
    assert ReturnPolicy.objects.get(pk=policy.pk).window_days == 30


def test_photo_image_is_served_to_staff_of_its_tenant_only(
    client, tenant, other_tenant, tenant_viewer, other_admin, media_root
):
    from django.core.files.base import ContentFile

    from tests.portal_helpers import jpeg_bytes

    line = ReturnLineFactory(return_request__order__tenant=tenant)
    photo = ReturnPhoto(
        tenant=tenant,
        return_line=line,
        content_type="image/jpeg",
        width=40,
        height=20,
        size_bytes=100,
    )
    photo.file.save("p.jpg", ContentFile(jpeg_bytes()), save=False)
    photo.save()
    url = f"/admin/rma/returnphoto/{photo.public_id}/image/"
    client.force_login(tenant_viewer)
    ok = client.get(url, HTTP_HOST=A_HOST)
    assert ok.status_code == 200 and ok["Content-Type"] == "image/jpeg"
    listing = client.get("/admin/rma/returnphoto/", HTTP_HOST=A_HOST)
    assert listing.status_code == 200 and url.encode() in listing.content
    client.force_login(other_admin)
    assert client.get(url, HTTP_HOST=BASE).status_code == 404
    assert client.get(url, HTTP_HOST=B_HOST).status_code == 404
    assert client.get("/admin/rma/returnphoto/", HTTP_HOST=BASE).context["cl"].result_count == 0
    client.logout()
    anonymous = client.get(url, HTTP_HOST=A_HOST)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
