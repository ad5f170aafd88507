"""Adapter registry keyed by DESIGN.md section 9 carrier codes.

``get_adapter(code)`` returns a shared adapter instance (adapters are
stateless). Another app may add adapters with ``register`` (the ``sandbox``).
"""

from __future__ import annotations

import functools
import importlib

from .base import CarrierAdapter

#: code -> module under tracking.carriers defining ``Adapter``.
BUILTIN: dict[str, str] = {
    "ups": "ups",
    "fedex": "fedex",
    "usps": "usps",
    "dhl_express": "dhl_express",
    "dhl_parcel_de": "dhl_parcel_de",
    "dhl_universal": "dhl_universal",
    "canadapost": "canadapost",
    "royalmail": "royalmail",
    "dpd": "dpd",
    "gls": "gls",
    "laposte": "laposte",
    "chronopost": "chronopost",
    "australiapost": "australiapost",
    "sendle": "sendle",
    "bpost": "bpost",
    "sf_express": "sf_express",
    "yanwen": "yanwen",
    "purolator": "purolator",
    "easypost": "easypost",
    "aftership": "aftership",
    "shippo": "shippo",
    "karrio": "karrio_server",
}
AGGREGATORS = frozenset({"easypost", "aftership", "shippo", "karrio"})

_extra: dict[str, CarrierAdapter] = {}


def register(adapter: CarrierAdapter) -> None:
    """Register an adapter instance under ``adapter.code`` (e.g. the sandbox)."""
    if not adapter.code:
        raise ValueError("adapter has no code")
    _extra[adapter.code] = adapter


@functools.cache
def _builtin(code: str) -> CarrierAdapter:
    module = importlib.import_module(f"{__package__}.{BUILTIN[code]}")
    adapter: CarrierAdapter = module.Adapter()
    return adapter


def get_adapter(code: str) -> CarrierAdapter:
    """The adapter for ``code``. Raises KeyError for an unknown code."""
    if code in _extra:
        return _extra[code]
    if code not in BUILTIN:
        raise KeyError(f"unknown carrier code {code!r}")
    return _builtin(code)


def codes() -> list[str]:
    """Every registered carrier code."""
    return sorted(set(BUILTIN) | set(_extra))
