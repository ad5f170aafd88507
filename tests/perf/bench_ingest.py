"""Webhook ingest on PostgreSQL through gunicorn, then processing on a real
Celery worker. Run: ``python tests/perf/bench_ingest.py`` (``make bench``).
Not collected by pytest (no ``test_`` prefix).

What it does, in one run:

1. Recreates the scratch database ``rp_bench_ingest`` on the local
   PostgreSQL (``postgres://postgres@127.0.0.1:5432``), migrates it, flushes
   Redis database 11 (the broker for this run), and creates a tenant
   ``bench`` with EasyPost and AfterShip webhook secrets.
2. Builds the payload mix from the shared corpus (``../shared/carriers``) and
   our fixtures: EasyPost ``tracker.updated`` Events (the official event body,
   the test-mode tracker, our failure fixture) and AfterShip
   ``tracking_update`` webhooks (the FedEx CN->JP tracking, the first tracking
   of the trackings list, our refused fixture), round-robin, each delivery with
   its own tracking number (a shipment exists for each), event id and a fresh
   signed time. 30% of the deliveries sent are duplicates: half byte-identical
   retries (same event id: de-duplicated at the webhook), half the same tracker
   re-sent under a new event id (de-duplicated by ingest). Order shuffled
   (fixed seed). Each delivery is signed like the provider signs it.
3. Starts gunicorn (``BENCH_WORKERS`` processes x ``BENCH_THREADS`` gthread
   threads, default 4 x 4) on a free port and sends every delivery with
   ``BENCH_CONCURRENCY`` (16) client threads over keep-alive ``http.client``
   connections. Acknowledged = verified, raw stored, 2xx. Prints deliveries/s,
   events/s (events carried by acknowledged deliveries), p50/p99 latency.
   No Celery worker runs during this phase: the tasks queue up in Redis.
4. Starts ``celery worker`` (prefork, ``BENCH_WORKER_CONCURRENCY`` = CPU
   count) and times it until every accepted delivery is processed; prints
   deliveries/s and events stored/s.
5. Checks that nothing was lost or doubled: stored events == unique events
   sent (distinct dedupe keys per shipment, computed offline), every accepted
   delivery processed, every exact retry answered as a duplicate.

Targets (issue 4): >= 1,000 events/s acknowledged, p99 < 250 ms. Exit 1 when
a check fails or a target is missed; exit 2 when PostgreSQL or Redis cannot be
reached.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / ".." / "shared" / "carriers"
FIXTURES = ROOT / "tests" / "fixtures" / "carriers"

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "rp_bench_ingest"
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")
UNIQUE = int(os.environ.get("BENCH_DELIVERIES", "2100"))
DUPLICATE_SHARE = 0.30
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "0"))  # 0: one per gunicorn worker
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 2) + 2)))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", str(os.cpu_count() or 2)))
SECRETS = {"easypost": "bench-easypost-sécret", "aftership": "bench-aftership-secret"}
HOST = "bench.localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict[str, str]:
    from cryptography.fernet import Fernet

    data_dir = tempfile.mkdtemp(prefix="rp-bench-")
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "CI")},
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "bench-" + "k" * 50,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "BASE_DOMAIN": "localhost",
        "PUBLIC_SCHEME": "http",
        "DATA_DIR": data_dir,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "returns_portal.settings",
    }


def recreate_database() -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [DB_NAME],
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    conn.close()


# --------------------------------------------------------------------------
# The payload mix
# --------------------------------------------------------------------------
def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def templates() -> list[tuple[str, str, dict]]:
    """(label, provider, template object) round-robin. EasyPost templates are
    Tracker objects; AfterShip templates are Tracking objects."""
    out: list[tuple[str, str, dict]] = []
    event = _json(CORPUS / "easypost" / "tracker_updated_event_body.json")
    out.append(("easypost official tracker.updated", "easypost", event["result"]))
    out.append(
        (
            "easypost test-mode tracker",
            "easypost",
            _json(CORPUS / "easypost" / "tracker_test_mode_pre_transit.json"),
        )
    )
    failure = _json(FIXTURES / "easypost" / "tracker_failure_synthetic.json")
    out.append(("easypost failure (synthetic)", "easypost", failure.get("result", failure)))
    cn_jp = _json(CORPUS / "aftership" / "tracking_fedex_cn_jp_delivered.json")["data"]["tracking"]
    out.append(("aftership fedex CN->JP delivered", "aftership", cn_jp))
    listing = _json(
        CORPUS / "aftership" / "trackings_list_exception_then_delivered_and_expired.json"
    )
    out.append(("aftership exception then delivered", "aftership", listing["data"]["trackings"][0]))
    refused = _json(FIXTURES / "aftership" / "webhook_refused_synthetic.json")
    out.append(("aftership refused (synthetic)", "aftership", refused["msg"]))
    return out


def delivery_body(
    provider: str, template: dict, number: str, event_id: str, now: datetime
) -> bytes:
    obj = copy.deepcopy(template)
    if provider == "easypost":
        obj["tracking_code"] = number
        obj["id"] = f"trk_{number}"
        envelope = {
            "object": "Event",
            "id": event_id,
            "description": "tracker.updated",
            "mode": "test",
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "result": obj,
        }
    else:
        obj["tracking_number"] = number
        envelope = {
            "event": "tracking_update",
            "event_id": event_id,
            "is_tracking_first_tag": False,
            "ts": int(now.timestamp()),
            "msg": obj,
        }
    return json.dumps(envelope, ensure_ascii=False).encode()


def signature_headers(provider: str, body: bytes) -> dict[str, str]:
    import unicodedata

    secret = SECRETS[provider]
    if provider == "easypost":
        key = unicodedata.normalize("NFKD", secret).encode()
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        return {"X-Hmac-Signature": f"hmac-sha256-hex={digest}"}
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"aftership-hmac-sha256": base64.b64encode(digest).decode()}


def build(now: datetime):
    """Unique deliveries, the sent list (with 30% duplicates, shuffled) and the
    offline expectations."""
    from tracking.carriers.registry import get_adapter
    from tracking.ingest import storage_key
    from tracking.normalize import normalize_result

    tpls = templates()
    unique = []
    mix: dict[str, list[int]] = {}
    expected_unique_events = 0
    shipments = []
    for i in range(UNIQUE):
        label, provider, template = tpls[i % len(tpls)]
        number = f"BENCH{i:08d}"
        body = delivery_body(provider, template, number, f"evt_{i:08d}", now)
        results = get_adapter(provider).parse(body, now=now)
        events = [ev for r in results for ev in normalize_result(r)]
        keys = {storage_key(ev) for ev in events}
        expected_unique_events += len(keys)
        carrier = results[0].carrier
        shipments.append((number, carrier, provider))
        unique.append(
            {"provider": provider, "body": body, "events": len(events), "kind": "unique", "i": i}
        )
        mix.setdefault(label, [0, len(events)])[0] += 1
    rng = random.Random(20261120)
    total = round(UNIQUE / (1 - DUPLICATE_SHARE))
    sent = list(unique)
    for k in range(total - UNIQUE):
        original = rng.choice(unique)
        if k % 2 == 0:
            sent.append({**original, "kind": "retry"})
        else:
            label, provider, template = tpls[original["i"] % len(tpls)]
            body = delivery_body(
                provider, template, f"BENCH{original['i']:08d}", f"evt_re_{k:08d}", now
            )
            sent.append({**original, "body": body, "kind": "resent"})
    rng.shuffle(sent)
    return sent, shipments, mix, expected_unique_events


def seed(shipments: list[tuple[str, str, str]], now: datetime) -> int:
    from returns_portal.tenancy.services import tenant_create
    from rma.models import Order, ReturnRequest, Shipment
    from tracking.services import carrier_account_save

    warmup = tenant_create(slug="warmup", name="Warm-up")
    tenant = tenant_create(slug="bench", name="Bench Outdoor")
    for provider, secret in SECRETS.items():
        carrier_account_save(tenant=tenant, carrier=provider, webhook_secret=secret, now=now)
        carrier_account_save(tenant=warmup, carrier=provider, webhook_secret=secret, now=now)
    order = Order.objects.create(tenant=tenant, number="#1", currency="USD", placed_at=now)
    returns = ReturnRequest.objects.bulk_create(
        [
            ReturnRequest(
                tenant=tenant, order=order, rma_number=f"RMA-{200000 + i}", created_at=now
            )
            for i in range(len(shipments))
        ],
        batch_size=1000,
    )
    Shipment.objects.bulk_create(
        [
            Shipment(
                tenant=tenant,
                return_request=rr,
                carrier=carrier,
                tracking_provider=provider,
                tracking_number=number,
                created_at=now,
            )
            for rr, (number, carrier, provider) in zip(returns, shipments, strict=True)
        ],
        batch_size=1000,
    )
    return tenant.pk


# --------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------
def send_all(port: int, sent: list[dict]) -> tuple[list[tuple[float, int, dict, dict]], float]:
    work: queue.Queue = queue.Queue()
    for item in sent:
        work.put(item)
    out: list[tuple[float, int, dict, dict]] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                break
            provider = item["provider"]
            slug = item.get("tenant", "bench")
            headers = {
                "Host": f"{slug}.localhost",
                "Content-Type": "application/json",
                **signature_headers(provider, item["body"]),
            }
            for attempt in range(3):
                start = time.perf_counter()
                try:
                    conn.request(
                        "POST", f"/webhooks/{provider}/{slug}/", body=item["body"], headers=headers
                    )
                    response = conn.getresponse()
                    payload = response.read()
                    elapsed = time.perf_counter() - start
                    mine.append((elapsed, response.status, item, json.loads(payload or b"{}")))
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    break
                except (ConnectionError, http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    if attempt == 2:
                        raise
        conn.close()
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CONCURRENCY)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, time.perf_counter() - start


def wait_http(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": HOST})
            if conn.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_role(gunicorn_pid: int) -> dict[str, float]:
    """CPU seconds used so far by gunicorn (master and workers) and PostgreSQL
    (every postgres process), from /proc (Linux only; {} elsewhere)."""
    if not Path("/proc").is_dir():
        return {}
    out = {"gunicorn": 0.0, "postgres": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(stat[1])
        if pid == gunicorn_pid or ppid == gunicorn_pid:
            out["gunicorn"] += _cpu(pid)
        elif comm.startswith("postgres"):
            out["postgres"] += _cpu(pid)
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    global CONCURRENCY
    CONCURRENCY = CONCURRENCY or WORKERS * THREADS
    if not CORPUS.is_dir():
        print("shared corpus (../shared/carriers) not present", file=sys.stderr)
        return 2
    env = environment()
    os.environ.update(env)
    try:
        recreate_database()
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    except Exception as exc:
        print(f"PostgreSQL or Redis not reachable: {exc}", file=sys.stderr)
        return 2
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    import django

    django.setup()
    from django.db import connection

    from rma.models import Shipment
    from tracking.models import RawPayload, TrackingEvent

    now = datetime.now(UTC)
    sent, shipments, mix, expected_unique = build(now)
    tenant_id = seed(shipments, now)
    with connection.cursor() as cur:
        # Flush the setup's writes (database creation, migrations, seeding) so
        # a checkpoint does not land in the timed phase.
        cur.execute("CHECKPOINT")
        cur.execute("VACUUM ANALYZE")
    connection.close()

    retries = sum(1 for s in sent if s["kind"] == "retry")
    resent = sum(1 for s in sent if s["kind"] == "resent")
    print(
        f"cpus: {os.cpu_count()}; gunicorn {WORKERS} {WORKER_CLASS} workers x {THREADS} thread(s); "
        f"{CONCURRENCY} client threads; celery prefork x {WORKER_CONCURRENCY}"
    )
    print(f"payload mix ({UNIQUE} unique deliveries, one shipment each, round-robin):")
    for label, (count, events) in mix.items():
        print(f"  {label:<40} {count:>5} deliveries x {events:>2} events")
    print(
        f"sent {len(sent)} deliveries: {UNIQUE} unique + {retries} byte-identical retries "
        f"+ {resent} re-sent under a new event id ({(retries + resent) / len(sent):.0%} duplicates), shuffled"
    )

    port = free_port()
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "returns_portal.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(WORKERS),
            "-k",
            "gthread",
            "--threads",
            str(THREADS),
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(port, gunicorn)
        # Warm every worker (imports, database and broker connections, adapter
        # tables) with deliveries for a separate tenant, not counted below.
        warm = [
            {
                "provider": provider,
                "body": delivery_body(provider, tpl, f"WARM{i:05d}", f"evt_warm_{i}", now),
                "tenant": "warmup",
            }
            for i, (_label, provider, tpl) in enumerate(templates() * (2 * WORKERS * THREADS))
        ]
        send_all(port, warm)
        before = cpu_by_role(gunicorn.pid)
        client_before = time.process_time()
        answers, elapsed = send_all(port, sent)
        client_cpu = time.process_time() - client_before
        after = cpu_by_role(gunicorn.pid)
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gunicorn.kill()

    statuses: dict[int, int] = {}
    for _t, code, _item, _body in answers:
        statuses[code] = statuses.get(code, 0) + 1
    acked = [(t, item, body) for t, code, item, body in answers if 200 <= code < 300]
    latencies = [t for t, _i, _b in acked]
    ack_events = sum(item["events"] for _t, item, _b in acked)
    accepted = sum(1 for _t, _i, body in acked if body.get("status") == "accepted")
    duplicates = sum(1 for _t, _i, body in acked if body.get("status") == "duplicate")
    print(
        f"acknowledged {len(acked)}/{len(sent)} deliveries in {elapsed:.2f} s; HTTP statuses {statuses}"
    )
    dps, eps = len(acked) / elapsed, ack_events / elapsed
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(
        f"ack: {dps:,.0f} deliveries/s, {eps:,.0f} events/s; latency p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    print(
        f"  accepted {accepted}, answered duplicate {duplicates} (byte-identical retries sent: {retries})"
    )
    if after:
        used = {k: after[k] - before[k] for k in after}
        print(
            f"  CPU during the ack phase: gunicorn {used['gunicorn']:.1f} s, PostgreSQL "
            f"{used['postgres']:.1f} s, load generator {client_cpu:.1f} s "
            f"(of {elapsed * (os.cpu_count() or 1):.1f} CPU-seconds available); "
            f"{used['gunicorn'] / max(1, len(sent)) * 1000:.1f} ms of app CPU per delivery"
        )

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "returns_portal",
            "worker",
            "-l",
            "warning",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    start = time.perf_counter()
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            owed = RawPayload.objects.filter(tenant_id=tenant_id, state="received").count()
            if owed == 0:
                break
            if worker.poll() is not None:
                print(worker.stdout.read() if worker.stdout else "", file=sys.stderr)
                return 1
            time.sleep(0.2)
        processing = time.perf_counter() - start
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()

    stored = TrackingEvent.objects.filter(tenant_id=tenant_id).count()
    processed = RawPayload.objects.filter(tenant_id=tenant_id, state="processed").count()
    left = RawPayload.objects.filter(tenant_id=tenant_id, state__in=["received", "failed"]).count()
    rejected_dupes = RawPayload.objects.filter(tenant_id=tenant_id, error_code="duplicate").count()
    other_rejects = (
        RawPayload.objects.filter(tenant_id=tenant_id, state="rejected")
        .exclude(error_code="duplicate")
        .count()
    )
    moved = Shipment.objects.filter(tenant_id=tenant_id).exclude(status="unknown").count()
    print(
        f"processing on the worker: {processed} deliveries in {processing:.2f} s = "
        f"{processed / processing:,.0f} deliveries/s, {stored / processing:,.0f} events stored/s"
    )
    print(
        f"stored events {stored}, unique events sent {expected_unique}; processed {processed}, "
        f"left owed {left}; duplicates rejected {rejected_dupes}; other rejections {other_rejects}; "
        f"shipments with a status {moved}/{len(shipments)}"
    )

    failures = []
    if stored != expected_unique:
        failures.append(f"stored events {stored} != unique events sent {expected_unique}")
    if left or processed != accepted:
        failures.append(
            f"{left} deliveries left owed; processed {processed} != accepted {accepted}"
        )
    if duplicates != retries or rejected_dupes != retries:
        failures.append(f"duplicates answered {duplicates}/{rejected_dupes} != retries {retries}")
    if len(acked) != len(sent):
        failures.append(f"{len(sent) - len(acked)} deliveries not acknowledged")
    if eps < 1000:
        failures.append(f"ack events/s {eps:,.0f} below the 1,000 target")
    if p99 >= 250:
        failures.append(f"p99 {p99:.0f} ms not under the 250 ms target")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("OK: nothing lost or doubled; targets met (>= 1,000 events/s acknowledged, p99 < 250 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
