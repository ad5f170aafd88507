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

ReturnCreatedHook = Callable[..., None]

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
