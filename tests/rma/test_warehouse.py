"""Warehouse check-in and inspection: services, the scanner page, the API and the admin,
with a second tenant and every role (DESIGN.md sections 3, 5, 10)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from refunds.models import Exchange
from returns_portal.tenancy.services import api_key_create
from rma.models import CheckIn, Inspection, Milestone, ReturnException, Shipment
from rma.warehouse import (
    ForeignReturn,
    InspectionEntry,
    InspectionRefused,
    UnknownReturn,
    checkin_record,
    inspection_record,
    restock_rows,
    return_find_by_scan,
    scan_parse,
)
from tests.factories import MembershipFactory, ShipmentFactory, UserFactory
from tests.refunds.conftest import T0, make_order, make_return

pytestmark = pytest.mark.django_db
A_HOST, B_HOST = "acme.localhost", "globex.localhost"


@pytest.mark.parametrize(
    ("code", "slug", "number"),
    [
        ("RMA:acme:RMA-100001", "acme", "RMA-100001"),
        ("rma:Acme:RMA-100001", "acme", "RMA-100001"),
        ("RMA-100001", None, "RMA-100001"),
        (" rma-100001 ", None, "RMA-100001"),
        ("100001", None, "RMA-100001"),
        ("1Z999AA10123456784", None, None),
        ("", None, None),
    ],
)
def test_scan_parse(code, slug, number):
    parsed = scan_parse(code)
    assert (parsed.tenant_slug, parsed.rma_number) == (slug, number)


@pytest.fixture
def two_returns(tenant, other_tenant):
    a = make_return(make_order(tenant, lines=[("50.00", 2, "0"), ("20.00", 1, "0")]), [2, 1])
    b = make_return(make_order(other_tenant, currency="GBP"), [1])
    a.rma_number, b.rma_number = "RMA-100001", "RMA-100001"
    a.save(update_fields=["rma_number"])
    b.save(update_fields=["rma_number"])
    ShipmentFactory(return_request=a, tracking_number="1Z999AA10123456784")
    ShipmentFactory(return_request=b, tracking_number="1ZBBBBBBBBBBBBBBBB")
    return a, b


def test_find_by_qr_label_number_or_tracking(tenant, two_returns):
    a, _b = two_returns
    for code in (
        "RMA:acme:RMA-100001",
        "RMA-100001",
        "100001",
        "1Z999AA10123456784",
        "1z999aa1 0123456784",
    ):
        assert return_find_by_scan(tenant=tenant, code=code) == a


def test_foreign_and_unknown_codes(tenant, two_returns):
    with pytest.raises(ForeignReturn, match="another shop"):
        return_find_by_scan(tenant=tenant, code="RMA:globex:RMA-100001")
    with pytest.raises(UnknownReturn):
        return_find_by_scan(
            tenant=tenant, code="1ZBBBBBBBBBBBBBBBB"
        )  # another tenant's tracking number
    with pytest.raises(UnknownReturn):
        return_find_by_scan(tenant=tenant, code="RMA-999999")


def test_checkin_reaches_delivered_and_received_from_checkin(tenant, two_returns):
    a, _ = two_returns
    result = checkin_record(
        tenant=tenant,
        return_request=a,
        condition="intact",
        now=T0,
        actor="acme-agent",
        channel="scanner",
    )
    assert result.created
    names = dict(Milestone.objects.filter(return_request=a).values_list("name", "source"))
    assert names == {"delivered": "check-in", "received": "check-in"}
    a.refresh_from_db()
    assert a.status == "received"
    again = checkin_record(
        tenant=tenant,
        return_request=a,
        condition="damaged",
        now=T0 + timedelta(hours=1),
        actor="x",
        channel="api",
    )
    assert (again.created, again.checkin.pk, again.checkin.condition) == (
        False,
        result.checkin.pk,
        "intact",
    )


def test_checkin_after_carrier_delivery_keeps_the_carrier_time(tenant, two_returns):
    from rma.services import milestone_reach

    a, _ = two_returns
    milestone_reach(
        tenant=tenant,
        return_request=a,
        name="delivered",
        reached_at=T0 - timedelta(hours=5),
        source="carrier",
        now=T0,
    )
    checkin_record(
        tenant=tenant,
        return_request=a,
        condition="intact",
        now=T0,
        actor="agent",
        channel="scanner",
    )
    delivered = Milestone.objects.get(return_request=a, name="delivered")
    assert (delivered.source, delivered.reached_at) == ("carrier", T0 - timedelta(hours=5))


def test_damaged_checkin_opens_damaged_package(tenant, two_returns):
    a, _ = two_returns
    checkin_record(
        tenant=tenant,
        return_request=a,
        condition="damaged",
        now=T0,
        actor="agent",
        channel="scanner",
    )
    exc = ReturnException.objects.get(return_request=a, kind="damaged_package")
    assert (exc.state, exc.reason) == ("open", "damaged_at_checkin")


def test_inspection_per_line_and_quantity(tenant, two_returns):
    a, _ = two_returns
    shoes, tee = list(a.lines.order_by("pk"))
    with pytest.raises(InspectionRefused, match="not checked in"):
        inspection_record(
            tenant=tenant,
            return_request=a,
            entries=[InspectionEntry(shoes, "A", "restock")],
            now=T0,
            actor="x",
            channel="api",
        )
    checkin_record(
        tenant=tenant,
        return_request=a,
        condition="intact",
        now=T0,
        actor="agent",
        channel="scanner",
    )
    r1 = inspection_record(
        tenant=tenant,
        return_request=a,
        entries=[InspectionEntry(shoes, "A", "restock", quantity=1)],
        now=T0,
        actor="x",
        channel="api",
    )
    assert (len(r1.created), r1.all_inspected) == (1, False)
    with pytest.raises(InspectionRefused, match="1 left"):
        inspection_record(
            tenant=tenant,
            return_request=a,
            entries=[InspectionEntry(shoes, "B", "restock", quantity=2)],
            now=T0,
            actor="x",
            channel="api",
        )
    r2 = inspection_record(
        tenant=tenant,
        return_request=a,
        entries=[
            InspectionEntry(shoes, "B", "refurbish"),
            InspectionEntry(tee, "D", "dispose", note="torn seam"),
        ],
        now=T0 + timedelta(hours=1),
        actor="x",
        channel="api",
    )
    assert (len(r2.created), r2.all_inspected) == (2, True)
    assert Milestone.objects.get(return_request=a, name="inspected").source == "staff"
    assert (
        ReturnException.objects.get(return_request=a, kind="damaged_package").reason
        == "damaged_at_inspection"
    )
    r3 = inspection_record(
        tenant=tenant,
        return_request=a,
        entries=[InspectionEntry(tee, "A", "restock")],
        now=T0,
        actor="x",
        channel="api",
    )
    assert r3.repeat and not r3.created


def test_mismatch_opens_warehouse_mismatch(tenant, two_returns):
    a, _ = two_returns
    checkin_record(
        tenant=tenant,
        return_request=a,
        condition="intact",
        now=T0,
        actor="agent",
        channel="scanner",
    )
    inspection_record(
        tenant=tenant,
        return_request=a,
        entries=[InspectionEntry(a.lines.first(), "A", "restock", matches=False, note="a sock")],
        now=T0,
        actor="x",
        channel="api",
    )
    assert ReturnException.objects.get(return_request=a, kind="warehouse_mismatch").state == "open"


def test_restock_rows_are_tenant_scoped(tenant, other_tenant, two_returns):
    a, b = two_returns
    for rr, t in ((a, tenant), (b, other_tenant)):
        checkin_record(
            tenant=t,
            return_request=rr,
            condition="intact",
            now=T0,
            actor="agent",
            channel="scanner",
        )
        inspection_record(
            tenant=t,
            return_request=rr,
            entries=[InspectionEntry(line, "A", "restock") for line in rr.lines.all()],
            now=T0,
            actor="agent",
            channel="scanner",
        )
    rows = restock_rows(tenant=tenant)
    assert rows[0][:3] == ["rma_number", "order_number", "sku"]
    assert len(rows) == 3 and {r[0] for r in rows[1:]} == {"RMA-100001"}
    assert all(r[2].startswith(f"SKU-{a.order_id}-") for r in rows[1:])


# --- the scanner page -----------------------------------------------------
def test_page_needs_login(client, two_returns):
    response = client.get("/staff/check-in/", HTTP_HOST=A_HOST)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("agent", 200), ("admin", 200)])
def test_page_roles(client, tenant, two_returns, role, status):
    user = MembershipFactory(
        tenant=tenant, user=UserFactory(username=f"acme-{role}"), role=role
    ).user
    client.force_login(user)
    assert client.get("/staff/check-in/", HTTP_HOST=A_HOST).status_code == status


def test_page_other_tenant_member_is_refused(client, other_admin, two_returns):
    client.force_login(other_admin)
    assert client.get("/staff/check-in/", HTTP_HOST=A_HOST).status_code == 403
    assert (
        client.post(
            "/staff/check-in/", {"code": "RMA-100001", "condition": "intact"}, HTTP_HOST=A_HOST
        ).status_code
        == 403
    )
    assert not CheckIn.objects.exists()


def test_page_is_not_served_on_the_base_domain(client, tenant_agent, two_returns):
    client.force_login(tenant_agent)
    assert client.get("/staff/check-in/", HTTP_HOST="localhost").status_code == 404


def test_page_checks_in_with_large_feedback(client, tenant_agent, two_returns):
    client.force_login(tenant_agent)
    page = client.get("/staff/check-in/", HTTP_HOST=A_HOST).content.decode()
    assert 'name="code"' in page and "autofocus" in page
    ok = client.post(
        "/staff/check-in/", {"code": "RMA:acme:RMA-100001", "condition": "intact"}, HTTP_HOST=A_HOST
    )
    assert ok.status_code == 200
    assert (
        'class="feedback ok"' in ok.content.decode()
        and "RMA-100001 checked in" in ok.content.decode()
    )
    checkin = CheckIn.objects.get()
    assert (checkin.actor, checkin.checked_in_by, checkin.channel) == (
        "acme-agent",
        tenant_agent,
        "scanner",
    )
    again = client.post(
        "/staff/check-in/", {"code": "RMA-100001", "condition": "intact"}, HTTP_HOST=A_HOST
    )
    assert 'class="feedback repeat"' in again.content.decode()
    assert CheckIn.objects.count() == 1


def test_page_foreign_and_unknown_codes_are_red(client, tenant_agent, two_returns):
    client.force_login(tenant_agent)
    foreign = client.post(
        "/staff/check-in/",
        {"code": "RMA:globex:RMA-100001", "condition": "intact"},
        HTTP_HOST=A_HOST,
    )
    assert foreign.status_code == 422
    assert (
        'class="feedback error"' in foreign.content.decode()
        and "another shop" in foreign.content.decode()
    )
    unknown = client.post(
        "/staff/check-in/", {"code": "RMA-424242", "condition": "intact"}, HTTP_HOST=A_HOST
    )
    assert unknown.status_code == 422 and "No return found" in unknown.content.decode()
    assert not CheckIn.objects.exists()


def test_page_keeps_the_chosen_condition(client, tenant_agent, two_returns):
    client.force_login(tenant_agent)
    page = client.post(
        "/staff/check-in/", {"code": "RMA-100001", "condition": "damaged"}, HTTP_HOST=A_HOST
    ).content.decode()
    assert 'value="damaged" required id="id_condition_1" checked' in page or (
        'value="damaged"' in page and "checked" in page
    )


def test_page_offers_the_condition_as_radio_buttons(client, tenant_agent, two_returns):
    """A browser posts only what the page renders: the condition must be real inputs."""
    client.force_login(tenant_agent)
    page = client.get("/staff/check-in/", HTTP_HOST=A_HOST).content.decode()
    assert '<input type="radio" name="condition" value="intact"' in page
    assert '<input type="radio" name="condition" value="damaged"' in page
    assert "<option" not in page
    after = client.post(
        "/staff/check-in/", {"code": "RMA-100001", "condition": "damaged"}, HTTP_HOST=A_HOST
    ).content.decode()
    assert re.search(r'<input type="radio" name="condition" value="damaged"[^>]* checked>', after)


def test_restock_csv_page(client, tenant, tenant_agent, tenant_viewer, two_returns):
    a, _ = two_returns
    checkin_record(
        tenant=tenant,
        return_request=a,
        condition="intact",
        now=T0,
        actor="agent",
        channel="scanner",
    )
    inspection_record(
        tenant=tenant,
        return_request=a,
        entries=[InspectionEntry(line, "A", "restock") for line in a.lines.all()],
        now=T0,
        actor="agent",
        channel="scanner",
    )
    client.force_login(tenant_viewer)
    assert client.get("/staff/restock.csv", HTTP_HOST=A_HOST).status_code == 403
    client.force_login(tenant_agent)
    response = client.get("/staff/restock.csv", HTTP_HOST=A_HOST)
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert lines[0].startswith("rma_number,order_number,sku")
    assert len(lines) == 3
    since = client.get("/staff/restock.csv", {"since": "2099-01-01T00:00:00Z"}, HTTP_HOST=A_HOST)
    assert len(since.content.decode().strip().splitlines()) == 1  # the header alone
    for bad in ("2026-13-45T00:00", "2026-11-01T00:00:00+99:00", "9999-12-31T23:59:59-14:00"):
        refused = client.get("/staff/restock.csv", {"since": bad}, HTTP_HOST=A_HOST)
        assert refused.status_code == 400, bad


# --- the API ---------------------------------------------------------------
@pytest.fixture
def keys(tenant, other_tenant):
    return api_key_create(tenant=tenant, name="wms").raw_key, api_key_create(
        tenant=other_tenant, name="b"
    ).raw_key


def api(client, key, path, data=None, host=A_HOST):
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}", "HTTP_HOST": host}
    if data is None:
        return client.get(path, **headers)
    return client.post(path, data=data, content_type="application/json", **headers)


def test_api_checkin_201_then_200(client, keys, two_returns):
    a_key, _ = keys
    first = api(client, a_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "intact"})
    assert first.status_code == 201
    body = first.json()
    assert body["check_in"]["condition"] == "intact"
    assert body["check_in"]["checked_in_by"] == "api:wms"
    assert body["status"] == "received"
    assert body["refund"]["state"] in ("pending", "approved")
    second = api(client, a_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "damaged"})
    assert second.status_code == 200
    assert second.json()["check_in"] == body["check_in"]


def test_api_other_tenants_rma_is_404(client, keys, two_returns, other_tenant):
    a_key, b_key = keys
    _a, b = two_returns
    b.rma_number = "RMA-200002"
    b.save(update_fields=["rma_number"])
    assert (
        api(
            client, a_key, "/api/v1/returns/RMA-200002/check-in/", {"condition": "intact"}
        ).status_code
        == 404
    )
    assert (
        api(
            client,
            a_key,
            "/api/v1/returns/RMA-200002/inspections/",
            {"lines": [{"sku": "x", "grade": "A", "disposition": "restock", "matches": True}]},
        ).status_code
        == 404
    )
    assert api(client, a_key, "/api/v1/returns/RMA-200002/refund/").status_code == 404
    # a key of another tenant on this tenant's host: the same 404
    assert (
        api(
            client, b_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "intact"}
        ).status_code
        == 404
    )
    assert not CheckIn.objects.exists()


def test_api_checkin_validation(client, keys, two_returns):
    a_key, _ = keys
    response = api(client, a_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "soggy"})
    assert response.status_code == 400 and "condition" in response.json()


def test_api_inspections(client, keys, two_returns):
    a_key, _ = keys
    a, _ = two_returns
    shoes, tee = list(a.lines.order_by("pk").select_related("order_line"))
    not_in = api(
        client,
        a_key,
        "/api/v1/returns/RMA-100001/inspections/",
        {
            "lines": [
                {
                    "line_id": shoes.order_line.line_id,
                    "grade": "A",
                    "disposition": "restock",
                    "matches": True,
                }
            ]
        },
    )
    assert not_in.status_code == 400 and not_in.json()["code"] == "inspection_refused"
    api(client, a_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "intact"})
    payload = {
        "lines": [
            {
                "line_id": shoes.order_line.line_id,
                "quantity": 2,
                "grade": "B",
                "disposition": "restock",
                "matches": True,
            },
            {
                "sku": tee.order_line.sku,
                "grade": "C",
                "disposition": "refurbish",
                "matches": True,
                "note": "stain",
            },
        ]
    }
    first = api(client, a_key, "/api/v1/returns/RMA-100001/inspections/", payload)
    assert first.status_code == 201
    body = first.json()
    assert body["all_inspected"] is True and body["status"] == "inspected"
    assert [(i["sku"], i["quantity"], i["grade"]) for i in body["inspections"]] == [
        (shoes.order_line.sku, 2, "B"),
        (tee.order_line.sku, 1, "C"),
    ]
    repeat = api(client, a_key, "/api/v1/returns/RMA-100001/inspections/", payload)
    assert repeat.status_code == 200 and repeat.json()["inspections"] == body["inspections"]
    assert Inspection.objects.count() == 2


def test_api_inspection_entries_past_the_units_are_refused_not_dropped(client, keys, two_returns):
    a_key, _ = keys
    a, _ = two_returns
    _shoes, tee = list(a.lines.order_by("pk").select_related("order_line"))
    api(client, a_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "intact"})
    entry = {"sku": tee.order_line.sku, "quantity": 1, "disposition": "restock"}
    both = {
        "lines": [
            {**entry, "grade": "A", "matches": True},
            {**entry, "grade": "D", "disposition": "dispose", "matches": False, "note": "brick"},
        ]
    }
    refused = api(client, a_key, "/api/v1/returns/RMA-100001/inspections/", both)
    assert refused.status_code == 400
    assert refused.json()["code"] == "inspection_refused"
    assert "1 units given, 0 left to inspect" in refused.json()["detail"]
    assert not Inspection.objects.filter(return_request=a).exists()


def test_api_inspection_errors_name_the_line(client, keys, two_returns):
    a_key, _ = keys
    api(client, a_key, "/api/v1/returns/RMA-100001/check-in/", {"condition": "intact"})
    bad = api(
        client,
        a_key,
        "/api/v1/returns/RMA-100001/inspections/",
        {"lines": [{"sku": "NOPE", "grade": "A", "disposition": "restock", "matches": True}]},
    )
    assert bad.status_code == 400 and "0" in bad.json()["lines"]
    grade = api(
        client,
        a_key,
        "/api/v1/returns/RMA-100001/inspections/",
        {"lines": [{"sku": "x", "grade": "E", "disposition": "restock", "matches": True}]},
    )
    assert grade.status_code == 400


def test_api_refund_summary_formats_money(client, keys, two_returns, tenant):
    a_key, _ = keys
    body = api(client, a_key, "/api/v1/returns/RMA-100001/refund/").json()
    assert body["refund"]["state"] == "pending"
    assert body["refund"]["rule"] == "Standard"
    assert (
        body["refund"]["explanation"] == "rule 'Standard' matched: no conditions (everything else)"
    )
    assert body["refund"]["estimate"]["text"].startswith("Expected between")
    assert body["refund"]["amount"] is None


def test_api_needs_a_key(client, two_returns):
    assert client.post(
        "/api/v1/returns/RMA-100001/check-in/", {"condition": "intact"}, HTTP_HOST=A_HOST
    ).status_code in (401, 403)


# --- admin -----------------------------------------------------------------
def test_admin_lists_are_tenant_scoped(client, tenant, other_tenant, tenant_admin, two_returns):
    a, b = two_returns
    for rr, t in ((a, tenant), (b, other_tenant)):
        checkin_record(
            tenant=t,
            return_request=rr,
            condition="intact",
            now=timezone.now(),
            actor="x",
            channel="api",
        )
    client.force_login(tenant_admin)
    for host in (A_HOST, "localhost"):
        response = client.get("/admin/rma/checkin/", HTTP_HOST=host)
        assert response.status_code == 200
        assert {c.tenant_id for c in response.context["cl"].result_list} == {tenant.pk}
    foreign = CheckIn.objects.get(tenant=other_tenant)
    assert client.get(
        f"/admin/rma/checkin/{foreign.pk}/change/", HTTP_HOST="localhost"
    ).status_code in (302, 404)


def test_admin_restock_export_action(client, tenant, tenant_agent, two_returns):
    a, _ = two_returns
    checkin_record(
        tenant=tenant,
        return_request=a,
        condition="intact",
        now=T0,
        actor="agent",
        channel="scanner",
    )
    inspection_record(
        tenant=tenant,
        return_request=a,
        entries=[InspectionEntry(line, "A", "restock") for line in a.lines.all()],
        now=T0,
        actor="agent",
        channel="scanner",
    )
    client.force_login(tenant_agent)
    ids = list(Inspection.objects.values_list("pk", flat=True))
    response = client.post(
        "/admin/rma/inspection/",
        {"action": "export_restock_csv", "_selected_action": ids},
        HTTP_HOST=A_HOST,
    )
    assert response["Content-Type"].startswith("text/csv")
    assert len(response.content.decode().strip().splitlines()) == 3


# --- the inspection page ----------------------------------------------------
def _png():
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, format="PNG")
    return SimpleUploadedFile("unit.png", buf.getvalue(), content_type="image/png")


def test_inspection_page_records_every_line_with_a_photo(client, tenant, tenant_agent, two_returns):
    a, _ = two_returns
    shoes, tee = list(a.lines.order_by("pk"))
    client.force_login(tenant_agent)
    client.post("/staff/check-in/", {"code": "RMA-100001", "condition": "intact"}, HTTP_HOST=A_HOST)
    page = client.get("/staff/inspect/?code=RMA-100001", HTTP_HOST=A_HOST)
    assert page.status_code == 200 and f'name="l{shoes.pk}-grade"' in page.content.decode()
    data = {
        "code": "RMA-100001",
        f"l{shoes.pk}-quantity": "2",
        f"l{shoes.pk}-grade": "A",
        f"l{shoes.pk}-disposition": "restock",
        f"l{shoes.pk}-matches": "on",
        f"l{shoes.pk}-note": "",
        f"l{shoes.pk}-photo": _png(),
        f"l{tee.pk}-quantity": "1",
        f"l{tee.pk}-grade": "C",
        f"l{tee.pk}-disposition": "refurbish",
        f"l{tee.pk}-note": "wrong colour",
    }
    response = client.post("/staff/inspect/", data, HTTP_HOST=A_HOST)
    assert response.status_code == 200
    assert "RMA-100001 inspected" in response.content.decode()
    rows = {i.return_line_id: i for i in Inspection.objects.all()}
    assert rows[shoes.pk].photo.name.startswith(f"tenants/{tenant.pk}/inspections/")
    assert (rows[tee.pk].matches, rows[tee.pk].actor) == (False, "acme-agent")
    assert ReturnException.objects.get(return_request=a, kind="warehouse_mismatch").state == "open"
    assert Milestone.objects.filter(return_request=a, name="inspected").exists()
    again = client.get("/staff/inspect/?code=RMA-100001", HTTP_HOST=A_HOST)
    assert "already fully inspected" in again.content.decode()


def test_inspection_page_refuses_before_checkin_and_for_viewers(
    client, tenant_agent, tenant_viewer, two_returns, other_admin
):
    a, _ = two_returns
    line = a.lines.order_by("pk").first()
    client.force_login(tenant_agent)
    data = {
        "code": "RMA-100001",
        f"l{line.pk}-quantity": "1",
        f"l{line.pk}-grade": "A",
        f"l{line.pk}-disposition": "restock",
    }
    refused = client.post("/staff/inspect/", data, HTTP_HOST=A_HOST)
    assert refused.status_code == 422 and "not checked in" in refused.content.decode()
    assert (
        client.get("/staff/inspect/?code=RMA:globex:RMA-100001", HTTP_HOST=A_HOST).status_code
        == 422
    )
    for user in (tenant_viewer, other_admin):
        client.force_login(user)
        assert client.get("/staff/inspect/?code=RMA-100001", HTTP_HOST=A_HOST).status_code == 403
    assert not Inspection.objects.exists()


def test_api_exchange_ships_outbound(client, keys, tenant):
    a_key, _ = keys
    rr = make_return(
        make_order(tenant, risk="low", lines=[("30.00", 1, "0")], taxes="0"),
        [1],
        resolutions={0: "exchange"},
        exchange_skus={0: "TEE-L"},
    )
    rr.rma_number = "RMA-300003"
    rr.save(update_fields=["rma_number"])
    line_id = rr.lines.get().order_line.line_id
    body = {
        "carrier": "ups",
        "tracking_number": "1Z999AA10000000777",
        "lines": [{"line_id": line_id, "replacement_unit_price": "32.50"}],
    }
    first = api(client, a_key, "/api/v1/returns/RMA-300003/exchange/", body)
    assert first.status_code == 201
    ex = first.json()["exchanges"][0]
    assert (ex["exchange_sku"], ex["replacement_unit_price"], ex["price_difference"]) == (
        "TEE-L",
        "32.50",
        "2.50",
    )
    assert ex["shipment"] == {
        "direction": "outbound",
        "carrier": "ups",
        "tracking_number": "1Z999AA10000000777",
    }
    assert api(client, a_key, "/api/v1/returns/RMA-300003/exchange/", body).status_code == 200
    assert Milestone.objects.filter(return_request=rr, name="exchanged").count() == 1
    # One replacement per return: another number, or another price, does not ship again.
    other = {**body, "carrier": "dhl_express", "tracking_number": "1234567890"}
    refused = api(client, a_key, "/api/v1/returns/RMA-300003/exchange/", other)
    assert refused.status_code == 409
    assert refused.json()["code"] == "exchange_already_shipped"
    repriced = {**body, "lines": [{"line_id": line_id, "replacement_unit_price": "99.00"}]}
    assert api(client, a_key, "/api/v1/returns/RMA-300003/exchange/", repriced).status_code == 200
    assert Shipment.objects.filter(return_request=rr, direction="outbound").count() == 1
    assert Exchange.objects.get(return_line__return_request=rr).replacement_unit_price == Decimal(
        "32.50"
    )
    no_exchange = api(
        client,
        a_key,
        "/api/v1/returns/RMA-100001/exchange/",
        {"carrier": "ups", "tracking_number": "1Z1"},
    )
    assert no_exchange.status_code in (400, 404)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"code": "RMA-100001", "condition": "melted"},
            "Unknown condition: choose intact or damaged.",
        ),
        ({"code": "R" * 10_000, "condition": "intact"}, "That code is too long for an RMA code."),
        ({"code": "", "condition": "intact"}, "Scan or type an RMA number."),
    ],
)
def test_page_names_what_is_wrong_with_the_input(client, tenant_agent, two_returns, data, message):
    client.force_login(tenant_agent)
    response = client.post("/staff/check-in/", data, HTTP_HOST=A_HOST)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'class="feedback error"' in page and message in page
    assert re.search(r'<input type="radio" name="condition" value="intact"[^>]* checked>', page)
    assert not CheckIn.objects.exists()
