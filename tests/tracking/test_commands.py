"""`normalize_events`, `ingest_events`, `replay_webhooks` (DESIGN.md section 9):
exact output on corpus files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rma.models import Milestone
from tests.tracking.conftest import CORPUS, FIXTURES, corpus_or_skip, make_shipment
from tracking.models import RawPayload, TrackingEvent

ROOT = Path(__file__).resolve().parents[2]
KEYS = [
    "carrier",
    "tracking_number",
    "occurred_at",
    "occurred_at_local",
    "time_precision",
    "status",
    "exception_reason",
    "location",
    "carrier_code",
    "description",
]


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def _expected() -> list[dict]:
    return (
        json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
        if CORPUS.is_dir()
        else []
    )


def _events() -> dict[tuple[str, str | None], list[dict]]:
    if not CORPUS.is_dir():
        return {}
    return {
        (s["file"], s["tracking_number"]): s["events"]
        for s in json.loads((CORPUS / "events.json").read_text(encoding="utf-8"))
    }


def test_normalize_events_exact_output_yanwen():
    corpus_or_skip()
    lines = run(
        "normalize_events",
        "--carrier",
        "yanwen",
        str(CORPUS / "yanwen/tracking_separate_tz_field.json"),
    )
    assert lines == [
        '{"carrier": "yanwen", "tracking_number": "00340434281410767138", '
        '"occurred_at": "2019-08-15T10:52:19Z", "occurred_at_local": "2019-08-15T18:52:19", '
        '"time_precision": "second", "status": "accepted", "exception_reason": null, '
        '"location": null, "carrier_code": "PU10", "description": "Yanwen Acceptance"}'
    ]


def test_normalize_events_exact_output_ups_xml_newest_first():
    corpus_or_skip()
    lines = run(
        "normalize_events", "--carrier", "ups", str(CORPUS / "ups/xml_track_out_for_delivery.xml")
    )
    got = [json.loads(line) for line in lines]
    assert [list(g) for g in got] == [KEYS] * 5
    assert [(g["carrier_code"], g["occurred_at"], g["status"], g["location"]) for g in got] == [
        ("DS", "2012-05-10T09:34:00Z", "out_for_delivery", "STAFFORD, TX, US"),
        ("AR", "2012-05-10T05:02:00Z", "in_transit", "STAFFORD, TX, US"),
        ("DP", "2012-05-10T01:03:00Z", "in_transit", "MESQUITE, TX, US"),
        ("OR", "2012-05-09T19:18:00Z", "accepted", "MESQUITE, TX, US"),
        ("MP", None, "label_created", "US"),
    ]


@pytest.mark.parametrize("entry", _expected(), ids=lambda e: f"{e['file']}#{e['tracking_number']}")
def test_normalize_events_matches_events_json_for_every_corpus_shipment(entry):
    corpus_or_skip()
    args = ["normalize_events", "--carrier", entry["carrier"]]
    if entry["tracking_number"]:
        args += ["--tracking-number", entry["tracking_number"]]
    got = [json.loads(line) for line in run(*args, str(CORPUS / entry["file"]))]
    want = _events()[(entry["file"], entry["tracking_number"])]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == KEYS
        assert g["carrier"] == entry["carrier"]
        assert g["tracking_number"] == entry["tracking_number"]
        for key in (
            "carrier_code",
            "occurred_at_local",
            "occurred_at",
            "status",
            "exception_reason",
        ):
            assert g[key] == w[key], (key, w["index"])
        desc = g["description"][:60] if len(w["description"]) == 60 else g["description"]
        assert desc == w["description"]
        assert g["time_precision"] in ("second", "minute", "date")


def test_normalize_events_prints_all_numbers_in_payload_order():
    corpus_or_skip()
    lines = run(
        "normalize_events",
        "--carrier",
        "dhl_express",
        str(CORPUS / "dhl_express/xmlpi_tracking_multi_awb.xml"),
    )
    numbers = [json.loads(line)["tracking_number"] for line in lines]
    assert numbers == sorted(numbers, key=["3180831640", "7740842550", "1815115363"].index)
    assert set(numbers) == {"3180831640", "7740842550", "1815115363"}


def test_normalize_events_exit_codes(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError) as info:
        run("normalize_events", "--carrier", "ups", str(bad))
    assert info.value.returncode == 2
    with pytest.raises(CommandError) as info:
        run("normalize_events", "--carrier", "pigeon", str(bad))
    assert info.value.returncode == 2
    with pytest.raises(CommandError) as info:
        run("normalize_events", "--carrier", "ups", str(tmp_path / "missing.json"))
    assert info.value.returncode == 2
    # and the real process exit status, through manage.py
    env = {**os.environ, "SECRET_KEY": "x", "DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "manage.py", "normalize_events", "--carrier", "ups", str(bad)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == "" and "cannot parse" in proc.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "normalize_events",
            "--carrier",
            "sendle",
            str(FIXTURES / "sendle/tracking_delivered_synthetic.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) >= 2


@pytest.mark.django_db
def test_ingest_events_prints_the_summary_and_is_idempotent(tenant):
    corpus_or_skip()
    file = str(CORPUS / "ups/xml_track_delivered_then_refund_exception.xml")
    shipment = make_shipment(tenant, "1Z4189020353476816", carrier="ups")
    first = run(
        "ingest_events",
        "--tenant",
        "acme",
        "--carrier",
        "ups",
        "--now",
        "2026-06-01T00:00:00Z",
        file,
    )
    assert first == ['{"events": 11, "stored": 11, "duplicates": 0, "unmatched_numbers": []}']
    again = run(
        "ingest_events",
        "--tenant",
        "acme",
        "--carrier",
        "ups",
        "--now",
        "2026-06-01T00:00:00Z",
        file,
    )
    assert again == ['{"events": 11, "stored": 0, "duplicates": 11, "unmatched_numbers": []}']
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert (
        Milestone.objects.get(
            return_request=shipment.return_request, name="delivered"
        ).reached_at.isoformat()
        == "2013-12-09T21:17:00+00:00"
    )
    assert RawPayload.objects.filter(source="command").count() == 2


@pytest.mark.django_db
def test_ingest_events_unmatched_numbers_and_multi_number_payloads(tenant):
    corpus_or_skip()
    make_shipment(tenant, "7740842550", carrier="dhl_express")
    out = run(
        "ingest_events",
        "--tenant",
        "acme",
        "--carrier",
        "dhl_express",
        "--now",
        "2026-06-01T00:00:00Z",
        str(CORPUS / "dhl_express/xmlpi_tracking_multi_awb.xml"),
    )
    summary = json.loads(out[0])
    assert summary["unmatched_numbers"] == ["1815115363", "3180831640"]
    assert summary["stored"] == TrackingEvent.objects.count() == 1


@pytest.mark.django_db
def test_ingest_events_tracking_number_for_a_payload_without_one(tenant):
    corpus_or_skip()
    make_shipment(tenant, "1ZA82D672031716786", carrier="ups")
    out = run(
        "ingest_events",
        "--tenant",
        "acme",
        "--carrier",
        "ups",
        "--tracking-number",
        "1ZA82D672031716786",
        str(CORPUS / "ups/track_api_v1_not_found_TW0001.json"),
    )
    assert json.loads(out[0]) == {
        "events": 0,
        "stored": 0,
        "duplicates": 0,
        "unmatched_numbers": [],
    }


@pytest.mark.django_db
def test_ingest_events_exit_codes(tenant, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<TrackResponse><unclosed>")
    with pytest.raises(CommandError) as info:
        run("ingest_events", "--tenant", "acme", "--carrier", "ups", str(bad))
    assert info.value.returncode == 2
    assert RawPayload.objects.get().error_code == "payload"  # kept
    with pytest.raises(CommandError) as info:
        run("ingest_events", "--tenant", "nobody", "--carrier", "ups", str(bad))
    assert info.value.returncode == 1
    with pytest.raises(CommandError) as info:
        run("ingest_events", "--tenant", "acme", "--carrier", "pigeon", str(bad))
    assert info.value.returncode == 2


@pytest.mark.django_db
def test_replay_webhooks_filters_and_never_replays_unverified(tenant, other_tenant):
    from tests.tracking.conftest import sandbox_doc, utc
    from tracking.ingest import raw_payload_store

    now = utc(2026, 11, 20)
    mine = make_shipment(tenant, "SB1")
    ok = raw_payload_store(
        tenant=tenant,
        provider="sandbox",
        body=sandbox_doc(("SB1", [("ACCEPTED", "2026-11-19T10:00:00Z")])),
        source="webhook",
        now=now,
    )
    unsigned = raw_payload_store(
        tenant=tenant, provider="sandbox", body=b"{}", source="webhook", now=now, verified=False
    )
    theirs = raw_payload_store(
        tenant=other_tenant,
        provider="sandbox",
        body=sandbox_doc(("SB1", [])),
        source="webhook",
        now=now,
    )
    lines = [json.loads(x) for x in run("replay_webhooks", "--tenant", "acme")]
    assert [x["id"] for x in lines] == [ok.pk]
    mine.refresh_from_db()
    assert mine.status == "accepted"
    assert run("replay_webhooks", "--tenant", "acme") == []  # processed now: nothing owed
    lines = [json.loads(x) for x in run("replay_webhooks", "--provider", "sandbox")]
    assert [x["id"] for x in lines] == [theirs.pk]
    with pytest.raises(CommandError) as info:
        run("replay_webhooks", "--id", str(unsigned.pk))
    assert info.value.returncode == 2
    with pytest.raises(CommandError) as info:
        run("replay_webhooks", "--id", "999999")
    assert info.value.returncode == 1
    with pytest.raises(CommandError) as info:
        run("replay_webhooks", "--since", "yesterday")
    assert info.value.returncode == 2
