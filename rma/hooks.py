"""Explicit extension points of `rma` for the apps to its right.

`rma` must not import `tracking` or `refunds` (DESIGN.md section 2), yet some
of their rows must exist in the same transaction as an rma row: a `Refund`
exists from the moment the return does (section 5). Those apps register a
callable here in `AppConfig.ready()`; `rma` services call them in order.
Like the provisioning registry, this is a list you can read, not a signal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rma.models import ReturnRequest

ReturnCreatedHook = Callable[..., object]  # what a hook returns is ignored

_return_created: list[tuple[str, ReturnCreatedHook]] = []


def register_return_created(name: str, hook: ReturnCreatedHook) -> None:
    """Register `hook(return_request, *, now)` under `name` (re-registering replaces it)."""
    for i, (existing, _fn) in enumerate(_return_created):
        if existing == name:
            _return_created[i] = (name, hook)
            return
    _return_created.append((name, hook))


def run_return_created(return_request: ReturnRequest, *, now: datetime) -> None:
    """Call every registered hook, in registration order, in the caller's transaction."""
    for _name, hook in _return_created:
        hook(return_request, now=now)


# --------------------------------------------------------------------------
# Shipment created (tracking attaches events kept for an unmatched number,
# flags the number's check digit and schedules polling)
# --------------------------------------------------------------------------
if TYPE_CHECKING:
    from rma.models import Shipment

ShipmentCreatedHook = Callable[..., None]

_shipment_created: list[tuple[str, ShipmentCreatedHook]] = []


def register_shipment_created(name: str, hook: ShipmentCreatedHook) -> None:
    """Register `hook(shipment, *, now)` under `name` (re-registering replaces it).

    Called by `rma.services.shipment_hooks_run_created` inside the transaction
    that created the shipment, after the row exists.
    """
    for i, (existing, _fn) in enumerate(_shipment_created):
        if existing == name:
            _shipment_created[i] = (name, hook)
            return
    _shipment_created.append((name, hook))


def run_shipment_created(shipment: Shipment, *, now: datetime) -> None:
    """Call every registered shipment hook, in registration order, in the caller's transaction."""
    for _name, hook in _shipment_created:
        hook(shipment, now=now)


# --------------------------------------------------------------------------
# Tracking-number validation for numbers a customer types (the portal lives
# in `rma`, the carrier rules in `tracking`)
# --------------------------------------------------------------------------
TrackingNumberValidator = Callable[[str, str], str]

_tracking_number_validator: list[TrackingNumberValidator] = []


def register_tracking_number_validator(validator: TrackingNumberValidator) -> None:
    """Register `validator(carrier, number) -> normalized number`, which raises
    `django.core.exceptions.ValidationError` with a clear message for a number
    that fails its carrier's check digit. Re-registering replaces it."""
    _tracking_number_validator[:] = [validator]


def validate_tracking_number(carrier: str, number: str) -> str:
    """The registered validator's answer (normalized number); without one, the
    number with whitespace removed and upper-cased."""
    if _tracking_number_validator:
        return _tracking_number_validator[0](carrier, number)
    return "".join(number.split()).upper()
