"""Every adapter survives wrongly shaped payloads (DESIGN.md section 6; project
rule "bad input gets a clear error"): each registered adapter is fed mutated
versions of its real-format fixtures (tests/fixtures/carriers and the shared
corpus) - every value in turn replaced by a string, a number, a list, an
object, null or an out-of-range time, every key and XML element removed - and
only `PayloadError` or a clean result may come out. A result is also
normalized, ordered and turned into milestones, dedupe keys and
`normalize_events` lines, as ingest does, so no later step trips on it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tracking.conftest import CORPUS, FIXTURES
from tracking.carriers import timeparse
from tracking.carriers.base import PayloadError, TrackingResult
from tracking.carriers.registry import codes, get_adapter
from tracking.carriers.sandbox import sandbox_tracking_number, tracking_document
from tracking.normalize import (
    dedupe_key,
    derive_milestones,
    normalize_result,
    shipment_status,
    summary_fallback,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
#: What a wrongly typed JSON value may be instead of what the adapter expects
#: (``[]``, ``{}`` and ``""`` mean "nothing" to the adapters, like null).
WRONG = ["x", 7, True, None, ["x"], {"x": "y"}]
#: Times a carrier may send that no datetime arithmetic may trip on, and odd text.
TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01",
    "9999-12-31",
    "1900-01-01T00:00:00",
]
TEXTS = ["x", "", "99999999999999999999", *TIMES]
#: Items of a list past this index repeat the shapes of the first ones: not mutated.
LIST_ITEMS = 2


def _sandbox_fixture() -> bytes:
    number = sandbox_tracking_number(
        label_at=datetime(2026, 5, 20, tzinfo=UTC), serial=8, script="delayed"
    )
    return tracking_document([number], now=NOW)


def _fixtures() -> list[tuple[str, str, bytes]]:
    """(carrier, name, bytes) for every fixture: ours (carrier = folder, karrio
    is ``karrio``), the corpus (carrier from expected.json) and a sandbox
    document."""
    out = [
        (p.parent.name, str(p.relative_to(FIXTURES)), p.read_bytes())
        for p in sorted(FIXTURES.glob("*/*"))
        if not p.name.endswith(".source.txt")
    ]
    if CORPUS.is_dir():
        seen: set[str] = set()
        for entry in json.loads((CORPUS / "expected.json").read_text(encoding="utf-8")):
            if entry["file"] not in seen:
                seen.add(entry["file"])
                path = CORPUS / entry["file"]
                out.append((entry["carrier"], f"corpus/{entry['file']}", path.read_bytes()))
    out.append(("sandbox", "sandbox/tracking_document", _sandbox_fixture()))
    return out


FIXTURE_SET = _fixtures()


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:LIST_ITEMS]):
            yield from _paths(value, (*prefix, i))


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _replaced(doc: Any, path: tuple, value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    parent = _at(out, path[:-1])
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def _json_mutants(body: bytes) -> Iterator[tuple[str, bytes]]:
    doc = json.loads(body)
    for path in list(_paths(doc)):
        original = _at(doc, path)
        values = WRONG + (TEXTS if isinstance(original, str) else [])
        for value in values:
            yield f"{list(path)} = {value!r}", json.dumps(_replaced(doc, path, value)).encode()
        if path:
            yield f"del {list(path)}", json.dumps(_replaced(doc, path, None, delete=True)).encode()


def _xml_shapes(root: ET.Element) -> list[bool]:
    """Per element (document order): whether it is among the first `LIST_ITEMS`
    elements with its tag path (later repeats have the same shape)."""
    seen: dict[tuple[str, ...], int] = {}
    keep: list[bool] = []

    def walk(node: ET.Element, path: tuple[str, ...]) -> None:
        here = (*path, node.tag)
        seen[here] = seen.get(here, 0) + 1
        keep.append(seen[here] <= LIST_ITEMS)
        for child in node:
            walk(child, here)

    walk(root, ())
    return keep


def _xml_mutants(body: bytes) -> Iterator[tuple[str, bytes]]:
    first = SafeET.fromstring(body)
    nodes, keep = list(first.iter()), _xml_shapes(first)
    for i, original in enumerate(nodes):
        if not keep[i]:
            continue
        for text in [*TEXTS, None]:
            root = SafeET.fromstring(body)
            node = list(root.iter())[i]
            if text is None:
                parent = next((p for p in root.iter() if node in list(p)), None)
                if parent is None:
                    continue
                parent.remove(node)
                label = f"remove <{node.tag}> #{i}"
            else:
                node.text = text
                label = f"<{node.tag}> #{i} text = {text!r}"
            yield label, ET.tostring(root)
        for attribute in list(original.attrib):
            for text in TEXTS:
                root = SafeET.fromstring(body)
                list(root.iter())[i].set(attribute, text)
                yield f"#{i} @{attribute} = {text!r}", ET.tostring(root)


def _mutants(name: str, body: bytes) -> Iterator[tuple[str, bytes]]:
    if body.lstrip()[:1] == b"<":
        return _xml_mutants(body)
    return _json_mutants(body)


def _use(results: list[TrackingResult]) -> None:
    """What ingest and `normalize_events` do with a parse result (pure parts)."""
    for result in results:
        events = normalize_result(result)
        shipment_status(events, fallback=summary_fallback(result))
        milestones = derive_milestones(events)
        for reach in (milestones.dropped_off, milestones.first_scan, milestones.delivered):
            assert reach is None or reach.instant.year >= 1990, reach
        for event in events:
            dedupe_key(event)
            json.dumps(event.as_output())


def test_robustness_every_registered_adapter_has_a_fixture() -> None:
    assert {carrier for carrier, _name, _body in FIXTURE_SET} == set(codes())


@pytest.mark.parametrize(
    ("carrier", "name", "body"), FIXTURE_SET, ids=[name for _c, name, _b in FIXTURE_SET]
)
def test_robustness_mutated_fixtures_give_payload_error_or_a_clean_result(
    carrier: str, name: str, body: bytes
) -> None:
    adapter = get_adapter(carrier)
    _use(adapter.parse(body, now=NOW))  # the fixture itself is fine
    failures = []
    for label, mutant in _mutants(name, body):
        try:
            results = adapter.parse(mutant, now=NOW)
            _use(results)
        except PayloadError as exc:
            assert str(exc), label  # a reason, always
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
    assert failures == []


@pytest.mark.parametrize("carrier", sorted(set(codes())))
@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"7", b'"x"', b"[]", b"[null]", b"{}", b'{"batch": 7}', b'{"batch": [7]}'],
)
def test_robustness_any_json_top_level_is_handled(carrier: str, body: bytes) -> None:
    try:
        _use(get_adapter(carrier).parse(body, now=NOW))
    except PayloadError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(
    wall=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    date_only=st.booleans(),
)
def test_robustness_any_iso_time_resolves_or_is_flagged(
    wall: datetime, offset_minutes: int, date_only: bool
) -> None:
    """Any wall time with any offset a carrier may print (DESIGN.md section 6):
    a UTC instant inside the window [1990, now + 2 days], or None with the flag
    that says which side it fell on. Never an exception."""
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    day = f"{wall.year:04d}-{wall:%m-%d}"
    text = day if date_only else f"{day}T{wall:%H:%M:%S}{sign}{hours:02d}:{minutes:02d}"
    info = timeparse.resolve(timeparse.parse_local(text), now=NOW, home_zone="Europe/Paris")
    if info.occurred_at is not None:
        assert timeparse.EARLIEST <= info.occurred_at <= NOW + timeparse.FUTURE_SLACK
        assert info.flag is None and not date_only
        return
    assert info.local_date == wall.date()
    assert info.flag is not None or date_only
    if wall.year < 1990:
        assert info.flag == "before_1990"
    elif wall.year > 2026:
        assert info.flag == "far_future"
    elif date_only:
        assert info.flag is None  # a date-only value inside the window: kept as a date
