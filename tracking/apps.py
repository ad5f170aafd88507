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
