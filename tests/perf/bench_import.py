"""Benchmark: import a generated 20,000-order Shopify export and print orders/s.

Plain script, not collected by pytest:

    .venv/bin/python tests/perf/bench_import.py [--orders 20000] [--seed 7]

Without `DATABASE_URL` it runs on a fresh SQLite database in a temporary
`DATA_DIR` (deleted afterwards). With `DATABASE_URL` it migrates and uses that
database (point it at a throw-away one: a tenant `bench-<timestamp>` is added
and left there). The export has 1-3 line items per order, Shopify's 71
columns, a multi-line note on every 10th order, USD/EUR/JPY/KWD, discounts and
partial refunds, so the parser and the refund matcher do real work. Prints the
first import (all created) and a re-import of the same file (all unchanged).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "orders"))

from build_fixtures import SAMPLE_HEADER  # noqa: E402

CURRENCIES = (("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3))
TITLES = ("Trail Jacket", "Wool Socks", "Canvas Tote", "Enamel Mug", "Linen Shirt", "Camp Stove")


def money(value: Decimal, exponent: int) -> str:
    return f"{value:.{exponent}f}"


def generate(path: Path, *, orders: int, seed: int) -> int:
    """Write `orders` orders to `path`; returns the number of line items."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    line_count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff")
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(SAMPLE_HEADER)
        for n in range(orders):
            currency, exponent = CURRENCIES[n % len(CURRENCIES)]
            unit = Decimal(1).scaleb(-exponent)
            scale = Decimal(100) if exponent == 0 else Decimal(1)
            items = []
            for position in range(rng.randint(1, 3)):
                quantity = rng.randint(1, 3)
                price = (Decimal(rng.randint(500, 15000)) / 100 * scale).quantize(unit)
                discount = Decimal(0)
                if rng.random() < 0.3:
                    discount = (price * quantity / 10).quantize(unit)
                items.append((position, quantity, price, discount))
            subtotal = sum((q * p - d for _, q, p, d in items), Decimal(0))
            shipping = (Decimal(5) * scale).quantize(unit)
            taxes = (subtotal * Decimal("0.08")).quantize(unit)
            total = subtotal + shipping + taxes
            refunded = Decimal(0)
            status = "paid"
            if rng.random() < 0.1:
                _, q, p, d = items[0]
                refunded = p - (d / q).quantize(unit)
                status = "partially_refunded"
            created = start + timedelta(minutes=7 * n)
            for position, quantity, price, discount in items:
                row = dict.fromkeys(SAMPLE_HEADER, "")
                row["Name"] = f"#{100000 + n}"
                row["Email"] = f"Buyer{n % 5000}@Example.com"
                if position == 0:
                    row.update(
                        {
                            "Financial Status": status,
                            "Paid at": created.strftime("%Y-%m-%d %H:%M:%S +0000"),
                            "Fulfillment Status": "fulfilled",
                            "Currency": currency,
                            "Subtotal": money(subtotal, exponent),
                            "Shipping": money(shipping, exponent),
                            "Taxes": money(taxes, exponent),
                            "Total": money(total, exponent),
                            "Created at": (created - timedelta(hours=4)).strftime(
                                "%Y-%m-%d %H:%M:%S -0400"
                            ),
                            "Billing Name": f"Buyer {n % 5000}",
                            "Shipping Name": f"Buyer {n % 5000}",
                            "Shipping Address1": f"{n} Example Street",
                            "Shipping City": "Springfield",
                            "Shipping Zip": "99999",
                            "Shipping Country": "US",
                            "Notes": "Leave at the door,\nplease." if n % 10 == 0 else "",
                            "Refunded Amount": money(refunded, exponent),
                            "Id": str(7000000000000 + n),
                            "Tags": "bench, generated",
                            "Risk Level": "Low",
                        }
                    )
                row.update(
                    {
                        "Lineitem quantity": str(quantity),
                        "Lineitem name": f"{TITLES[(n + position) % len(TITLES)]} - {position}",
                        "Lineitem price": money(price, exponent),
                        "Lineitem sku": f"SKU-{(n + position) % 997}",
                        "Lineitem requires shipping": "true",
                        "Lineitem taxable": "true",
                        "Lineitem fulfillment status": "fulfilled",
                        "Lineitem discount": money(discount, exponent),
                    }
                )
                writer.writerow([row[column] for column in SAMPLE_HEADER])
                line_count += 1
    return line_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="rp-bench-import-")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATA_DIR"] = workdir.name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "returns_portal.settings")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from returns_portal.tenancy.services import tenant_create
    from rma.order_services import order_import_csv

    call_command("migrate", verbosity=0)
    tenant = tenant_create(slug=f"bench-{int(time.time())}", name="Bench")
    export = Path(workdir.name) / "orders_export.csv"
    began = time.perf_counter()
    lines = generate(export, orders=args.orders, seed=args.seed)
    generated = time.perf_counter() - began
    print(
        f"generated {args.orders} orders / {lines} line items "
        f"({export.stat().st_size / 1e6:.1f} MB) in {generated:.1f} s; "
        f"database: {connection.vendor}"
    )
    for label in ("first import", "re-import"):
        now = datetime.now(UTC)
        began = time.perf_counter()
        result = order_import_csv(tenant=tenant, stream_or_path=export, now=now)
        elapsed = time.perf_counter() - began
        print(
            f"{label}: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.failed} failed in {elapsed:.1f} s "
            f"= {args.orders / elapsed:,.0f} orders/s ({lines / elapsed:,.0f} line items/s)"
        )
        if result.failed:
            print("  first errors:", *result.errors[:5], sep="\n  ")
    workdir.cleanup()


if __name__ == "__main__":
    main()
