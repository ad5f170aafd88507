"""SLA policy editing (issue 5): alert switches, loyalty, escalation and transit routes,
edited by the tenant's admins only, with history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from returns_portal import tasks
from rma.models import SlaPolicy, SlaTransitRoute
from rma.services import DUE_TIMES_RECOMPUTE_TASK
from tests.clock import T0, labelled_return

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def form_data(**overrides):
    data = {
        "first_scan_hours": 72,
        "transit_domestic_business_days": 3,
        "transit_international_business_days": 10,
        "checkin_hours": 24,
        "inspection_hours": 48,
        "refund_business_days": 1,
        "no_movement_days": 5,
        "claimed_dropoff_scan_hours": 24,
        "alert_no_movement": "on",
        "loyal_min_orders": 5,
        "loyal_tags": "vip, gold",
        "auto_escalate_after_hours": 12,
        "transit_routes-TOTAL_FORMS": 2,
        "transit_routes-INITIAL_FORMS": 0,
        "transit_routes-0-origin_country": "ca",
        "transit_routes-0-destination_country": "us",
        "transit_routes-0-business_days": 6,
        "transit_routes-1-origin_country": "",
        "transit_routes-1-destination_country": "GB",
        "transit_routes-1-business_days": 8,
    }
    data.update(overrides)
    return data


def test_admin_edits_alerts_loyalty_escalation_and_routes(client, tenant, tenant_admin):
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/slapolicy/{policy.pk}/change/", form_data(), HTTP_HOST=A_HOST
    )
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    policy.refresh_from_db()
    assert (policy.alert_no_scan, policy.alert_no_movement) == (False, True)
    assert (policy.loyal_min_orders, policy.loyal_tag_set) == (5, frozenset({"vip", "gold"}))
    assert policy.auto_escalate_after_hours == 12
    routes = set(
        SlaTransitRoute.objects.filter(policy=policy).values_list(
            "tenant_id", "origin_country", "destination_country", "business_days"
        )
    )
    assert routes == {(tenant.pk, "CA", "US", 6), (tenant.pk, "", "GB", 8)}
    assert policy.history.count() == 2
    assert SlaTransitRoute.history.filter(tenant=tenant).count() == 2


def test_a_route_listed_twice_is_refused(client, tenant, tenant_admin):
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/slapolicy/{policy.pk}/change/",
        form_data(
            **{
                "transit_routes-1-origin_country": "CA",
                "transit_routes-1-destination_country": "US",
            }
        ),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 200
    assert not SlaTransitRoute.objects.exists()


def test_no_movement_days_stay_between_5_and_7(client, tenant, tenant_admin):
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/slapolicy/{policy.pk}/change/",
        form_data(no_movement_days=9, **{"transit_routes-TOTAL_FORMS": 0}),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 200
    policy.refresh_from_db()
    assert policy.no_movement_days == 5


@pytest.mark.parametrize("who", ["tenant_agent", "tenant_viewer", "other_admin"])
def test_only_the_tenants_admin_edits_the_policy(client, tenant, who, request):
    user = request.getfixturevalue(who)
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(user)
    host = "localhost" if who == "other_admin" else A_HOST
    response = client.post(f"/admin/rma/slapolicy/{policy.pk}/change/", form_data(), HTTP_HOST=host)
    assert response.status_code in (302, 403, 404)
    policy.refresh_from_db()
    assert policy.auto_escalate_after_hours == 48
    assert not SlaTransitRoute.objects.exists()


def test_saving_the_policy_recomputes_existing_due_times(
    client, tenant, tenant_admin, monkeypatch, django_capture_on_commit_callbacks
):
    _rr, shipment = labelled_return(tenant)
    assert shipment.first_scan_due_at == T0 + timedelta(hours=72)
    sent = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args: sent.append((name, args))
    )
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/rma/slapolicy/{policy.pk}/change/",
            form_data(first_scan_hours=48, **{"transit_routes-TOTAL_FORMS": 0}),
            HTTP_HOST=A_HOST,
        )
    assert response.status_code == 302
    assert sent == [(DUE_TIMES_RECOMPUTE_TASK, [tenant.pk])]
    assert tasks.due_times_recompute(tenant.pk) == 1  # the task body, as the worker runs it
    shipment.refresh_from_db()
    assert shipment.first_scan_due_at == T0 + timedelta(hours=48)
    assert tasks.due_times_recompute(tenant.pk) == 1  # idempotent
    shipment.refresh_from_db()
    assert shipment.first_scan_due_at == T0 + timedelta(hours=48)
