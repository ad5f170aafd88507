"""seed_demo: the demo tenant from a Shopify-format export, idempotent."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from returns_portal.demo import DEMO_ORDERS, demo_export_csv, demo_seed
from returns_portal.tenancy.models import Membership, Tenant
from rma.importers.shopify import open_export, read_orders
from rma.models import Order

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def test_demo_export_is_a_valid_shopify_export():
    text = demo_export_csv(now=NOW)
    assert text.startswith("\ufeffName,Email,Financial Status")
    with open_export(io.StringIO(text)) as lines:
        orders = list(read_orders(lines))
    assert [o.number for o in orders if hasattr(o, "number")] or orders
    assert len(orders) == len(DEMO_ORDERS)


def test_seed_demo_is_idempotent_and_keeps_the_password(tmp_path):
    first = demo_seed(now=NOW, data_dir=tmp_path)
    second = demo_seed(now=NOW, data_dir=tmp_path)
    assert first.orders_created == len(DEMO_ORDERS)
    assert second.orders_created == 0
    assert first.staff_password == second.staff_password
    assert (tmp_path / "demo-staff-password.txt").read_text().strip() == first.staff_password
    tenant = Tenant.objects.get(slug="demo")
    assert Order.objects.filter(tenant=tenant).count() == len(DEMO_ORDERS)
    assert Membership.objects.get(tenant=tenant, user__username="demo-staff").role == "admin"
    cancelled = Order.objects.get(tenant=tenant, number="#1012")
    assert cancelled.is_cancelled and not cancelled.is_returnable_state
    parka = Order.objects.get(tenant=tenant, number="#1002").lines.get()
    assert str(parka.unit_price) == "720.000"


def test_seed_demo_command_prints_urls_and_login(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "http://demo.localhost:8000/" in text
    assert "staff login: demo-staff / " in text


def test_seed_demo_returns_reach_every_milestone_rule_and_exception(tmp_path):
    from refunds.models import Refund
    from rma.models import ReturnException, ReturnRequest

    demo_seed(now=NOW, data_dir=tmp_path)
    got = {}
    for rr in ReturnRequest.objects.filter(tenant__slug="demo").order_by("rma_number"):
        refund = Refund.objects.get(return_request=rr)
        exceptions = sorted(
            ReturnException.objects.filter(return_request=rr, state="open").values_list(
                "kind", flat=True
            )
        )
        got[rr.rma_number] = (rr.status, refund.state, refund.rule_name, exceptions)
    assert got == {
        "RMA-100001": ("in_transit", "issued", "Low risk", ["carrier_exception"]),
        "RMA-100002": ("refunded", "issued", "High value", []),
        "RMA-100003": ("refunded", "issued", "High risk", []),
        "RMA-100004": (
            "dropped_off",
            "pending",
            "Low risk",
            ["claimed_dropoff_no_scan", "no_first_scan"],
        ),
        "RMA-100005": ("label_created", "pending", "Low risk", []),
        "RMA-100006": ("in_transit", "issued", "Low risk", []),
        "RMA-100007": ("in_transit", "pending", "Standard", []),
        "RMA-100008": ("delivered", "issued", "Low risk", []),
        "RMA-100009": ("received", "issued", "Low risk", ["inspection_overdue"]),
        "RMA-100010": ("delivered", "issued", "Standard", ["delivered_not_received"]),
        "RMA-100011": ("exchanged", "cancelled", "Low risk", []),
    }
    # A second run adds no returns.
    demo_seed(now=NOW, data_dir=tmp_path)
    assert ReturnRequest.objects.filter(tenant__slug="demo").count() == 11
