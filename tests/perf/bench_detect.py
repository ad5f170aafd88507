#!/usr/bin/env python
"""Benchmark: exception detection over 1,000,000 open returns on PostgreSQL (issue 5).

Run by `make bench` (a plain script, not collected by pytest). Needs
`DATABASE_URL` pointing at PostgreSQL; it creates (and drops first) a scratch
database `rp_bench_detect` on that server, migrates it and generates, with
bulk SQL (`INSERT ... SELECT generate_series`), one tenant with 10,000 orders
and 1,000,000 open returns, each with an inbound shipment and a refund, whose
due columns are set as the refresh services would set them: most in the
future (awaiting a scan, in transit, delivered, received; 2% of refunds
approved and not yet due), a fraction due now, spread over the detector kinds.

Then, for 0.1%, 1% and 2% due (and 0% as a floor), it times a full detection
run (opens every due exception and queues the alerts) and a second run with
nothing new, and prints `EXPLAIN ANALYZE` plans of every detector's queries at
1%. Budgets (issue 5): at 1% due, full run <= 5 s and nothing-new run <= 1 s;
the script exits 1 when one is missed or the counts are wrong.

Environment: `DATABASE_URL` (required), `REDIS_URL` (optional: alert send
tasks go to Redis and are purged at the end; without it sends are counted,
not sent), `BENCH_RETURNS` (default 1000000).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SCRATCH_DB = "rp_bench_detect"
RETURNS = int(os.environ.get("BENCH_RETURNS", "1000000"))
ORDERS = max(1, RETURNS // 100)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
N = "TIMESTAMPTZ '2026-11-20 12:00:00+00'"
PRIME = 7919  # coprime with 10**6: i -> i * PRIME mod RETURNS is a permutation when RETURNS = 10**k
BUDGET_FULL_S = 5.0
BUDGET_IDLE_S = 1.0


def fail(message: str) -> None:
    print(f"bench_detect: {message}", file=sys.stderr)
    sys.exit(2)


def scratch_database() -> str:
    """Create the scratch database on DATABASE_URL's server; return its URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        fail("DATABASE_URL must point to PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/x)")
    import psycopg2

    parts = urlparse(url)
    admin_url = urlunparse(parts._replace(path="/postgres"))
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {SCRATCH_DB}")
    conn.close()
    return urlunparse(parts._replace(path=f"/{SCRATCH_DB}"))


def setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="rp-bench-"))
    os.environ.pop("DEBUG", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "returns_portal.settings")
    import django

    django.setup()


# --------------------------------------------------------------------------
# Data: every column as SQL of `r` (a permutation of the row number) and
# whether the row is due (`r < due`); kinds of due rows by `r % 100`.
# --------------------------------------------------------------------------
def h(hours: str) -> str:
    return f"make_interval(hours => ({hours})::int)"


def due_bucket(lo: int, hi: int) -> str:
    return f"(r % 100 >= {lo} AND r % 100 < {hi})"


# Due rows, by bucket (share of the due rows):
FIRST_SCAN = due_bucket(0, 40)  # no_first_scan
NO_MOVE = due_bucket(40, 60)  # no_movement
TRANSIT = due_bucket(60, 70)  # transit_overdue
CHECKIN = due_bucket(70, 80)  # delivered_not_received
INSPECT = due_bucket(80, 85)  # inspection_overdue
CARRIER = due_bucket(85, 90)  # carrier_exception
UNMAPPED = due_bucket(90, 93)  # unmapped_status
DROPOFF = due_bucket(93, 96)  # claimed_dropoff_no_scan
REFUND = due_bucket(96, 100)  # refund_overdue
EXPECTED_SHARE = {
    "no_first_scan": 40,
    "no_movement": 20,
    "transit_overdue": 10,
    "delivered_not_received": 10,
    "inspection_overdue": 5,
    "carrier_exception": 5,
    "unmapped_status": 3,
    "claimed_dropoff_no_scan": 3,
    "refund_overdue": 4,
}
# Open rows that are not due, by `r % 10`: 0-2 awaiting a scan, 3-7 in transit,
# 8 delivered (check-in due later), 9 received (inspection due later).
AWAITING = "(r % 10 <= 2)"
MOVING = "(r % 10 BETWEEN 3 AND 7)"
DELIVERED = "(r % 10 = 8)"
RECEIVED = "(r % 10 = 9)"


def case(due: str, branches: list[tuple[str, str]], default: str) -> str:
    """`CASE` over due buckets when the row is due, else over the base states."""
    due_part = " ".join(f"WHEN {due} AND {cond} THEN {value}" for cond, value in branches)
    return f"(CASE {due_part} ELSE {default} END)"


def shipment_columns(due: str) -> dict[str, str]:
    waiting_due = f"{N} + {h('1 + r % 60')}"
    base_status = (
        f"(CASE WHEN {AWAITING} THEN 'label_created' WHEN {MOVING} THEN 'in_transit' "
        f"ELSE 'delivered' END)"
    )
    in_transit_due = f"(NOT ({due}) AND {MOVING}) OR (({due}) AND ({NO_MOVE} OR {TRANSIT} OR {REFUND} OR {CARRIER}))"
    waiting = f"(NOT ({due}) AND {AWAITING}) OR (({due}) AND ({FIRST_SCAN} OR {DROPOFF}))"
    return {
        "status": case(
            due,
            [
                (f"({NO_MOVE} OR {TRANSIT} OR {REFUND})", "'in_transit'"),
                (CARRIER, "'exception'"),
                (f"({UNMAPPED})", "'unknown'"),
                (f"({FIRST_SCAN} OR {DROPOFF})", "'label_created'"),
                (f"({CHECKIN} OR {INSPECT})", "'delivered'"),
            ],
            base_status,
        ),
        "exception_reason": f"(CASE WHEN ({due}) AND {CARRIER} THEN 'delayed' ELSE '' END)",
        "status_at": case(
            due,
            [(CARRIER, f"{N} - {h('5')}"), (UNMAPPED, f"{N} - {h('30 + r % 10')}")],
            f"(CASE WHEN {AWAITING} THEN NULL ELSE {N} - {h('24')} END)",
        ),
        "last_event_at": case(
            due,
            [
                (f"({FIRST_SCAN} OR {DROPOFF})", "NULL"),
                (UNMAPPED, f"{N} - {h('30 + r % 10')}"),
                (NO_MOVE, f"{N} - {h('121 + r % 48')}"),
            ],
            f"(CASE WHEN {AWAITING} THEN NULL ELSE {N} - {h('24')} END)",
        ),
        "last_scan_at": f"(CASE WHEN ({waiting}) OR (({due}) AND {UNMAPPED}) THEN NULL ELSE {N} - {h('24')} END)",
        "shipped_at": f"(CASE WHEN ({waiting}) OR (({due}) AND {UNMAPPED}) THEN NULL ELSE {N} - {h('48')} END)",
        "first_scan_due_at": case(
            due,
            [
                (FIRST_SCAN, f"{N} - {h('1 + r % 72')}"),
                (f"({DROPOFF} OR {UNMAPPED})", f"{N} + {h('10')}"),
            ],
            f"(CASE WHEN {AWAITING} THEN {waiting_due} ELSE NULL END)",
        ),
        "next_event_due_at": case(
            due,
            [(NO_MOVE, f"{N} - {h('1 + r % 48')}")],
            f"(CASE WHEN {in_transit_due} THEN {N} + {h('96')} ELSE NULL END)",
        ),
        "transit_due_at": case(
            due,
            [(TRANSIT, f"{N} - {h('1 + r % 48')}")],
            f"(CASE WHEN {in_transit_due} THEN {N} + {h('24 + r % 48')} ELSE NULL END)",
        ),
    }


def return_columns(due: str) -> dict[str, str]:
    return {
        "status": (
            f"(CASE WHEN {AWAITING} THEN 'label_created' WHEN {MOVING} THEN 'in_transit' "
            f"WHEN {DELIVERED} THEN 'delivered' ELSE 'received' END)"
        ),
        "checkin_due_at": case(
            due,
            [(CHECKIN, f"{N} - {h('1 + r % 20')}"), (INSPECT, "NULL")],
            f"(CASE WHEN {DELIVERED} AND NOT ({due}) THEN {N} + {h('1 + r % 20')} ELSE NULL END)",
        ),
        "inspection_due_at": case(
            due,
            [(INSPECT, f"{N} - {h('1 + r % 40')}"), (CHECKIN, "NULL")],
            f"(CASE WHEN {RECEIVED} AND NOT ({due}) THEN {N} + {h('1 + r % 40')} ELSE NULL END)",
        ),
        "dropoff_scan_due_at": f"(CASE WHEN ({due}) AND {DROPOFF} THEN {N} - {h('1 + r % 10')} ELSE NULL END)",
    }


def refund_columns(due: str) -> dict[str, str]:
    approved_later = f"(NOT ({due}) AND r % 50 = 1)"
    return {
        "state": f"(CASE WHEN (({due}) AND {REFUND}) OR {approved_later} THEN 'approved' ELSE 'pending' END)",
        "approved_at": f"(CASE WHEN (({due}) AND {REFUND}) OR {approved_later} THEN {N} - {h('72')} ELSE NULL END)",
        "refund_due_at": (
            f"(CASE WHEN ({due}) AND {REFUND} THEN {N} - {h('1 + r % 20')} "
            f"WHEN {approved_later} THEN {N} + {h('10')} ELSE NULL END)"
        ),
    }


def insert_select(cursor, model, columns: dict[str, str], *, count: int) -> None:  # type: ignore[no-untyped-def]
    """`INSERT INTO <model> SELECT ... FROM generate_series(1, count)`; every column not in
    `columns` gets its Django default as a parameter (callable defaults must be overridden)."""
    from django.db import connection

    names, exprs, params = [], [], []
    for field in model._meta.concrete_fields:
        names.append(f'"{field.column}"')
        if field.column in columns:
            exprs.append(columns[field.column].replace("%", "%%"))  # `%` is modulo here
            continue
        value = field.get_default()
        if value is None and not field.null:
            raise RuntimeError(f"{model.__name__}.{field.name} needs a value")
        exprs.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    sql = (
        f'INSERT INTO "{model._meta.db_table}" ({", ".join(names)}) '  # noqa: S608 (constants only)
        f"SELECT {', '.join(exprs)} FROM "
        f"(SELECT i, (i::bigint * {PRIME}) %% {RETURNS} AS r "
        f"FROM generate_series(1, {count}) AS g(i)) AS s"
    )
    cursor.execute(sql, params)


def set_due_state(cursor, *, due_rows: int, previous: int) -> None:  # type: ignore[no-untyped-def]
    """Move the data from `previous` due rows to `due_rows` due rows (the rows with
    `r < limit` are recomputed; every other row keeps its base, not-due state)."""
    limit = max(due_rows, previous)
    due = f"r < {due_rows}"
    for table, columns in (
        ("rma_shipment", shipment_columns(due)),
        ("rma_returnrequest", return_columns(due)),
        ("refunds_refund", refund_columns(due)),
    ):
        assignments = ", ".join(f'"{col}" = {expr}' for col, expr in columns.items())
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM "  # noqa: S608 (constants only)
            f"(SELECT id AS rid, (id::bigint * {PRIME}) % {RETURNS} AS r FROM {table}) AS s "
            f"WHERE t.id = s.rid AND s.r < {limit}"
        )


def generate(tenant) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    from refunds.models import Refund
    from rma.models import Order, ReturnCentre, ReturnRequest, Shipment

    centre = ReturnCentre.objects.get(tenant=tenant, is_default=True)
    t = tenant.pk
    due = "FALSE"
    with connection.cursor() as cur:
        insert_select(
            cur,
            Order,
            {
                "id": "i",
                "tenant_id": str(t),
                "number": "'#' || (1000 + i)",
                "number_key": "(1000 + i)::text",
                "email": "'buyer' || i || '@example.com'",
                "currency": "'USD'",
                "placed_at": f"{N} - interval '20 days'",
                "total": "100",
                "imported_at": f"{N} - interval '20 days'",
                "updated_at": f"{N} - interval '20 days'",
            },
            count=ORDERS,
        )
        rr = return_columns(due)
        insert_select(
            cur,
            ReturnRequest,
            {
                "id": "i",
                "tenant_id": str(t),
                "rma_number": "'RMA-' || (100000 + i)",
                "token": "md5('token' || i)",
                "order_id": f"1 + (i % {ORDERS})",
                "return_centre_id": str(centre.pk),
                "email": "'customer' || i || '@example.com'",
                "expected_refund_amount": "50",
                "expected_refund_currency": "'USD'",
                "created_at": f"{N} - interval '5 days'",
                "updated_at": f"{N} - interval '1 day'",
                **rr,
            },
            count=RETURNS,
        )
        insert_select(
            cur,
            Shipment,
            {
                "id": "i",
                "tenant_id": str(t),
                "return_request_id": "i",
                "carrier": "'ups'",
                "tracking_provider": "'ups'",
                "tracking_number": "'1ZBENCH' || lpad(i::text, 11, '0')",
                "created_at": f"{N} - interval '4 days'",
                "updated_at": f"{N} - interval '1 day'",
                **shipment_columns(due),
            },
            count=RETURNS,
        )
        insert_select(
            cur,
            Refund,
            {
                "id": "i",
                "tenant_id": str(t),
                "return_request_id": "i",
                "uuid": "md5('refund' || i)::uuid",
                "currency": "'USD'",
                "amount": "50",
                "created_at": f"{N} - interval '5 days'",
                "updated_at": f"{N} - interval '1 day'",
                **refund_columns(due),
            },
            count=RETURNS,
        )
        for table in ("rma_order", "rma_returnrequest", "rma_shipment", "refunds_refund"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            )


def reset_exceptions() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE rma_exceptionactivity, rma_replacementoffer, rma_returnexception, "
            "rma_notification RESTART IDENTITY CASCADE"
        )


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "VACUUM ANALYZE rma_shipment, rma_returnrequest, refunds_refund, rma_returnexception"
        )


def timed_run(**kwargs):  # type: ignore[no-untyped-def]
    from returns_portal.detection import LEASE_NAME, LEASE_TTL, detection_run
    from returns_portal.tenancy.leases import job_lease

    started = time.perf_counter()
    with job_lease(LEASE_NAME, ttl=LEASE_TTL) as holder:
        assert holder is not None
        summary = detection_run(now=NOW, **kwargs)
    return time.perf_counter() - started, {line["kind"]: line for line in summary.lines()}


def print_plan(title: str, queryset) -> None:  # type: ignore[no-untyped-def]
    plan = queryset.explain(analyze=True)
    print(f"\n-- {title}")
    for line in plan.splitlines():
        print("   " + line)


def main() -> int:
    db_url = scratch_database()
    setup_django(db_url)
    from celery import current_app
    from django.conf import settings
    from django.core.management import call_command

    from returns_portal.detection import DETECTORS
    from returns_portal.tenancy.services import tenant_create
    from rma.detection import pending_candidates

    sends = {"count": 0}
    if not settings.REDIS_URL:
        # No broker to talk to: count the alert nudges instead of sending them.
        current_app.send_task = lambda *a, **k: sends.__setitem__("count", sends["count"] + 1)

    print(f"bench_detect: scratch database {SCRATCH_DB}; {RETURNS:,} open returns")
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    tenant = tenant_create(
        slug="bench",
        name="Bench Outfitters",
        country="US",
        time_zone="America/New_York",
        support_email="support@bench.example",
        escalation_email="escalations@bench.example",
    )
    generate(tenant)
    analyze()
    print(
        f"generated {RETURNS:,} returns, shipments and refunds in {time.perf_counter() - started:.1f} s"
    )

    from django.db import connection

    results = []
    previous = 0
    failures: list[str] = []
    for share in (0.0, 0.001, 0.01, 0.02):
        due_rows = round(RETURNS * share)
        with connection.cursor() as cur:
            set_due_state(cur, due_rows=due_rows, previous=previous)
        previous = due_rows
        reset_exceptions()
        analyze()
        if share == 0.01:
            print("\n== EXPLAIN ANALYZE at 1% due: open queries (first batch of 5,000)")
            for detector in DETECTORS:
                print_plan(
                    f"{detector.kind}: candidates (the SELECT of the INSERT ... SELECT)",
                    pending_candidates(detector, NOW)
                    .order_by("pk")
                    .values_list("tenant_id", "x_return_id", "x_shipment_id", "x_due")[:5000],
                )
        full_s, counts = timed_run()
        idle_s, idle_counts = timed_run()
        opened = sum(c["opened"] for c in counts.values())
        alerts = sum(c["alerts"] for c in counts.values())
        idle_changes = sum(v for c in idle_counts.values() for k, v in c.items() if k != "kind")
        results.append((share, due_rows, full_s, opened, alerts, idle_s))
        if opened != due_rows:
            failures.append(f"{share:.1%}: opened {opened}, expected {due_rows}")
        if idle_changes:
            failures.append(f"{share:.1%}: the second run changed {idle_changes} rows")
        for kind in EXPECTED_SHARE:
            lo, hi = lo_hi(kind)
            expected = sum(1 for r in range(due_rows) if lo <= r % 100 < hi)
            if counts[kind]["opened"] != expected:
                failures.append(
                    f"{share:.1%}: {kind} opened {counts[kind]['opened']}, expected {expected}"
                )
        if share == 0.01:
            if full_s > BUDGET_FULL_S:
                failures.append(f"full run at 1% took {full_s:.2f} s > {BUDGET_FULL_S} s")
            if idle_s > BUDGET_IDLE_S:
                failures.append(f"nothing-new run at 1% took {idle_s:.2f} s > {BUDGET_IDLE_S} s")
            print(
                "\n== EXPLAIN ANALYZE at 1% due, after the full run (what a nothing-new run "
                "executes): open, resolve and update queries"
            )
            for detector in DETECTORS:
                print_plan(
                    f"{detector.kind}: candidates",
                    pending_candidates(detector, NOW)
                    .order_by("pk")
                    .values_list("tenant_id", "x_return_id", "x_shipment_id", "x_due")[:5000],
                )
                if detector.cleared is not None:
                    print_plan(
                        f"{detector.kind}: cleared",
                        detector.cleared(NOW).order_by("pk").values_list("pk", "x_why")[:5000],
                    )
                if detector.changed is not None:
                    print_plan(
                        f"{detector.kind}: changed",
                        detector.changed(NOW).order_by("pk").values_list("pk", "x_reason")[:5000],
                    )
            print(
                "\n-- per kind at 1%: "
                + ", ".join(f"{k}={c['opened']}" for k, c in counts.items() if c["opened"])
            )

    print(f"\n== detection over {RETURNS:,} open returns (PostgreSQL)")
    print(
        f"{'due':>6} {'due rows':>9} {'full run':>9} {'opened':>8} {'alerts':>7} {'nothing new':>12}"
    )
    for share, due_rows, full_s, opened, alerts, idle_s in results:
        print(
            f"{share:>6.1%} {due_rows:>9,} {full_s:>8.2f}s {opened:>8,} {alerts:>7,} {idle_s:>11.2f}s"
        )
    base = {share: (full_s, idle_s) for share, _d, full_s, _o, _a, idle_s in results}
    if base.get(0.001) and base.get(0.02):
        print(
            f"scaling: 20x the due rows (0.1% -> 2%) costs {base[0.02][0] / base[0.001][0]:.1f}x "
            f"the full run; the open returns are the same {RETURNS:,}"
        )
    if not settings.REDIS_URL:
        print(f"alert send nudges counted (no REDIS_URL): {sends['count']:,}")
    else:
        current_app.control.purge()
    if failures:
        print("\nFAIL:\n  " + "\n  ".join(failures))
        return 1
    print("\nOK: budgets met (1% due: full <= 5 s, nothing new <= 1 s) and counts exact")
    return 0


def lo_hi(kind: str) -> tuple[int, int]:
    start = 0
    for name, pct in EXPECTED_SHARE.items():
        if name == kind:
            return start, start + pct
        start += pct
    raise KeyError(kind)


if __name__ == "__main__":
    sys.exit(main())
