from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Carrier tracking"

    def ready(self) -> None:
        from rma import hooks
        from tracking.carriers import registry
        from tracking.carriers.sandbox import Adapter as SandboxAdapter
        from tracking.services import shipment_created, tracking_number_validate

        registry.register(SandboxAdapter())
        hooks.register_shipment_created("tracking", shipment_created)
        hooks.register_tracking_number_validator(tracking_number_validate)
        from rma.labels import register_label_provider

        register_label_provider("sandbox", sandbox_label_provider)


def sandbox_label_provider(request, *, timeout: float):
    """The `sandbox` carrier behind `rma.labels` (request: `rma.labels.LabelRequest`).

    The adapter takes plain strings (it imports no app); this wraps its answer
    as a `LabelOutcome`. The sandbox answers at once, so `timeout` is unused.
    """
    from datetime import UTC, datetime

    from rma.labels import LabelOutcome
    from tracking.carriers.sandbox_labels import CARRIER_CODE, sandbox_label_create

    label = sandbox_label_create(
        tenant_slug=request.tenant_slug,
        rma_number=request.rma_number,
        label_at=request.requested_at or datetime.now(UTC),
        reference=f"{request.rma_number} / {request.order_number}",
        ship_from=request.ship_from.printed(),
        ship_to=request.ship_to.printed(),
    )
    return LabelOutcome.ready(
        pdf=label.pdf, tracking_number=label.tracking_number, tracking_provider=CARRIER_CODE
    )
