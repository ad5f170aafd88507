from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = "Refunds"

    def ready(self) -> None:
        from refunds.services import refund_create_for_return
        from rma import hooks

        hooks.register_return_created("refunds", refund_create_for_return)
