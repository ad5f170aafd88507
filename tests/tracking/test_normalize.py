"""Normalization rules (DESIGN.md section 5), incl. a Hypothesis property:
any permutation of a shipment's events, with duplicates, gives the same
shipment status and milestones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.carriers.base import RawEvent, TrackingResult
from tracking.carriers.registry import get_adapter
from tracking.normalize import (
    dedupe_key,
    derive_milestones,
    normalize_event,
    normalize_result,
    shipment_status,
    with_overrides,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "carriers"


def _raw(
    code: str,
    at: str | None,
    *,
    hint: str | None = None,
    desc: str = "",
    seq: int = 0,
    day: date | None = None,
) -> RawEvent:
    when = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None
    return RawEvent(
        carrier_code=code,
        description=desc,
        occurred_at_local=at,
        occurred_at=when,
        time_precision="second" if when else "date",
        local_date=day or (when.date() if when else None),
        tz_name="America/Chicago" if day else None,
        status_hint=hint,
        sequence=seq,
    )


def test_normalize_status_depends_only_on_the_event() -> None:
    a = normalize_event(_raw("PU", "2024-01-01T10:00:00Z"), carrier="fedex")
    b = normalize_event(_raw("PU", "2024-01-05T10:00:00Z", seq=9), carrier="fedex")
    assert (a.status, b.status) == ("accepted", "accepted")


def test_normalize_unmapped_code_is_unknown_never_guessed() -> None:
    ev = normalize_event(_raw("ZZ", "2024-01-01T10:00:00Z", desc="Delivered"), carrier="fedex")
    assert ev.status == "unknown" and ev.mapping_key is None and ev.lookup_code == "ZZ"


def test_normalize_codes_normalized_per_carrier() -> None:
    assert (
        normalize_event(_raw("0174", "2024-01-01T10:00:00Z"), carrier="canadapost").status
        == "out_for_delivery"
    )
    assert (
        normalize_event(_raw(" pu ", "2024-01-01T10:00:00Z"), carrier="fedex").status == "accepted"
    )
    assert normalize_event(_raw("1", "2024-01-01T10:00:00Z"), carrier="usps").status == "delivered"


def test_normalize_coarse_code_description_decides() -> None:
    ofd = normalize_event(
        _raw("DS", "2024-01-01T10:00:00Z", hint="I", desc="OUT FOR DELIVERY"), carrier="ups"
    )
    scan = normalize_event(
        _raw("DS", "2024-01-01T10:00:00Z", hint="I", desc="DESTINATION SCAN"), carrier="ups"
    )
    assert (ofd.status, scan.status) == ("out_for_delivery", "in_transit")


def test_normalize_tenant_override_applies_and_renormalizes_unknown_only() -> None:
    overrides = {("fedex", "ZZ"): ("exception", "held"), ("fedex", "PU"): ("info", None)}
    unknown = normalize_event(_raw("ZZ", "2024-01-01T10:00:00Z"), carrier="fedex")
    known = normalize_event(_raw("PU", "2024-01-01T11:00:00Z"), carrier="fedex")
    redone = with_overrides([unknown, known], overrides)
    assert (redone[0].status, redone[0].exception_reason, redone[0].overridden) == (
        "exception",
        "held",
        True,
    )
    assert redone[1].status == "accepted"  # stored mapped events are not re-normalized
    assert (
        normalize_event(
            _raw("PU", "2024-01-01T11:00:00Z"), carrier="fedex", overrides=overrides
        ).status
        == "info"
    )


def test_normalize_delivered_is_terminal_and_exceptions_not_sticky() -> None:
    evs = [
        normalize_event(r, carrier="fedex")
        for r in (
            _raw("PU", "2024-01-01T10:00:00Z"),
            _raw("DY", "2024-01-02T10:00:00Z"),
            _raw("AR", "2024-01-03T10:00:00Z"),
        )
    ]
    assert shipment_status(evs).status == "in_transit"
    evs.append(normalize_event(_raw("DL", "2024-01-04T10:00:00Z"), carrier="fedex"))
    evs.append(normalize_event(_raw("SE", "2024-01-05T10:00:00Z"), carrier="fedex"))
    assert shipment_status(evs).status == "delivered"


def test_normalize_info_and_unknown_never_change_status() -> None:
    evs = [
        normalize_event(r, carrier="fedex")
        for r in (
            _raw("PU", "2024-01-01T10:00:00Z"),
            _raw("AE", "2024-01-02T10:00:00Z"),
            _raw("ZZ", "2024-01-03T10:00:00Z"),
        )
    ]
    assert shipment_status(evs).status == "accepted"
    assert shipment_status([evs[1], evs[2]]).status == "unknown"
    assert shipment_status([]).status == "unknown"


def test_normalize_date_only_event_placed_after_lower_stage() -> None:
    label = normalize_event(_raw("OC", "2024-08-15T15:36:00Z"), carrier="fedex")
    pickup = normalize_event(_raw("PU", None, day=date(2024, 8, 15)), carrier="fedex")
    m = derive_milestones([pickup, label])
    assert m.dropped_off is not None
    assert (
        m.dropped_off.instant == datetime(2024, 8, 15, 15, 36, tzinfo=UTC)
        and m.dropped_off.precision == "date"
    )
    alone = derive_milestones([pickup])
    assert alone.dropped_off.instant == datetime(
        2024, 8, 15, 5, 0, tzinfo=UTC
    )  # local start of day, Chicago


def test_normalize_event_without_any_instant_reaches_no_milestone() -> None:
    """A delivery whose time was rejected (flagged) and no timed lower stage:
    the shipment is delivered, but no milestone is dated 0001-01-01."""
    raw = replace(_raw("DL", None, day=date(9999, 12, 31)), time_flag="far_future")
    delivered = normalize_event(raw, carrier="fedex")
    assert delivered.status == "delivered"
    assert shipment_status([delivered]).status == "delivered"
    assert derive_milestones([delivered]) == derive_milestones([])
    pickup = normalize_event(_raw("PU", "2024-08-15T15:36:00Z"), carrier="fedex")
    m = derive_milestones([delivered, pickup])
    assert m.delivered is not None
    assert (m.delivered.instant, m.delivered.precision) == (
        datetime(2024, 8, 15, 15, 36, tzinfo=UTC),
        "date",
    )


def test_normalize_summary_with_timestamp_becomes_event() -> None:
    body = (FIXTURES / "gls" / "track_parcelshop_synthetic.json").read_bytes()
    result = get_adapter("gls").parse(body, now=NOW)[0]
    events = normalize_result(result)
    assert events[-1].source == "summary" and events[-1].status == "exception"
    assert len(normalize_result(result, include_summary=False)) == len(result.events)


def test_normalize_dedupe_key_is_stable_and_ignores_rewording() -> None:
    a = normalize_event(_raw("AR", "2024-01-03T10:00:20Z", desc="Arrived"), carrier="fedex")
    b = normalize_event(
        _raw("AR", "2024-01-03T10:00:45Z", desc="Arrived at FedEx location"), carrier="fedex"
    )
    c = normalize_event(_raw("DP", "2024-01-03T10:00:45Z"), carrier="fedex")
    assert dedupe_key(a) == dedupe_key(b) != dedupe_key(c)


def _corpus_like_shipments() -> list[list]:
    out = []
    for name in (
        "aftership/webhook_refused_synthetic.json",
        "canadapost/track_pin_detail.xml",
        "ups/track_api_gmt_fields_synthetic.json",
        "purolator/track_by_pin_synthetic.xml",
        "dhl_universal/transit_synthetic.json",
        "yanwen/tracking_sentinel_synthetic.json",
        "laposte/suivi_v2_delivered_fr_br.json",
    ):
        carrier = name.split("/")[0]
        for result in get_adapter(carrier).parse((FIXTURES / name).read_bytes(), now=NOW):
            out.append(normalize_result(result))
    label = normalize_event(_raw("OC", "2024-08-15T15:36:00Z"), carrier="fedex")
    pickup = normalize_event(_raw("PU", None, day=date(2024, 8, 15)), carrier="fedex")
    arrive = normalize_event(_raw("AR", "2024-08-15T23:35:00Z", seq=3), carrier="fedex")
    same_instant = normalize_event(_raw("DY", "2024-08-15T23:35:00Z", seq=4), carrier="fedex")
    out.append([label, pickup, arrive, same_instant])
    return out


SHIPMENTS = _corpus_like_shipments()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_normalize_permutation_and_duplicates_do_not_change_status_or_milestones(
    data: st.DataObject,
) -> None:
    events = data.draw(st.sampled_from(SHIPMENTS))
    expected = (shipment_status(events), derive_milestones(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    shuffled = data.draw(st.permutations([*events, *[replace(d) for d in dupes]]))
    assert (shipment_status(shuffled), derive_milestones(shuffled)) == expected


def test_normalize_result_requires_aware_now() -> None:
    import pytest

    with pytest.raises(ValueError):
        get_adapter("fedex").parse(b"{}", now=datetime(2026, 1, 1))


def test_normalize_not_found_result_has_no_events() -> None:
    result = TrackingResult(
        provider="ups", carrier="ups", tracking_number=None, found=False, message="TW0001"
    )
    assert shipment_status(normalize_result(result)).status == "unknown"
