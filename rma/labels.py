"""The label seam: how `rma` buys a return label without importing `tracking`.

`rma` may not import `tracking` (DESIGN.md section 2), yet the portal and the
API must buy labels through the carrier adapters. Apps to the right register
a provider per carrier code in `AppConfig.ready()`:

    register_label_provider("sandbox", provider)

A provider is `provider(request: LabelRequest, *, timeout: float) -> LabelOutcome`.
It does I/O only (no database): everything it needs is in the `LabelRequest`
(plain strings); `request.reference` is stable per shipment and is the
carrier idempotency key, so asking twice buys one label. It answers
`LabelOutcome.ready(pdf=..., tracking_number=...)`, `LabelOutcome.pending()`
(the carrier will answer later, or it could not answer within `timeout`
seconds) or `LabelOutcome.failed(reason)` (permanent). An exception counts
as `pending` (tried again) unless it has a true `permanent` attribute (like
the adapters' `CarrierError(permanent=True)`), which counts as `failed`.

Flow (DESIGN.md section 8 step 2): `return_request_create` commits the RMA
with a `Shipment` in `label_state=pending`; after the commit, outside any
transaction, the portal and the API call `label_purchase_or_defer`, which
runs `label_purchase` with `settings.LABEL_SYNC_TIMEOUT` (10 s) and, if the
label is not ready by then, enqueues the `rma.label_purchase` task (by
shipment id and tenant) while the page polls. The task tries again with a
longer timeout, backing off through `Shipment.label_next_attempt_at`; the
outbox sweeper re-enqueues pending labels (`rma.outbox`). After
`MAX_ATTEMPTS` the label is `failed`. A ready label is stored by
`rma.services.shipment_label_store` (the PDF in `Shipment.label_file`,
`label_state=ready`, the tracking number, and the `label_created`
milestone with source `system`).
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from rma.models import LabelState, ReturnCentre, Shipment

log = logging.getLogger(__name__)

LABEL_PURCHASE_TASK = "rma.label_purchase"
#: Timeout for a try from the task (seconds), and the number of tries before `failed`.
TASK_TIMEOUT = 60.0
MAX_ATTEMPTS = 8


class LabelStatus(StrEnum):
    READY = "ready"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class LabelAddress:
    """A postal address as printed: `name`, then `lines` (street, city, postcode...), ISO `country`."""

    name: str
    lines: tuple[str, ...] = ()
    country: str = ""
    phone: str = ""
    email: str = ""

    def printed(self) -> list[str]:
        return [self.name, *[line for line in self.lines if line], self.country]


@dataclass(frozen=True)
class LabelRequest:
    """What a provider gets: plain data, no model instances.

    `reference` is stable per shipment (`label:<tenant id>:<shipment id>`) and
    serves as the carrier's idempotency key; `ship_from` is the customer,
    `ship_to` the return centre.
    """

    reference: str
    carrier: str
    tenant_slug: str
    tenant_name: str
    rma_number: str
    order_number: str
    method: str
    ship_from: LabelAddress
    ship_to: LabelAddress
    pickup_window: tuple[datetime, datetime] | None = None
    #: When the label is bought (aware UTC): carriers that encode the label time
    #: in the number (the sandbox) use it rather than their own clock.
    requested_at: datetime | None = None


@dataclass(frozen=True)
class LabelOutcome:
    """A provider's answer. `pdf` and `tracking_number` are set exactly when `ready`."""

    status: LabelStatus
    pdf: bytes = field(default=b"", repr=False)
    tracking_number: str = ""
    tracking_provider: str = ""
    reason: str = ""

    @classmethod
    def ready(
        cls, *, pdf: bytes, tracking_number: str, tracking_provider: str = ""
    ) -> LabelOutcome:
        if not pdf or not tracking_number:
            raise ValueError("a ready label needs its PDF and tracking number")
        return cls(
            LabelStatus.READY,
            pdf=pdf,
            tracking_number=tracking_number,
            tracking_provider=tracking_provider,
        )

    @classmethod
    def pending(cls, reason: str = "") -> LabelOutcome:
        return cls(LabelStatus.PENDING, reason=reason)

    @classmethod
    def failed(cls, reason: str) -> LabelOutcome:
        return cls(LabelStatus.FAILED, reason=reason or "label purchase failed")


LabelProvider = Callable[..., LabelOutcome]

_providers: dict[str, LabelProvider] = {}


def register_label_provider(carrier: str, provider: LabelProvider) -> None:
    """Register `provider(request, *, timeout) -> LabelOutcome` for `carrier` (replaces)."""
    _providers[carrier.strip().lower()] = provider


def unregister_label_provider(carrier: str) -> None:
    _providers.pop(carrier.strip().lower(), None)


def label_provider_for(carrier: str) -> LabelProvider | None:
    return _providers.get((carrier or "").strip().lower())


def label_request_build(*, shipment: Shipment, now: datetime | None = None) -> LabelRequest:
    """The provider's input for `shipment` (reads the return, order, tenant, return centre)."""
    rr = shipment.return_request
    order = rr.order
    tenant = rr.tenant
    centre = rr.return_centre or (
        ReturnCentre.objects.filter(tenant=tenant, is_default=True).first()
    )
    ship_to = LabelAddress(
        name=centre.name if centre else tenant.name,
        lines=tuple((centre.address if centre else "").splitlines()),
        country=centre.country if centre else tenant.country,
        email=tenant.support_email,
    )
    if rr.method == "pickup" and rr.pickup_address:
        from_lines = tuple(rr.pickup_address.splitlines())
    else:
        from_lines = (
            order.shipping_address1,
            order.shipping_address2,
            " ".join(p for p in (order.shipping_zip, order.shipping_city) if p),
            order.shipping_province,
        )
    ship_from = LabelAddress(
        name=order.shipping_name or rr.email,
        lines=tuple(line for line in from_lines if line),
        country=order.shipping_country,
        phone=order.shipping_phone,
        email=rr.email,
    )
    window = None
    if rr.pickup_window_start and rr.pickup_window_end:
        window = (rr.pickup_window_start, rr.pickup_window_end)
    return LabelRequest(
        reference=f"label:{shipment.tenant_id}:{shipment.pk}",
        carrier=shipment.carrier,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        rma_number=rr.rma_number,
        order_number=order.number,
        method=rr.method,
        ship_from=ship_from,
        ship_to=ship_to,
        pickup_window=window,
        requested_at=now,
    )


def _call_with_deadline(
    provider: LabelProvider, request: LabelRequest, timeout: float
) -> LabelOutcome:
    """Run the provider in a worker thread and wait at most `timeout` seconds.

    A provider still running after the deadline is left to finish on its own;
    its answer is dropped and the task asks again with the same reference.
    """
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="label")
    future = executor.submit(provider, request, timeout=timeout)
    try:
        outcome = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return LabelOutcome.pending(f"no answer within {timeout:g} s")
    except Exception as exc:
        if getattr(exc, "permanent", False):
            return LabelOutcome.failed(str(exc)[:500])
        log.warning("label provider for %s raised; will retry", request.carrier, exc_info=True)
        return LabelOutcome.pending(str(exc)[:500])
    finally:
        executor.shutdown(wait=False)
    if not isinstance(outcome, LabelOutcome):
        return LabelOutcome.failed("the label provider gave no answer")
    return outcome


def label_purchase(
    *, shipment: Shipment, timeout: float, now: datetime | None = None
) -> LabelOutcome:
    """Buy the label of a `pending` shipment and store the answer. Never inside a transaction.

    Returns the outcome: `ready` (stored: file, tracking number,
    `label_created`), `pending` (attempt counted, next try scheduled) or
    `failed` (stored with its reason). A shipment that is not pending any
    more answers with its stored state and calls no provider. A carrier with
    no registered provider fails.
    """
    from rma.services import shipment_label_store

    now = now or timezone.now()
    shipment = Shipment.objects.select_related(
        "return_request__order", "return_request__tenant", "return_request__return_centre"
    ).get(pk=shipment.pk, tenant_id=shipment.tenant_id)
    if shipment.label_state != LabelState.PENDING:
        return stored_outcome(shipment)
    provider = label_provider_for(shipment.carrier)
    if provider is None:
        outcome = LabelOutcome.failed(f"no label provider for carrier {shipment.carrier!r}")
    else:
        outcome = _call_with_deadline(
            provider, label_request_build(shipment=shipment, now=now), timeout
        )
    shipment_label_store(shipment=shipment, outcome=outcome, now=now)
    return outcome


def stored_outcome(shipment: Shipment) -> LabelOutcome:
    """The outcome a shipment's stored label state stands for (no PDF bytes)."""
    if shipment.label_state == LabelState.READY:
        return LabelOutcome(LabelStatus.READY, tracking_number=shipment.tracking_number)
    if shipment.label_state == LabelState.FAILED:
        return LabelOutcome.failed(shipment.label_error)
    return LabelOutcome.pending()


def retry_delay(attempts: int) -> timedelta:
    """Back-off before try `attempts + 1`: 30 s doubling, at most 10 minutes."""
    return timedelta(seconds=min(600, 30 * 2 ** max(0, attempts - 1)))


def label_purchase_or_defer(*, shipment: Shipment, now: datetime | None = None) -> LabelOutcome:
    """`label_purchase` within `settings.LABEL_SYNC_TIMEOUT`; if still pending, enqueue
    the `rma.label_purchase` task (shipment id, tenant id) and answer `pending`."""
    from rma.services import enqueue_on_commit

    outcome = label_purchase(shipment=shipment, timeout=settings.LABEL_SYNC_TIMEOUT, now=now)
    if outcome.status == LabelStatus.PENDING:
        enqueue_on_commit(LABEL_PURCHASE_TASK, shipment.pk, shipment.tenant_id)
    return outcome


def pending_label_shipments(*, return_request) -> list[Shipment]:
    """The return's shipments whose label is still to be bought."""
    return list(
        Shipment.objects.filter(
            tenant_id=return_request.tenant_id,
            return_request=return_request,
            label_state=LabelState.PENDING,
        )
    )


def labels_purchase_for_return(*, return_request, now: datetime | None = None) -> None:
    """Buy (or defer) every pending label of a just-committed return."""
    for shipment in pending_label_shipments(return_request=return_request):
        label_purchase_or_defer(shipment=shipment, now=now)
