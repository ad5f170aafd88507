"""A staff user of tenant A cannot see, pick or act on tenant B's rows in any admin
list, change form, autocomplete, raw-id popup, filter or action; a viewer cannot
change; non-tenant models are for superusers only (DESIGN.md section 3)."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from returns_portal.tenancy.models import ApiKey, Membership, Role
from returns_portal.tenancy.services import api_key_create
from rma.models import Order, ReturnRequest, Shipment, SlaPolicy
from tests.factories import MembershipFactory, ReturnLineFactory, ShipmentFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

A_HOST = "acme.localhost"
B_HOST = "globex.localhost"
BASE = "localhost"


@pytest.fixture
def world(tenant, other_tenant):
    """Two tenants with an order, a return, a shipment and a key each."""
    a_line = ReturnLineFactory(
        return_request__order__tenant=tenant, return_request__order__number="#1001"
    )
    b_line = ReturnLineFactory(
        return_request__order__tenant=other_tenant, return_request__order__number="#1001"
    )
    a_ship = ShipmentFactory(
        return_request=a_line.return_request, tracking_number="1ZAAAAAAAAAAAAAAAA"
    )
    b_ship = ShipmentFactory(
        return_request=b_line.return_request, tracking_number="1ZBBBBBBBBBBBBBBBB"
    )
    return {
        "a_return": a_line.return_request,
        "b_return": b_line.return_request,
        "a_ship": a_ship,
        "b_ship": b_ship,
        "a_key": api_key_create(tenant=tenant, name="a-key").api_key,
        "b_key": api_key_create(tenant=other_tenant, name="b-key").api_key,
    }


def login(client, user):
    client.force_login(user)
    return client


LIST_URLS = [
    "/admin/rma/order/",
    "/admin/rma/returnrequest/",
    "/admin/rma/shipment/",
    "/admin/rma/customer/",
    "/admin/rma/slapolicy/",
    "/admin/rma/returncentre/",
    "/admin/refunds/refund/",
    "/admin/tenancy/membership/",
    "/admin/tenancy/apikey/",
    "/admin/tenancy/tenant/",
]


@pytest.mark.parametrize("url", LIST_URLS)
@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_changelists_show_only_own_tenant(client, world, tenant_admin, other_admin, url, host):
    response = login(client, tenant_admin).get(url, HTTP_HOST=host)
    assert response.status_code == 200
    result_pks = {obj.pk for obj in response.context["cl"].result_list}
    model = response.context["cl"].model
    if model._meta.model_name == "tenant":
        assert result_pks == {world["a_return"].tenant_id}
    else:
        expected = set(
            model.objects.filter(tenant=world["a_return"].tenant).values_list("pk", flat=True)
        )
        assert result_pks == expected
        foreign = set(
            model.objects.exclude(tenant=world["a_return"].tenant).values_list("pk", flat=True)
        )
        assert not (result_pks & foreign)


def test_tenant_admin_has_no_access_on_other_tenant_host(client, world, tenant_admin):
    response = login(client, tenant_admin).get("/admin/rma/order/", HTTP_HOST=B_HOST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_change_form_of_other_tenant_row_is_not_found(client, world, tenant_admin, host):
    c = login(client, tenant_admin)
    for url in (
        f"/admin/rma/returnrequest/{world['b_return'].pk}/change/",
        f"/admin/rma/shipment/{world['b_ship'].pk}/change/",
        f"/admin/rma/order/{world['b_return'].order_id}/change/",
        f"/admin/tenancy/apikey/{world['b_key'].pk}/change/",
        f"/admin/rma/returnrequest/{world['b_return'].pk}/history/",
        f"/admin/rma/returnrequest/{world['b_return'].pk}/delete/",
    ):
        response = c.get(url, HTTP_HOST=host)
        assert response.status_code in (302, 403, 404), url
        assert b"1ZBBBB" not in response.content
    own = c.get(f"/admin/rma/returnrequest/{world['a_return'].pk}/change/", HTTP_HOST=host)
    assert own.status_code == 200


def test_public_token_never_in_admin(client, world, tenant_admin):
    c = login(client, tenant_admin)
    page = c.get(f"/admin/rma/returnrequest/{world['a_return'].pk}/change/", HTTP_HOST=A_HOST)
    assert world["a_return"].token.encode() not in page.content
    listing = c.get("/admin/rma/returnrequest/", HTTP_HOST=A_HOST)
    assert world["a_return"].token.encode() not in listing.content


@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_autocomplete_is_scoped(client, world, tenant_admin, host):
    response = login(client, tenant_admin).get(
        "/admin/autocomplete/",
        {
            "app_label": "rma",
            "model_name": "shipment",
            "field_name": "return_request",
            "term": "RMA",
        },
        HTTP_HOST=host,
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in json.loads(response.content)["results"]}
    assert ids == {world["a_return"].pk}


def test_raw_id_popup_is_scoped(client, world, tenant_admin):
    response = login(client, tenant_admin).get(
        "/admin/rma/returnrequest/", {"_to_field": "id", "_popup": "1"}, HTTP_HOST=A_HOST
    )
    assert response.status_code == 200
    assert {o.pk for o in response.context["cl"].result_list} == {world["a_return"].pk}


def test_foreign_key_choices_and_hand_typed_raw_ids_are_scoped(rf, world, tenant_admin):
    request = rf.get("/admin/rma/shipment/add/", HTTP_HOST=A_HOST)
    request.user = tenant_admin
    request.tenant = world["a_return"].tenant
    model_admin = admin.site.get_model_admin(Shipment)
    form_class = model_admin.get_form(request)
    field = form_class().fields["return_request"]
    assert set(field.queryset.values_list("pk", flat=True)) == {world["a_return"].pk}
    # A raw id of tenant B typed by hand does not validate.
    with pytest.raises(Exception):  # noqa: B017
        field.clean(world["b_return"].pk)
    assert field.clean(world["a_return"].pk) == world["a_return"]


def test_relation_list_filter_offers_only_own_rows(client, world, tenant):
    from tests.factories import TenantFactory

    third = TenantFactory(slug="initech", name="Initech")
    user = UserFactory(username="two-shops")
    MembershipFactory(user=user, tenant=tenant, role=Role.ADMIN)
    MembershipFactory(user=user, tenant=third, role=Role.VIEWER)
    response = login(client, user).get("/admin/rma/order/", HTTP_HOST=BASE)
    tenant_filter = next(
        f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == "tenant"
    )
    assert sorted(pk for pk, _ in tenant_filter.lookup_choices) == sorted([tenant.pk, third.pk])
    # A filter value naming tenant B's row yields nothing.
    sneaky = client.get(
        "/admin/rma/returnrequest/",
        {"order__id__exact": world["b_return"].order_id},
        HTTP_HOST=BASE,
    )
    assert sneaky.status_code == 200
    assert list(sneaky.context["cl"].result_list) == []


def test_actions_recheck_each_selected_object(client, world, tenant_admin):
    c = login(client, tenant_admin)
    response = c.post(
        "/admin/tenancy/apikey/",
        {"action": "revoke", "_selected_action": [world["a_key"].pk, world["b_key"].pk]},
        HTTP_HOST=BASE,
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=world["b_key"].pk).revoked_at is None
    assert ApiKey.objects.get(pk=world["a_key"].pk).revoked_at is not None


def test_delete_action_cannot_reach_other_tenant(client, world, tenant_admin, other_admin):
    b_membership = Membership.objects.get(user=other_admin)
    c = login(client, tenant_admin)
    c.post(
        "/admin/tenancy/membership/",
        {"action": "delete_selected", "_selected_action": [b_membership.pk], "post": "yes"},
        HTTP_HOST=BASE,
    )
    assert Membership.objects.filter(pk=b_membership.pk).exists()


def test_viewer_can_view_but_not_change(client, world, tenant_viewer):
    c = login(client, tenant_viewer)
    policy = SlaPolicy.objects.get(tenant=world["a_return"].tenant)
    url = f"/admin/rma/slapolicy/{policy.pk}/change/"
    page = c.get(url, HTTP_HOST=A_HOST)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = c.post(url, {"first_scan_hours": 1}, HTTP_HOST=A_HOST)
    assert response.status_code == 403
    assert SlaPolicy.objects.get(pk=policy.pk).first_scan_hours == 72


def test_admin_can_change_own_sla_policy_with_history(client, world, tenant_admin):
    policy = SlaPolicy.objects.get(tenant=world["a_return"].tenant)
    data = {
        "first_scan_hours": 48,
        "transit_domestic_business_days": 3,
        "transit_international_business_days": 10,
        "checkin_hours": 24,
        "inspection_hours": 48,
        "refund_business_days": 1,
        "no_movement_days": 6,
        # issue 5: alerts, loyalty, escalation and the (empty) transit-route inline
        "claimed_dropoff_scan_hours": 24,
        "alert_no_scan": "on",
        "loyal_min_orders": 3,
        "loyal_tags": "vip",
        "auto_escalate_after_hours": 48,
        "transit_routes-TOTAL_FORMS": 0,
        "transit_routes-INITIAL_FORMS": 0,
    }
    response = login(client, tenant_admin).post(
        f"/admin/rma/slapolicy/{policy.pk}/change/", data, HTTP_HOST=A_HOST
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.first_scan_hours, policy.no_movement_days) == (48, 6)
    assert policy.history.count() == 2
    assert policy.history.first().history_user == tenant_admin


def test_admin_cannot_change_other_tenants_policy(client, world, tenant_admin):
    b_policy = SlaPolicy.objects.get(tenant=world["b_return"].tenant)
    response = login(client, tenant_admin).post(
        f"/admin/rma/slapolicy/{b_policy.pk}/change/", {"first_scan_hours": 1}, HTTP_HOST=BASE
    )
    assert response.status_code in (302, 403, 404)
    assert SlaPolicy.objects.get(pk=b_policy.pk).first_scan_hours == 72


@pytest.mark.parametrize(
    "url", ["/admin/auth/user/", "/admin/auth/group/", "/admin/tenancy/joblease/"]
)
def test_non_tenant_models_are_superuser_only(client, world, tenant_admin, url):
    assert login(client, tenant_admin).get(url, HTTP_HOST=BASE).status_code == 403
    superuser = User.objects.create_superuser("root", "root@example.com", "pw-not-used-12345")
    client.force_login(superuser)
    assert client.get(url, HTTP_HOST=BASE).status_code == 200


def test_tenant_admin_adds_member_by_email_without_staff_flags(client, world, tenant_admin):
    response = login(client, tenant_admin).post(
        "/admin/tenancy/membership/add/",
        {"email": "New.Agent@Acme.example", "role": "agent"},
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302, response.content
    user = User.objects.get(email="new.agent@acme.example")
    assert not user.is_staff and not user.is_superuser
    membership = Membership.objects.get(user=user)
    assert (membership.tenant_id, membership.role) == (world["a_return"].tenant_id, "agent")


def test_user_with_two_memberships_is_scoped_by_host(client, world, tenant, other_tenant):
    both = UserFactory(username="both")
    MembershipFactory(user=both, tenant=tenant, role=Role.VIEWER)
    MembershipFactory(user=both, tenant=other_tenant, role=Role.VIEWER)
    c = login(client, both)
    on_a = c.get("/admin/rma/returnrequest/", HTTP_HOST=A_HOST)
    assert {o.pk for o in on_a.context["cl"].result_list} == {world["a_return"].pk}
    on_base = c.get("/admin/rma/returnrequest/", HTTP_HOST=BASE)
    assert {o.pk for o in on_base.context["cl"].result_list} == {
        world["a_return"].pk,
        world["b_return"].pk,
    }


def test_login_requires_membership_of_the_host_tenant(client, world, tenant_admin):
    ok = client.post(
        "/admin/login/?next=/admin/",
        {"username": "acme-admin", "password": "correct horse battery staple"},
        HTTP_HOST=A_HOST,
    )
    assert ok.status_code == 302
    client.logout()
    refused = client.post(
        "/admin/login/?next=/admin/",
        {"username": "acme-admin", "password": "correct horse battery staple"},
        HTTP_HOST=B_HOST,
    )
    assert refused.status_code == 200
    assert b"access to this tenant" in refused.content


def test_orders_are_read_only_in_admin(client, world, tenant_admin):
    order = Order.objects.get(pk=world["a_return"].order_id)
    c = login(client, tenant_admin)
    assert (
        c.post(
            f"/admin/rma/order/{order.pk}/change/", {"email": "x@y.z"}, HTTP_HOST=A_HOST
        ).status_code
        == 403
    )
    assert c.get("/admin/rma/order/add/", HTTP_HOST=A_HOST).status_code == 403
    assert ReturnRequest.objects.filter(pk=world["a_return"].pk).exists()


def test_tenant_admin_can_save_own_tenant_settings(
    client, world, tenant, other_tenant, tenant_admin
):
    """The Tenant admin's save goes through `TenantScopedAdmin.save_model`, whose role
    check must read the tenant of a Tenant from its pk (it has no `tenant_id`)."""
    data = {
        "name": "Acme Outdoor Co",
        "country": "US",
        "subdivision": "",
        "time_zone": "America/New_York",
        "currency": "USD",
        "brand_color": "#123456",
        "logo_url": "",
        "support_email": "help@acme.example",
        "escalation_email": "",
        "domains-TOTAL_FORMS": 0,
        "domains-INITIAL_FORMS": 0,
    }
    response = login(client, tenant_admin).post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/", data, HTTP_HOST=A_HOST
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    assert (tenant.name, tenant.brand_color) == ("Acme Outdoor Co", "#123456")
    # and still not another tenant's
    response = login(client, tenant_admin).post(
        f"/admin/tenancy/tenant/{other_tenant.pk}/change/", data, HTTP_HOST=BASE
    )
    assert response.status_code in (302, 403, 404)
    other_tenant.refresh_from_db()
    assert other_tenant.name == "Globex Apparel"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.ADMIN])
def test_return_page_shows_its_lines_shipments_and_milestones_to_members(
    client, world, tenant, role
):
    """Tenant members have roles, not Django model permissions: the read-only inlines
    (lines, shipments, milestones, exceptions, status changes) must still render."""
    user = MembershipFactory(tenant=tenant, user=UserFactory(username="member"), role=role).user
    rr = world["a_return"]
    line = rr.lines.get()
    page = login(client, user).get(f"/admin/rma/returnrequest/{rr.pk}/change/", HTTP_HOST=A_HOST)
    assert page.status_code == 200
    body = page.content.decode()
    for inline_prefix in ("lines", "shipments"):
        assert f'id="{inline_prefix}-group"' in body, inline_prefix
    assert line.order_line.sku in body
    assert world["a_ship"].tracking_number in body
    # still nothing of the other tenant's
    assert world["b_ship"].tracking_number not in body
