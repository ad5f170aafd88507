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
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from returns_portal import workflows
from returns_portal.tenancy.models import Membership, Role, Tenant
from returns_portal.tenancy.services import membership_set, tenant_absolute_url, tenant_create
from rma import labels
from rma.importers.shopify import COLUMNS
from rma.models import Milestone, Order, ReturnRequest
from rma.order_services import order_import_csv
from rma.photos import ProcessedPhoto, photo_process
from rma.services import (
    PickupInput,
    ReturnLineInput,
    return_centre_update,
    return_dropoff_claim,
    return_policy_update,
    return_request_create,
)

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
        tags="vip, loyal",
    ),
    DemoOrder(
        "#1002",
        "priya.natarajan@example.com",
        "Priya Natarajan",
        6,
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
        8,
        (DemoLine("Softshell Pant - 32", "SP-32", Decimal("119.00")),),
    ),
    DemoOrder(
        "#1010",
        "ethan.brooks@example.com",
        "Ethan Brooks",
        5,
        (
            DemoLine("Camp Chair", "CC-1", Decimal("79.00")),
            DemoLine("Headlamp", "HL-300", Decimal("39.00"), fulfilled=False),
        ),
        risk="Medium",
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
        9,
        (
            DemoLine("Trekking Poles", "TP-1", Decimal("89.00")),
            DemoLine("Trail Runner Shoe - 10", "TRS-10", Decimal("129.00")),
        ),
    ),
    DemoOrder(
        "#1015",
        "lena.vogel@example.com",
        "Lena Vogel",
        4,
        (
            DemoLine("Rain Shell - M", "RS-M", Decimal("189.00")),
            DemoLine("Merino Tee - S", "MT-S", Decimal("45.00"), quantity=2),
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
        return_centre_update(
            tenant=tenant,
            name="Demo Outfitters Returns",
            address="Demo Outfitters Returns\n250 Depot Road, Dock 4\nSecaucus, NJ 07094",
            country="US",
            subdivision="NJ",
            time_zone="America/New_York",
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
    """Create or refresh the demo tenant, its staff login, orders and returns. Idempotent:
    the orders are re-imported (upsert); returns are made only when the tenant has none."""
    data_dir = Path(data_dir or settings.DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    tenant = _demo_tenant()
    username, password = _demo_staff(tenant, data_dir)
    return_policy_update(tenant=tenant, final_sale_tags=["final-sale"])
    export = data_dir / "demo-orders-export.csv"
    export.write_text(demo_export_csv(now=now), encoding="utf-8")
    imported = order_import_csv(tenant=tenant, stream_or_path=export, now=now)
    if not ReturnRequest.objects.filter(tenant=tenant).exists():
        demo_returns_seed(tenant=tenant, now=now)
    result = DemoResult(
        tenant=tenant,
        staff_username=username,
        staff_password=password,
        orders_created=imported.created,
        orders_updated=imported.updated,
    )
    notes = {spec.order: spec.shows for spec in DEMO_RETURNS}
    for rr in (
        ReturnRequest.objects.filter(tenant=tenant).select_related("order").order_by("rma_number")
    ):
        result.tracking_urls.append(
            (
                rr.rma_number,
                notes.get(rr.order.number, rr.status),
                tenant_absolute_url(tenant, f"/r/{rr.token}/"),
            )
        )
    return result


# --------------------------------------------------------------------------
# Demo returns: every milestone, every default refund rule, an exchange and
# the exceptions detection catches, all through the production services.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoReturn:
    """A demo return: made `age_hours` before now from `order`'s lines.

    `lines` are `(sku, quantity, reason)` or `(sku, quantity, reason, exchange_sku)`;
    `checkin_after` / `inspect_after` are hours after the label; `claim_after`
    is when the customer says "I've dropped it off". The sandbox script each
    label follows is fixed by the tenant and RMA number (`sandbox_label_number`).
    """

    order: str
    age_hours: float
    lines: tuple[tuple, ...]
    shows: str
    method: str = "drop_off"
    photo: bool = False
    claim_after: float | None = None
    checkin_after: float | None = None
    checkin_condition: str = "intact"
    inspect_after: float | None = None
    exchange_after: float | None = None


#: In creation order: RMA-100001 .. RMA-100011 of the `demo` tenant.
DEMO_RETURNS: tuple[DemoReturn, ...] = (
    DemoReturn("#1001", 40, (("TRS-9", 1, "too_small"),), "carrier exception: delay"),
    DemoReturn(
        "#1002",
        90,
        (("DP-S", 1, "not_as_described"),),
        "refunded: High value rule, after inspection",
        checkin_after=60,
        inspect_after=70,
    ),
    DemoReturn(
        "#1003",
        120,
        (("RS-L", 1, "damaged"),),
        "refunded: High risk rule, after inspection",
        photo=True,
        checkin_after=60,
        inspect_after=72,
    ),
    DemoReturn(
        "#1004",
        80,
        (("HS-3", 2, "changed_mind"),),
        "dropped off (customer), no scan: exceptions",
        claim_after=20,
    ),
    DemoReturn("#1005", 1, (("FJ-M", 1, "too_large"),), "label created"),
    DemoReturn(
        "#1006",
        10,
        (("DPK-24", 1, "changed_mind"),),
        "in transit; refunded at first scan (Low risk)",
    ),
    DemoReturn(
        "#1007",
        47,
        (("TRS-8", 1, "too_small"),),
        "out for delivery; Standard refund waits for delivery",
    ),
    DemoReturn(
        "#1008",
        55,
        (("IB-750", 2, "changed_mind"),),
        "delivered; refunded at first scan (Low risk)",
    ),
    DemoReturn(
        "#1009",
        130,
        (("SP-32", 1, "too_large"),),
        "received; inspection overdue: exception",
        checkin_after=60,
    ),
    DemoReturn(
        "#1010",
        80,
        (("CC-1", 1, "not_as_described"),),
        "delivered, not checked in: exception; Standard refund",
        method="pickup",
    ),
    DemoReturn(
        "#1014",
        140,
        (("TRS-10", 1, "too_large", "TRS-11"),),
        "exchanged for TRS-11",
        checkin_after=80,
        inspect_after=90,
        exchange_after=92,
    ),
)


def _demo_photo() -> ProcessedPhoto:
    """A small generated JPEG (a torn-seam swatch) run through the same checks as uploads."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (196, 60, 40))
    draw = ImageDraw.Draw(image)
    draw.line((80, 400, 560, 80), fill=(240, 230, 220), width=18)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return photo_process(
        SimpleUploadedFile("damage.jpg", buffer.getvalue(), content_type="image/jpeg")
    )


def _run_owed(now: datetime) -> None:
    """What the worker does when nudged: dispatch owed milestones, issue approved refunds."""
    from refunds.models import Refund
    from refunds.services import refund_issue

    for _ in range(6):
        owed = list(
            Milestone.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True)
        )
        approved = list(Refund.objects.filter(state="approved").values_list("pk", "tenant_id"))
        if not owed and not approved:
            return
        for pk in owed:
            workflows.milestone_dispatch(milestone_id=pk, now=now)
        for pk, tenant_id in approved:
            refund_issue(tenant_id=tenant_id, refund_id=pk, now=now)


def demo_returns_seed(*, tenant: Tenant, now: datetime) -> list[ReturnRequest]:
    """Make `DEMO_RETURNS`: request, sandbox label, customer claims, carrier scans
    answered to polling at `now`, warehouse check-in and inspection, refunds issued
    through the sandbox gateway, one exchange shipped, then exception detection."""
    from refunds.services import exchange_ship
    from returns_portal.detection import detection_run
    from rma.warehouse import InspectionEntry, checkin_record, inspection_record
    from tracking.polling import poll_due_run

    made: list[tuple[DemoReturn, ReturnRequest, datetime]] = []
    for spec in DEMO_RETURNS:
        order = Order.objects.get(tenant=tenant, number=spec.order)
        by_sku = {line.sku: line for line in order.lines.all()}
        inputs = []
        for entry in spec.lines:
            sku, quantity, reason = entry[:3]
            exchange_sku = entry[3] if len(entry) > 3 else ""
            inputs.append(
                ReturnLineInput(
                    line_id=by_sku[sku].line_id,
                    quantity=quantity,
                    reason=reason,
                    resolution="exchange" if exchange_sku else "refund",
                    exchange_sku=exchange_sku,
                )
            )
        created = now - timedelta(hours=spec.age_hours)
        pickup = None
        if spec.method == "pickup":
            start = (created + timedelta(days=1)).replace(
                hour=14, minute=0, second=0, microsecond=0
            )
            pickup = PickupInput(
                address=f"{order.shipping_address1}\n{order.shipping_city}, {order.shipping_province} {order.shipping_zip}",
                window_start=start,
                window_end=start + timedelta(hours=4),
            )
        rr = return_request_create(
            tenant=tenant,
            order=order,
            email=order.email,
            lines=inputs,
            method=spec.method,
            pickup=pickup,
            photos={0: [_demo_photo()]} if spec.photo else None,
            source="customer",
            now=created,
        )
        labels.label_purchase(shipment=rr.shipments.get(), timeout=10, now=created)
        _run_owed(created)
        if spec.claim_after is not None:
            return_dropoff_claim(
                tenant=tenant, return_request=rr, now=created + timedelta(hours=spec.claim_after)
            )
        made.append((spec, rr, created))

    # The sandbox answers each poll with the scans its script has made by then.
    poll_due_run(now=now, tenant_id=tenant.pk)
    _run_owed(now)
    for spec, rr, created in made:
        if spec.checkin_after is not None:
            at = created + timedelta(hours=spec.checkin_after)
            checkin_record(
                tenant=tenant,
                return_request=rr,
                condition=spec.checkin_condition,
                now=at,
                actor=STAFF_USERNAME,
                channel="scanner",
            )
            _run_owed(at)
        if spec.inspect_after is not None:
            at = created + timedelta(hours=spec.inspect_after)
            entries = [
                InspectionEntry(
                    return_line=line,
                    grade="A" if not spec.photo else "C",
                    disposition="restock" if not spec.photo else "refurbish",
                )
                for line in rr.lines.all()
            ]
            inspection_record(
                tenant=tenant,
                return_request=rr,
                entries=entries,
                now=at,
                actor=STAFF_USERNAME,
                channel="scanner",
            )
            _run_owed(at)
        if spec.exchange_after is not None:
            at = created + timedelta(hours=spec.exchange_after)
            exchange_ship(
                tenant=tenant,
                return_request=rr,
                carrier="sandbox",
                tracking_number=f"SBXOUT{rr.rma_number[-6:]}",
                now=at,
                actor=STAFF_USERNAME,
            )
            _run_owed(at)
    detection_run(now=now)
    _run_owed(now)
    return [rr for _spec, rr, _created in made]


def portal_url(tenant: Tenant) -> str:
    return tenant_absolute_url(tenant, "/")
