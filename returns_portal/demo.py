"""The demo tenant (`manage.py seed_demo`, run by `make demo`).

Everything is made through the same services production uses: the tenant
through `tenant_create`, the orders through a Shopify-format orders export
(written to `DATA_DIR/demo-orders-export.csv` with dates relative to today, so
the return windows are open) imported by `order_import_csv`, and returns
through the return services (see `demo_returns_seed`).

The people are invented. The demo staff password is generated once and kept
in `DATA_DIR/demo-staff-password.txt`.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from returns_portal.tenancy.models import Membership, Role, Tenant
from returns_portal.tenancy.services import membership_set, tenant_absolute_url, tenant_create
from rma.importers.shopify import COLUMNS
from rma.services import order_import_csv

DEMO_SLUG = "demo"
DEMO_ZONE = ZoneInfo("America/New_York")
STAFF_USERNAME = "demo-staff"


@dataclass(frozen=True)
class DemoLine:
    name: str
    sku: str
    price: Decimal
    quantity: int = 1
    requires_shipping: bool = True
    fulfilled: bool = True
    discount: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class DemoOrder:
    number: str
    email: str
    person: str
    days_ago: int
    lines: tuple[DemoLine, ...]
    risk: str = "Low"
    tags: str = ""
    city: str = "Brooklyn"
    province: str = "NY"
    zip: str = "11201"
    financial_status: str = "paid"
    cancelled: bool = False
    refunded_amount: Decimal = Decimal("0.00")
    tax_rate: Decimal = Decimal("0.08875")
    shipping: Decimal = Decimal("7.50")
    discount_code: str = ""


#: Invented customers and orders; each exercises something the demo shows.
DEMO_ORDERS: tuple[DemoOrder, ...] = (
    DemoOrder(
        "#1001",
        "jordan.avery@example.com",
        "Jordan Avery",
        12,
        (
            DemoLine("Trail Runner Shoe - 9", "TRS-9", Decimal("129.00")),
            DemoLine("Merino Tee - M", "MT-M", Decimal("45.00"), quantity=2),
        ),
        tags="loyal",
    ),
    DemoOrder(
        "#1002",
        "priya.natarajan@example.com",
        "Priya Natarajan",
        10,
        (DemoLine("Down Parka - S", "DP-S", Decimal("720.00")),),
        risk="Medium",
    ),
    DemoOrder(
        "#1003",
        "luis.ortega@example.com",
        "Luis Ortega",
        9,
        (
            DemoLine("Rain Shell - L", "RS-L", Decimal("189.00")),
            DemoLine("Gift Card $25", "GC-25", Decimal("25.00"), requires_shipping=False),
        ),
        risk="High",
    ),
    DemoOrder(
        "#1004",
        "hannah.becker@example.com",
        "Hannah Becker",
        8,
        (DemoLine("Hiking Sock 3-Pack", "HS-3", Decimal("24.00"), quantity=3),),
        tags="vip",
    ),
    DemoOrder(
        "#1005",
        "kenji.sato@example.com",
        "Kenji Sato",
        7,
        (
            DemoLine("Fleece Jacket - M", "FJ-M", Decimal("98.00")),
            DemoLine("Beanie", "BN-1", Decimal("22.00")),
        ),
        discount_code="WELCOME10",
    ),
    DemoOrder(
        "#1006",
        "amara.okafor@example.com",
        "Amara Okafor",
        6,
        (DemoLine("Daypack 24L", "DPK-24", Decimal("110.00")),),
    ),
    DemoOrder(
        "#1007",
        "sofia.rossi@example.com",
        "Sofia Rossi",
        6,
        (DemoLine("Trail Runner Shoe - 8", "TRS-8", Decimal("129.00")),),
        risk="Medium",
    ),
    DemoOrder(
        "#1008",
        "noah.fischer@example.com",
        "Noah Fischer",
        5,
        (DemoLine("Insulated Bottle", "IB-750", Decimal("34.00"), quantity=2),),
    ),
    DemoOrder(
        "#1009",
        "chloe.martin@example.com",
        "Chloe Martin",
        5,
        (DemoLine("Softshell Pant - 32", "SP-32", Decimal("119.00")),),
    ),
    DemoOrder(
        "#1010",
        "ethan.brooks@example.com",
        "Ethan Brooks",
        4,
        (
            DemoLine("Camp Chair", "CC-1", Decimal("79.00")),
            DemoLine("Headlamp", "HL-300", Decimal("39.00"), fulfilled=False),
        ),
    ),
    DemoOrder(
        "#1011",
        "mia.kowalski@example.com",
        "Mia Kowalski",
        45,
        (DemoLine("Wool Scarf", "WS-1", Decimal("49.00")),),
    ),
    DemoOrder(
        "#1012",
        "omar.haddad@example.com",
        "Omar Haddad",
        3,
        (DemoLine("Tent 2P", "TN-2P", Decimal("349.00")),),
        cancelled=True,
        financial_status="voided",
    ),
    DemoOrder(
        "#1013",
        "grace.lee@example.com",
        "Grace Lee",
        3,
        (DemoLine("Sun Hoodie - S", "SH-S", Decimal("65.00")),),
        tags="final-sale",
    ),
    DemoOrder(
        "#1014",
        "ravi.menon@example.com",
        "Ravi Menon",
        2,
        (
            DemoLine("Trekking Poles", "TP-1", Decimal("89.00")),
            DemoLine("Trail Runner Shoe - 10", "TRS-10", Decimal("129.00")),
        ),
    ),
)


def _fmt(dt: datetime) -> str:
    return dt.astimezone(DEMO_ZONE).strftime("%Y-%m-%d %H:%M:%S %z")


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def demo_export_csv(*, now: datetime) -> str:
    """A Shopify orders export (every column, BOM, one row per line item) for `DEMO_ORDERS`.

    Prices exclude tax (`Total = Subtotal + Shipping + Taxes`); order times are
    `days_ago` days before `now`, fulfilled a day later, in New York time.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for index, order in enumerate(DEMO_ORDERS):
        placed = (now - timedelta(days=order.days_ago)).replace(microsecond=0)
        fulfilled_at = placed + timedelta(days=1)
        gross = sum((line.price * line.quantity for line in order.lines), Decimal("0"))
        discount = (
            (gross * Decimal("0.10")).quantize(Decimal("0.01"))
            if order.discount_code
            else Decimal("0.00")
        )
        subtotal = gross - discount
        taxes = (subtotal * order.tax_rate).quantize(Decimal("0.01"))
        total = subtotal + order.shipping + taxes
        partial = any(not line.fulfilled for line in order.lines)
        for position, line in enumerate(order.lines):
            row = dict.fromkeys(COLUMNS, "")
            row.update(
                {
                    "Name": order.number,
                    "Email": order.email,
                    "Lineitem quantity": str(line.quantity),
                    "Lineitem name": line.name,
                    "Lineitem price": _money(line.price),
                    "Lineitem sku": line.sku,
                    "Lineitem requires shipping": "true" if line.requires_shipping else "false",
                    "Lineitem taxable": "true",
                    "Lineitem fulfillment status": "fulfilled" if line.fulfilled else "pending",
                    "Lineitem discount": _money(discount if position == 0 else Decimal("0.00")),
                    "Vendor": "Demo Outfitters",
                }
            )
            if position == 0:
                row.update(
                    {
                        "Financial Status": order.financial_status,
                        "Paid at": _fmt(placed),
                        "Fulfillment Status": "unfulfilled"
                        if order.cancelled
                        else ("partial" if partial else "fulfilled"),
                        "Fulfilled at": "" if order.cancelled else _fmt(fulfilled_at),
                        "Accepts Marketing": "yes",
                        "Currency": "USD",
                        "Subtotal": _money(subtotal),
                        "Shipping": _money(order.shipping),
                        "Taxes": _money(taxes),
                        "Total": _money(total),
                        "Discount Code": order.discount_code,
                        "Discount Amount": _money(discount),
                        "Shipping Method": "Standard",
                        "Created at": _fmt(placed),
                        "Billing Name": order.person,
                        "Shipping Name": order.person,
                        "Shipping Street": f"{100 + index} Example Street",
                        "Shipping Address1": f"{100 + index} Example Street",
                        "Shipping City": order.city,
                        "Shipping Zip": order.zip,
                        "Shipping Province": order.province,
                        "Shipping Country": "US",
                        "Cancelled at": _fmt(placed + timedelta(hours=2))
                        if order.cancelled
                        else "",
                        "Payment Method": "Shopify Payments",
                        "Payment Reference": f"c{31000000 + index}.1",
                        "Refunded Amount": _money(order.refunded_amount),
                        "Outstanding Balance": "0.00",
                        "Id": str(5_900_000_001_000 + index),
                        "Tags": order.tags,
                        "Risk Level": order.risk,
                        "Source": "web",
                        "Tax 1 Name": "NY Sales Tax 8.875%",
                        "Tax 1 Value": _money(taxes),
                    }
                )
            writer.writerow(row)
    return "\ufeff" + out.getvalue()


@dataclass
class DemoResult:
    tenant: Tenant
    staff_username: str
    staff_password: str
    orders_created: int
    orders_updated: int
    tracking_urls: list[tuple[str, str, str]] = field(default_factory=list)


def _demo_tenant() -> Tenant:
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = tenant_create(
            slug=DEMO_SLUG,
            name="Demo Outfitters",
            country="US",
            time_zone="America/New_York",
            currency="USD",
            support_email="help@demo-outfitters.example",
            escalation_email="escalations@demo-outfitters.example",
        )
    return tenant


@transaction.atomic
def _demo_staff(tenant: Tenant, data_dir: Path) -> tuple[str, str]:
    """The demo staff login: an admin of the demo tenant (not a superuser)."""
    password_file = data_dir / "demo-staff-password.txt"
    user_model = get_user_model()
    user = user_model.objects.filter(username=STAFF_USERNAME).first()
    if password_file.is_file() and user is not None:
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        if user is None:
            user = user_model(username=STAFF_USERNAME, email="staff@demo-outfitters.example")
        user.set_password(password)
        user.save()
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
    if not Membership.objects.filter(tenant=tenant, user=user, role=Role.ADMIN).exists():
        membership_set(tenant=tenant, user=user, role=Role.ADMIN)
    return STAFF_USERNAME, password


def demo_seed(*, now: datetime, data_dir: Path | None = None) -> DemoResult:
    """Create or refresh the demo tenant, its staff login, orders and returns. Idempotent."""
    data_dir = Path(data_dir or settings.DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    tenant = _demo_tenant()
    username, password = _demo_staff(tenant, data_dir)
    export = data_dir / "demo-orders-export.csv"
    export.write_text(demo_export_csv(now=now), encoding="utf-8")
    imported = order_import_csv(tenant=tenant, stream_or_path=export, now=now)
    result = DemoResult(
        tenant=tenant,
        staff_username=username,
        staff_password=password,
        orders_created=imported.created,
        orders_updated=imported.updated,
    )
    return result


def portal_url(tenant: Tenant) -> str:
    return tenant_absolute_url(tenant, "/")
