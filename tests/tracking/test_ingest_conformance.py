"""Conformance after ingest (issue 4, "Done when"): every payload of the
shared corpus goes through `tracking_events_ingest` for a tenant with a
shipment for the number, and the stored shipment status, the `first_scan`
milestone (where `first_accepted_at` is given) and the `delivered` milestone
match `expected.json`. The carrier of each file comes from expected.json.
Skipped only when ../shared is absent, and never in CI."""

from __future__ import annotations

import json

import pytest

from rma.models import Milestone, Shipment
from tests.factories import ReturnRequestFactory, ShipmentFactory
from tests.tracking.conftest import CORPUS, corpus_or_skip, utc
from tracking.carriers.registry import get_adapter
from tracking.ingest import tracking_events_ingest
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db
NOW = utc(2026, 6, 1)
#: A number for the payload that names none (UPS TW0001 "not found").
MISSING_NUMBER = "1ZA82D672031716786"


def _expected() -> list[dict]:
    if not CORPUS.is_dir():
        return []
    return json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def _fmt(at) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def shipment_for(tenant, *, file: str, provider: str, number: str | None) -> tuple[Shipment, str]:
    """A return and shipment of `tenant` as the merchant would record it: the
    physical carrier the payload names (the provider when it names none)."""
    body = (CORPUS / file).read_bytes()
    results = get_adapter(provider).parse(body, tracking_number=number or MISSING_NUMBER, now=NOW)
    wanted = number or MISSING_NUMBER
    carrier = next((r.carrier for r in results if r.tracking_number == wanted), provider)
    shipment = ShipmentFactory(
        return_request=ReturnRequestFactory(order__tenant=tenant),
        carrier=carrier,
        tracking_provider=provider,
        tracking_number=wanted,
    )
    return shipment, wanted


@pytest.mark.parametrize("entry", _expected(), ids=lambda e: f"{e['file']}#{e['tracking_number']}")
def test_ingest_conformance_shipment_status_and_milestones(tenant, entry):
    corpus_or_skip()
    shipment, number = shipment_for(
        tenant, file=entry["file"], provider=entry["carrier"], number=entry["tracking_number"]
    )
    result = tracking_events_ingest(
        tenant=tenant,
        provider=entry["carrier"],
        body=(CORPUS / entry["file"]).read_bytes(),
        tracking_number=None if entry["tracking_number"] else number,
        source="command",
        now=NOW,
    )
    shipment.refresh_from_db()
    got = shipment.status
    if got == "exception":
        got = f"exception.{shipment.exception_reason}"
    assert got == entry["final_status"]
    assert number not in result.unmatched_numbers
    milestones = {
        m.name: m for m in Milestone.objects.filter(return_request=shipment.return_request)
    }
    if entry["first_accepted_at"] is not None:
        assert _fmt(milestones["first_scan"].reached_at) == entry["first_accepted_at"]
        assert milestones["first_scan"].source == "carrier"
    if entry["delivered_at"] is None:
        assert "delivered" not in milestones
    else:
        assert _fmt(milestones["delivered"].reached_at) == entry["delivered_at"]
        assert milestones["delivered"].source == "carrier"

    # A second ingest of the same bytes stores nothing and changes nothing.
    again = tracking_events_ingest(
        tenant=tenant,
        provider=entry["carrier"],
        body=(CORPUS / entry["file"]).read_bytes(),
        tracking_number=None if entry["tracking_number"] else number,
        source="command",
        now=NOW,
    )
    assert again.stored == 0
    assert again.duplicates == result.stored + result.duplicates
    before = (shipment.status, shipment.exception_reason, shipment.last_scan_at)
    shipment.refresh_from_db()
    assert (shipment.status, shipment.exception_reason, shipment.last_scan_at) == before
    stored = result.shipments[shipment.pk].stored if shipment.pk in result.shipments else 0
    assert TrackingEvent.objects.filter(shipment=shipment).count() == stored


def test_ingest_conformance_every_expected_file_is_covered():
    corpus_or_skip()
    files = {
        str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.suffix in (".json", ".xml")
    }
    assert files == {e["file"] for e in _expected()}
