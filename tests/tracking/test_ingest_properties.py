"""Hypothesis property after ingest (issue 4, "Done when"): any permutation of
a shipment's events, with any duplicates, ingested in any chunking, gives the
same stored status, exception reason and carrier milestones as ingesting the
payload once. Runs over every shipment with two or more events in the shared
corpus and in our own fixtures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rma.models import Milestone
from tests.factories import ReturnRequestFactory, ShipmentFactory
from tests.tracking.conftest import CORPUS, FIXTURES, utc
from tracking.carriers.registry import get_adapter
from tracking.ingest import tracking_results_ingest

pytestmark = pytest.mark.django_db
NOW = utc(2026, 6, 1)


class _Rollback(Exception):
    pass


def _cases() -> list[tuple[str, str, str]]:
    """(carrier, path, tracking number) of every shipment with two or more
    events: the corpus (carrier from expected.json) and our own fixtures."""
    cases = []
    if CORPUS.is_dir():
        for e in json.loads((CORPUS / "expected.json").read_text(encoding="utf-8")):
            if e["tracking_number"]:
                cases.append((e["carrier"], str(CORPUS / e["file"]), e["tracking_number"]))
    for path in sorted(FIXTURES.glob("*/*")):
        if path.name.endswith(".source.txt"):
            continue
        carrier = path.parent.name
        for r in get_adapter(carrier).parse(path.read_bytes(), tracking_number="X1", now=NOW):
            cases.append((carrier, str(path), r.tracking_number))
    return [c for c in cases if len(_result(*c).events) >= 2]


def _result(carrier: str, path: str, number: str):
    results = get_adapter(carrier).parse(Path(path).read_bytes(), tracking_number="X1", now=NOW)
    return next(r for r in results if r.tracking_number == number)


def _snapshot(tenant, result, chunks) -> tuple:
    """Ingest `chunks` (lists of RawEvents of `result`) into a fresh shipment
    inside a rolled-back savepoint; return (status, reason, milestones)."""
    out: list[tuple] = []
    try:
        with transaction.atomic():
            shipment = ShipmentFactory(
                return_request=ReturnRequestFactory(order__tenant=tenant),
                carrier=result.carrier,
                tracking_provider=result.provider,
                tracking_number=result.tracking_number,
            )
            for chunk in chunks:
                tracking_results_ingest(
                    tenant=tenant,
                    provider=result.provider,
                    results=[replace(result, events=tuple(chunk))],
                    now=NOW,
                )
            shipment.refresh_from_db()
            milestones = sorted(
                Milestone.objects.filter(return_request=shipment.return_request).values_list(
                    "name", "reached_at", "precision", "source"
                )
            )
            out.append((shipment.status, shipment.exception_reason, milestones))
            raise _Rollback
    except _Rollback:
        pass
    return out[0]


@pytest.mark.parametrize(
    "case", _cases(), ids=lambda c: f"{Path(c[1]).parent.name}/{Path(c[1]).name}#{c[2]}"
)
def test_ingest_any_order_duplicates_and_chunking_give_the_same_outcome(tenant, case):
    result = _result(*case)
    events = list(result.events)
    baseline = _snapshot(tenant, result, [events])

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )
    @given(data=st.data())
    def check(data):
        order = data.draw(st.permutations(events))
        dups = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
        stream = list(order)
        for dup in dups:
            stream.insert(data.draw(st.integers(0, len(stream))), dup)
        cuts = sorted(set(data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=4))))
        chunks, start = [], 0
        for cut in [*cuts, len(stream)]:
            chunks.append(stream[start:cut])
            start = cut
        assert _snapshot(tenant, result, chunks) == baseline

    check()
