"""Events normalized per second: our parsers + normalizer vs karrio's own
tracking parsers, in one run on the same payloads (the shared corpus files
karrio has a parser for). Run: ``python tests/perf/bench_normalize.py``.

Not collected by pytest (no ``test_`` prefix). Prints one line per side and
the ratio. karrio's numbers include only files its parser accepts; ours are
measured on exactly the same files.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tracking.carriers.registry import get_adapter  # noqa: E402
from tracking.normalize import normalize_result, shipment_status  # noqa: E402

CORPUS = ROOT / ".." / "shared" / "carriers"
NOW = datetime(2026, 6, 1, tzinfo=UTC)

#: our carrier code -> (karrio provider module, settings kwargs, xml?)
KARRIO = {
    "ups": ("ups", {"client_id": "x", "client_secret": "x", "account_number": "x"}, False),
    "fedex": ("fedex", {"api_key": "x", "secret_key": "x", "account_number": "x"}, False),
    "usps": ("usps", {"client_id": "x", "client_secret": "x", "account_number": "x"}, False),
    "dhl_express": ("dhl_express", {"site_id": "x", "password": "x", "account_number": "x"}, True),
    "dhl_parcel_de": ("dhl_parcel_de", {"username": "x", "password": "x"}, True),
    "dhl_universal": ("dhl_universal", {"consumer_key": "x", "consumer_secret": "x"}, False),
    "royalmail": ("royalmail", {"client_id": "x", "client_secret": "x"}, False),
    "gls": ("gls", {"client_id": "x", "client_secret": "x"}, False),
    "chronopost": ("chronopost", {"account_number": "x", "password": "x"}, True),
    "easypost": ("easypost", {"api_key": "x"}, False),
}


def _quiet_karrio() -> None:
    """karrio logs every request at INFO through loguru, and its FedEx parser
    fetches a proof-of-delivery image over HTTP for delivered parcels: both are
    switched off so only parsing is measured (and nothing leaves the machine)."""
    try:
        from loguru import logger

        logger.remove()
    except ImportError:
        pass
    import karrio.providers.fedex.utils as fedex_utils

    fedex_utils.get_proof_of_delivery = lambda *a, **k: None


def _karrio_parser(code: str):
    import importlib

    import karrio.lib as lib

    module, settings_kwargs, is_xml = KARRIO[code]
    tracking = importlib.import_module(f"karrio.providers.{module}.tracking")
    settings_cls = importlib.import_module(f"karrio.mappers.{module}.settings").Settings
    settings = settings_cls(**settings_kwargs)

    sink = io.StringIO()

    def run(body: bytes) -> int:
        text = body.decode("utf-8")
        value = lib.to_element(text) if is_xml else lib.to_dict(text)
        # karrio's generated XML bindings print "unknown arguments" for fields
        # they don't model; keep the bench output readable.
        with contextlib.redirect_stdout(sink):
            details, _messages = tracking.parse_tracking_response(
                lib.Deserializable(value, lambda v: v), settings
            )
        sink.seek(0)
        sink.truncate()
        return sum(len(d.events or []) for d in details)

    return run


def main() -> None:
    if not CORPUS.is_dir():
        print("shared corpus not found; nothing to measure")
        return
    expected = json.loads((CORPUS / "expected.json").read_text())
    files = sorted({(e["file"], e["carrier"]) for e in expected})
    payloads = [(carrier, (CORPUS / f).read_bytes(), f) for f, carrier in files]

    _quiet_karrio()
    usable = []
    parsers = {}
    for carrier, body, name in payloads:
        if carrier not in KARRIO:
            continue
        try:
            parsers.setdefault(carrier, _karrio_parser(carrier))
            parsers[carrier](body)
        except Exception as exc:  # karrio fails on some corpus files (e.g. UPS XML)
            print(f"  karrio cannot parse {name}: {type(exc).__name__}")
            continue
        usable.append((carrier, body, name))

    def ours(carrier: str, body: bytes) -> int:
        n = 0
        for result in get_adapter(carrier).parse(body, now=NOW):
            events = normalize_result(result)
            shipment_status(events)
            n += len(result.events)
        return n

    def measure(fn, label: str, seconds: float = 3.0) -> float:
        for carrier, body, _ in usable:  # warm caches (zone tables, mappings)
            fn(carrier, body)
        events = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for carrier, body, _ in usable:
                events += fn(carrier, body)
        rate = events / (time.perf_counter() - start)
        print(f"{label:<34} {rate:>10,.0f} events/s")
        return rate

    print(
        f"payloads: {len(usable)} corpus files that karrio's parsers accept "
        f"({sum(ours(c, b) for c, b, _ in usable)} events per pass)"
    )
    ours_rate = measure(ours, "ours (parse + normalize + status)")
    karrio_rate = measure(lambda c, b: parsers[c](b), "karrio tracking parsers")
    print(f"ratio ours/karrio: {ours_rate / karrio_rate:.2f}x (target >= 2x)")

    all_events = 0
    start = time.perf_counter()
    passes = 0
    while time.perf_counter() - start < 2.0:
        for carrier, body, _ in payloads:
            all_events += ours(carrier, body)
        passes += 1
    rate = all_events / (time.perf_counter() - start)
    print(f"ours on the whole corpus ({len(payloads)} files): {rate:,.0f} events/s")


if __name__ == "__main__":
    main()
