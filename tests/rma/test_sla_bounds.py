"""Every configurable SLA duration has bounds (model validators, so the admin, services and
commands refuse alike), and a policy stored before the bounds existed is read within them:
no OverflowError in return creation, due-time recomputation or the refund estimate."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine

from refunds.models import RefundRule, RefundSettings
from returns_portal import tasks
from returns_portal.tenancy.services import api_key_create
from rma.models import MAX_SLA_BUSINESS_DAYS, MAX_SLA_HOURS, SlaPolicy, SlaTransitRoute
from rma.selectors import sla_targets
from rma.sla import SlaTargets
from tests.clock import T0, labelled_return
from tests.portal_helpers import NOW, order_with_lines
from tests.rma.test_sla_admin import form_data

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("transit_domestic_business_days", 5_000_000, MAX_SLA_BUSINESS_DAYS),
        ("transit_international_business_days", 100_000, MAX_SLA_BUSINESS_DAYS),
        ("refund_business_days", 61, MAX_SLA_BUSINESS_DAYS),
        ("first_scan_hours", 721, MAX_SLA_HOURS),
        ("checkin_hours", 10_000, MAX_SLA_HOURS),
        ("inspection_hours", 721, MAX_SLA_HOURS),
        ("auto_escalate_after_hours", 721, MAX_SLA_HOURS),
        ("transit_routes-0-business_days", 61, MAX_SLA_BUSINESS_DAYS),
    ],
)
def test_admin_refuses_durations_beyond_the_bounds(
    client, tenant, tenant_admin, field, value, limit
):
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/slapolicy/{policy.pk}/change/",
        form_data(**{field: value}),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 200
    assert f"Ensure this value is less than or equal to {limit}." in response.content.decode()
    policy.refresh_from_db()
    assert (policy.transit_domestic_business_days, policy.first_scan_hours) == (3, 72)
    assert not SlaTransitRoute.objects.exists()


@pytest.mark.parametrize("field", ["first_scan_hours", "transit_domestic_business_days"])
def test_admin_refuses_zero(client, tenant, tenant_admin, field):
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/slapolicy/{policy.pk}/change/",
        form_data(**{field: 0, "transit_routes-TOTAL_FORMS": 0}),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 1." in response.content.decode()


def test_admin_accepts_the_largest_durations(client, tenant, tenant_admin):
    policy = SlaPolicy.objects.get(tenant=tenant)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/slapolicy/{policy.pk}/change/",
        form_data(
            transit_international_business_days=60,
            first_scan_hours=720,
            **{"transit_routes-TOTAL_FORMS": 0},
        ),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.transit_international_business_days, policy.first_scan_hours) == (60, 720)


def test_stored_out_of_range_policy_is_read_within_the_bounds(tenant):
    SlaPolicy.objects.filter(tenant=tenant).update(
        transit_domestic_business_days=5_000_000, first_scan_hours=0, checkin_hours=10**9
    )
    targets = sla_targets(SlaPolicy.objects.get(tenant=tenant))
    assert targets == SlaTargets(
        first_scan_hours=1,
        transit_domestic_business_days=60,
        checkin_hours=720,
    )


def test_stored_huge_transit_does_not_break_return_creation_or_recompute(client, tenant):
    """POST /api/v1/returns/ answered 500 (OverflowError in refund_create_for_return)."""
    SlaPolicy.objects.filter(tenant=tenant).update(
        transit_domestic_business_days=5_000_000,
        transit_international_business_days=5_000_000,
        auto_escalate_after_hours=2**31 - 1,
    )
    RefundSettings.objects.filter(tenant=tenant).update(bank_days_original_max=30000)
    RefundRule.objects.filter(tenant=tenant).exclude(name="Standard").update(is_active=False)
    _order, (l1, _l2) = order_with_lines(tenant)
    key = api_key_create(tenant=tenant).raw_key
    with time_machine.travel(NOW, tick=False):
        response = client.post(
            "/api/v1/returns/",
            data=json.dumps(
                {
                    "order_number": "#1001",
                    "email": "buyer@example.com",
                    "method": "drop_off",
                    "lines": [{"line_id": l1.line_id, "quantity": 1, "reason": "too_small"}],
                }
            ),
            content_type="application/json",
            HTTP_HOST=A_HOST,
            HTTP_AUTHORIZATION=f"Api-Key {key}",
        )
        assert response.status_code == 201, response.content
        estimate = response.json()["refund"]["estimate"]
        # Standard rule (delivered): first scan due 13 Nov; transit read as 60 business
        # days (30 for the early bound), refund 1, bank delay read as 30 (min 1).
        assert estimate == {
            "from": "2026-12-29T05:00:00Z",
            "to": "2027-03-30T14:00:00Z",
            "text": "Expected between 29 December 2026 and 30 March 2027",
        }
        page = client.get(response.json()["tracking_url"].split(":8000")[1], HTTP_HOST=A_HOST)
        assert page.status_code == 200
    assert tasks.due_times_recompute(tenant.pk) >= 1


def test_stored_huge_escalation_age_is_bounded(tenant):
    from rma.exception_services import exceptions_auto_escalate

    _rr, _shipment = labelled_return(tenant)
    SlaPolicy.objects.filter(tenant=tenant).update(auto_escalate_after_hours=2**31 - 1)
    assert exceptions_auto_escalate(now=T0 + timedelta(days=1)) == {}
