"""The staff exception queue (issue 5): scoped to the user's tenants and roles in the
list, filters, search, autocomplete, detail page and every action; each action
recorded with who and when."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from returns_portal.tenancy.models import Role
from rma.models import (
    Customer,
    ExceptionActivity,
    Notification,
    ReplacementOffer,
    ReturnException,
    ReturnRequest,
    SlaPolicy,
)
from rma.services import exception_open, milestone_reach
from tests.factories import (
    MembershipFactory,
    OrderFactory,
    ShipmentFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"
BASE = "localhost"
URL = "/admin/rma/returnexception/"
NOW = timezone.now()


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(tenant, other_tenant):
    """Tenant A: a no-scan exception on a UPS parcel (overdue 4 days) and a return-level
    damaged package on a DHL return (overdue 1 hour). Tenant B: one on a FedEx parcel."""
    a_ship = ShipmentFactory(
        return_request__order__tenant=tenant,
        return_request__order__number="#1001",
        return_request__email="ann@example.com",
        carrier="ups",
        tracking_number="1ZAAAAAAAAAAAAAAAA",
    )
    a_rr = a_ship.return_request
    ReturnRequest.objects.filter(pk=a_rr.pk).update(
        expected_refund_amount=Decimal("54.000"), expected_refund_currency="USD"
    )
    a_exc = exception_open(
        tenant=tenant,
        return_request=a_rr,
        shipment=a_ship,
        kind="no_first_scan",
        opened_at=NOW - timedelta(days=3),
        due_at=NOW - timedelta(days=4),
    ).exception
    d_ship = ShipmentFactory(
        return_request__order__tenant=tenant,
        return_request__email="dan@example.com",
        carrier="dhl_express",
        tracking_number="JD014600006543210987",
    )
    d_exc = exception_open(
        tenant=tenant,
        return_request=d_ship.return_request,
        kind="damaged_package",
        opened_at=NOW - timedelta(hours=1),
    ).exception
    b_ship = ShipmentFactory(
        return_request__order__tenant=other_tenant,
        return_request__order__number="#1001",
        carrier="fedex",
        tracking_number="1ZBBBBBBBBBBBBBBBB",
    )
    b_exc = exception_open(
        tenant=other_tenant,
        return_request=b_ship.return_request,
        shipment=b_ship,
        kind="no_first_scan",
        opened_at=NOW - timedelta(days=5),
    ).exception
    b_agent = MembershipFactory(
        tenant=other_tenant, user=UserFactory(username="globex-agent"), role=Role.AGENT
    ).user
    return {"a": a_exc, "d": d_exc, "b": b_exc, "a_rr": a_rr, "b_agent": b_agent}


def login(client, user):
    client.force_login(user)
    return client


def listed(response) -> list[int]:
    assert response.status_code == 200, response.status_code
    return [obj.pk for obj in response.context["cl"].result_list]


def act(client, action, pks, host=A_HOST, **data):
    payload = {"action": action, "_selected_action": pks, **data}
    if "apply" not in data:
        payload["index"] = 0
    return client.post(URL, payload, HTTP_HOST=host)


# --- list, ordering, columns --------------------------------------------------
@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_queue_lists_own_tenant_open_exceptions_oldest_overdue_first(
    client, world, tenant_agent, host
):
    response = login(client, tenant_agent).get(URL, HTTP_HOST=host)
    assert listed(response) == [world["a"].pk, world["d"].pk]
    assert b"1ZBBBB" not in response.content
    content = response.content.decode()
    assert "1ZAAAAAAAAAAAAAAAA" in content
    assert "JD014600006543210987" in content  # return-level: the return's parcel
    assert "54.00 USD" in content  # value at risk
    assert "4 d 0 h" in content  # overdue by


def test_other_tenant_host_and_rows_are_out_of_reach(client, world, tenant_agent):
    c = login(client, tenant_agent)
    assert c.get(URL, HTTP_HOST="globex.localhost").status_code == 302
    for host in (A_HOST, BASE):
        response = c.get(f"{URL}{world['b'].pk}/change/", HTTP_HOST=host)
        assert response.status_code in (302, 403, 404)
        assert b"1ZBBBB" not in response.content


def test_viewer_sees_the_queue_but_no_actions(client, world, tenant_viewer):
    c = login(client, tenant_viewer)
    response = c.get(URL, HTTP_HOST=A_HOST)
    assert listed(response) == [world["a"].pk, world["d"].pk]
    assert response.context["action_form"] is None
    act(c, "assign_to_me", [world["a"].pk])
    act(c, "escalate", [world["a"].pk])
    world["a"].refresh_from_db()
    assert (world["a"].assignee_id, world["a"].priority) == (None, 2)
    assert not ExceptionActivity.objects.exists()


def test_viewer_detail_page_is_read_only(client, world, tenant_viewer):
    c = login(client, tenant_viewer)
    url = f"{URL}{world['a'].pk}/change/"
    page = c.get(url, HTTP_HOST=A_HOST)
    assert page.status_code == 200
    assert b'name="note"' not in page.content
    assert c.post(url, {"note": "hi"}, HTTP_HOST=A_HOST).status_code == 403
    assert not ExceptionActivity.objects.exists()


# --- filters and search -------------------------------------------------------
def test_filters(client, world, tenant_agent, tenant_admin):
    c = login(client, tenant_agent)
    get = lambda **q: listed(c.get(URL, q, HTTP_HOST=A_HOST))  # noqa: E731
    assert get(kind__exact="damaged_package") == [world["d"].pk]
    assert get(carrier="dhl_express") == [world["d"].pk]
    assert get(carrier="fedex") == []  # tenant B's carrier
    assert get(overdue="3d") == [world["a"].pk]
    assert get(overdue="escalated") == []
    ReturnException.objects.filter(pk=world["d"].pk).update(assignee=tenant_agent)
    assert get(assignee="me") == [world["d"].pk]
    assert get(assignee="none") == [world["a"].pk]
    assert get(assignee=str(world["b_agent"].pk)) == []  # not a person of this tenant
    ReturnException.objects.filter(pk=world["a"].pk).update(state="resolved", resolved_at=NOW)
    assert get() == [world["d"].pk]
    assert get(state="resolved") == [world["a"].pk]
    assert get(state="all") == [world["a"].pk, world["d"].pk]


def test_filter_choices_never_show_other_tenants(client, world, tenant_agent):
    response = login(client, tenant_agent).get(URL, HTTP_HOST=BASE)
    specs = {
        f.parameter_name: f
        for f in response.context["cl"].filter_specs
        if hasattr(f, "parameter_name")
    }
    assert [c for c, _ in specs["carrier"].lookup_choices] == ["dhl_express", "ups"]
    people = [label for _, label in specs["assignee"].lookup_choices]
    assert "globex-agent" not in people


@pytest.mark.parametrize("term", ["RMA", "#1001", "1001", "1ZAAAAAAAAAAAAAAAA", "ann@example.com"])
def test_search(client, world, tenant_agent, term):
    found = listed(login(client, tenant_agent).get(URL, {"q": term}, HTTP_HOST=BASE))
    assert world["b"].pk not in found
    if term != "RMA":
        assert found == [world["a"].pk]


def test_search_by_the_returns_parcel_for_return_level_exceptions(client, world, tenant_agent):
    found = listed(
        login(client, tenant_agent).get(URL, {"q": "JD014600006543210987"}, HTTP_HOST=A_HOST)
    )
    assert found == [world["d"].pk]


# --- autocomplete ------------------------------------------------------------
@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_autocomplete_of_exceptions_is_scoped(client, world, tenant_agent, host):
    response = login(client, tenant_agent).get(
        "/admin/autocomplete/",
        {
            "app_label": "rma",
            "model_name": "replacementoffer",
            "field_name": "exception",
            "term": "RMA",
        },
        HTTP_HOST=host,
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in json.loads(response.content)["results"]}
    assert ids == {world["a"].pk, world["d"].pk}


def test_autocomplete_cannot_list_users(client, world, tenant_agent):
    response = login(client, tenant_agent).get(
        "/admin/autocomplete/",
        {
            "app_label": "rma",
            "model_name": "returnexception",
            "field_name": "assignee",
            "term": "a",
        },
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 403


# --- actions ------------------------------------------------------------------
def activity(exc) -> list[tuple[str, str]]:
    return list(
        ExceptionActivity.objects.filter(exception=exc).values_list("action", "actor_label")
    )


def test_assign_to_me(client, world, tenant_agent):
    response = act(login(client, tenant_agent), "assign_to_me", [world["a"].pk])
    assert response.status_code == 302
    world["a"].refresh_from_db()
    assert world["a"].assignee == tenant_agent
    assert activity(world["a"]) == [("assigned", "acme-agent")]
    row = ExceptionActivity.objects.get()
    assert row.actor == tenant_agent and row.at is not None


def test_assign_to_an_agent_offers_only_the_tenants_agents(
    client, world, tenant_agent, tenant_admin, tenant_viewer
):
    c = login(client, tenant_agent)
    page = act(c, "assign_to_agent", [world["a"].pk])
    assert page.status_code == 200
    choices = [u.username for u in page.context["form"].fields["assignee"].queryset]
    assert choices == ["acme-admin", "acme-agent"]  # not the viewer, not tenant B's agent
    bad = act(c, "assign_to_agent", [world["a"].pk], apply="1", assignee=world["b_agent"].pk)
    assert bad.status_code == 200 and bad.context["form"].errors
    ok = act(c, "assign_to_agent", [world["a"].pk], apply="1", assignee=tenant_admin.pk)
    assert ok.status_code == 302
    world["a"].refresh_from_db()
    assert world["a"].assignee == tenant_admin


def test_start_a_carrier_trace(client, world, tenant_agent):
    c = login(client, tenant_agent)
    assert act(c, "start_trace", [world["a"].pk]).status_code == 200
    follow_up = (NOW + timedelta(days=3)).astimezone(UTC).replace(second=0, microsecond=0)
    response = act(
        c,
        "start_trace",
        [world["a"].pk],
        apply="1",
        trace_ref="UPS-TRACE-778",
        follow_up_at=follow_up.strftime("%Y-%m-%d %H:%M"),
    )
    assert response.status_code == 302
    world["a"].refresh_from_db()
    assert (world["a"].trace_ref, world["a"].trace_follow_up_at) == ("UPS-TRACE-778", follow_up)
    assert activity(world["a"]) == [("trace_started", "acme-agent")]


def test_request_proof_of_dropoff_sends_one_email(client, world, tenant_agent):
    c = login(client, tenant_agent)
    act(c, "request_proof_of_dropoff", [world["a"].pk])
    act(c, "request_proof_of_dropoff", [world["a"].pk])
    note = Notification.objects.get()
    assert (note.key, note.to_email, note.kind) == (
        f"proof_request:return:{world['a_rr'].pk}",
        "ann@example.com",
        "proof_of_dropoff_request",
    )
    assert "drop-off receipt" in note.body_text and "1ZAAAAAAAAAAAAAAAA" in note.body_text
    assert activity(world["a"]) == [("proof_requested", "acme-agent")]


def test_proof_of_dropoff_only_while_the_carrier_has_no_scan(client, world, tenant_agent, tenant):
    c = login(client, tenant_agent)
    # A damaged package is at the warehouse: nothing to prove.
    act(c, "request_proof_of_dropoff", [world["d"].pk])
    # The no-scan exception's parcel got its first scan meanwhile (not yet auto-resolved).
    milestone_reach(
        tenant=tenant,
        return_request=world["a_rr"],
        name="first_scan",
        reached_at=NOW,
        source="carrier",
        now=NOW,
    )
    response = act(c, "request_proof_of_dropoff", [world["a"].pk])
    assert response.status_code == 302
    assert not Notification.objects.exists()
    assert activity(world["a"]) == [] and activity(world["d"]) == []


def test_offer_replacement_only_to_loyal_customers(client, world, tenant_agent, tenant):
    c = login(client, tenant_agent)
    act(c, "offer_replacement", [world["a"].pk])
    assert not ReplacementOffer.objects.exists()  # first order, no tag
    # Three earlier orders with the same e-mail make the customer loyal.
    order = world["a_rr"].order
    for day in (1, 2, 3):
        OrderFactory(
            tenant=tenant, email=order.email, placed_at=datetime(2026, 10, day, tzinfo=UTC)
        )
    act(c, "offer_replacement", [world["a"].pk])
    offer = ReplacementOffer.objects.get()
    assert (offer.return_request_id, offer.offered_by, offer.state) == (
        world["a_rr"].pk,
        tenant_agent,
        "offered",
    )
    assert offer.loyalty_reason == "3 earlier orders"
    assert activity(world["a"]) == [("replacement_offered", "acme-agent")]


def test_vip_tag_is_loyal_and_tenant_editable(client, world, tenant_agent, tenant):
    d_rr = world["d"].return_request
    d_rr.customer = Customer.objects.create(
        tenant=tenant, email_normalized="dan@example.com", tags=["Gold"]
    )
    d_rr.save()
    c = login(client, tenant_agent)
    act(c, "offer_replacement", [world["d"].pk])
    assert not ReplacementOffer.objects.exists()
    SlaPolicy.objects.filter(tenant=tenant).update(loyal_tags="vip, gold")
    act(c, "offer_replacement", [world["d"].pk])
    assert ReplacementOffer.objects.get().loyalty_reason == "tag gold"


def test_escalate_raises_priority_and_emails_the_escalation_address(
    client, world, tenant_agent, tenant
):
    c = login(client, tenant_agent)
    act(c, "escalate", [world["a"].pk])
    world["a"].refresh_from_db()
    assert world["a"].priority == 1 and world["a"].escalated_at is not None
    note = Notification.objects.get(kind="exception_escalation")
    assert note.to_email == tenant.escalation_email
    assert world["a_rr"].rma_number in note.subject
    act(c, "escalate", [world["a"].pk])  # already at the top: nothing more
    assert Notification.objects.filter(kind="exception_escalation").count() == 1
    assert activity(world["a"]) == [("escalated", "acme-agent")]


def test_resolve_with_a_resolution_code(client, world, tenant_agent):
    c = login(client, tenant_agent)
    page = act(c, "resolve", [world["a"].pk])
    assert page.status_code == 200
    assert act(c, "resolve", [world["a"].pk], apply="1", resolution_code="nope").status_code == 200
    response = act(
        c,
        "resolve",
        [world["a"].pk],
        apply="1",
        resolution_code="staff:carrier_fixed",
        note="UPS found it",
    )
    assert response.status_code == 302
    world["a"].refresh_from_db()
    assert (world["a"].state, world["a"].resolution_code, world["a"].resolved_by_staff) == (
        "resolved",
        "staff:carrier_fixed",
        True,
    )
    assert world["a"].resolved_by == tenant_agent
    assert world["a"].resolution_note == "UPS found it"
    assert activity(world["a"]) == [("resolved", "acme-agent")]


@pytest.mark.parametrize("action", ["assign_to_me", "escalate", "request_proof_of_dropoff"])
def test_agent_cannot_act_on_another_tenants_exception(client, world, tenant_agent, action):
    act(login(client, tenant_agent), action, [world["b"].pk], host=BASE)
    world["b"].refresh_from_db()
    assert (world["b"].assignee_id, world["b"].priority) == (None, 2)
    assert not ExceptionActivity.objects.exists()
    assert not Notification.objects.exists()


def test_mixed_selection_with_a_viewer_role_is_refused_whole(client, world, tenant, other_tenant):
    user = UserFactory(username="two-shops")
    MembershipFactory(user=user, tenant=tenant, role=Role.AGENT)
    MembershipFactory(user=user, tenant=other_tenant, role=Role.VIEWER)
    c = login(client, user)
    response = act(c, "assign_to_me", [world["a"].pk, world["b"].pk], host=BASE)
    assert response.status_code == 302
    assert not ReturnException.objects.filter(assignee=user).exists()
    # Own tenant alone works.
    act(c, "assign_to_me", [world["a"].pk], host=BASE)
    assert list(ReturnException.objects.filter(assignee=user).values_list("pk", flat=True)) == [
        world["a"].pk
    ]


def test_other_tenants_admin_cannot_act_here(client, world, other_admin):
    act(login(client, other_admin), "escalate", [world["a"].pk], host=BASE)
    world["a"].refresh_from_db()
    assert world["a"].priority == 2


# --- detail page --------------------------------------------------------------
def test_detail_shows_the_timeline_and_takes_a_note(client, world, tenant_agent, tenant):
    rr = world["a_rr"]
    milestone_reach(
        tenant=tenant,
        return_request=rr,
        name="label_created",
        reached_at=NOW - timedelta(days=7),
        source="system",
        now=NOW,
    )
    c = login(client, tenant_agent)
    url = f"{URL}{world['a'].pk}/change/"
    page = c.get(url, HTTP_HOST=A_HOST)
    assert page.status_code == 200
    content = page.content.decode()
    assert "milestone: Label created" in content
    assert "shipment ups 1ZAAAAAAAAAAAAAAAA" in content
    assert "exception opened: no_first_scan" in content
    assert rr.token not in content  # the public token never shows in the admin
    response = c.post(
        url,
        {"note": "Called the customer", "activities-TOTAL_FORMS": 0, "activities-INITIAL_FORMS": 0},
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302
    note = ExceptionActivity.objects.get()
    assert (note.action, note.detail, note.actor) == ("note", "Called the customer", tenant_agent)
    world["a"].refresh_from_db()
    assert world["a"].state == "open"  # nothing else changed


def test_no_add_or_delete(client, world, tenant_admin):
    c = login(client, tenant_admin)
    assert c.get(f"{URL}add/", HTTP_HOST=A_HOST).status_code == 403
    c.post(
        URL,
        {"action": "delete_selected", "_selected_action": [world["a"].pk], "post": "yes"},
        HTTP_HOST=A_HOST,
    )
    assert ReturnException.objects.filter(pk=world["a"].pk).exists()


def test_third_tenant_user_sees_nothing(client, world):
    third = TenantFactory(slug="initech", name="Initech")
    user = MembershipFactory(
        tenant=third, user=UserFactory(username="initech-agent"), role=Role.AGENT
    ).user
    assert listed(login(client, user).get(URL, HTTP_HOST=BASE)) == []


def test_queue_runs_a_fixed_number_of_queries(client, world, tenant_agent, tenant):
    c = login(client, tenant_agent)
    with CaptureQueriesContext(connection) as few:
        assert c.get(URL, HTTP_HOST=A_HOST).status_code == 200
    for i in range(8):
        ship = ShipmentFactory(
            return_request__order__tenant=tenant, tracking_number=f"1ZMORE{i:012d}"
        )
        exception_open(
            tenant=tenant,
            return_request=ship.return_request,
            shipment=ship,
            kind="transit_overdue",
            opened_at=NOW - timedelta(hours=i + 2),
        )
    with CaptureQueriesContext(connection) as many:
        response = c.get(URL, HTTP_HOST=A_HOST)
    assert len(response.context["cl"].result_list) == 10
    assert len(many.captured_queries) == len(few.captured_queries)
