from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = "Refunds"

    def ready(self) -> None:
        from refunds.services import provision_tenant, refund_create_for_return
        from returns_portal.tenancy import provisioning
        from rma import hooks

        hooks.register_return_created("refunds", refund_create_for_return)
        provisioning.register("refunds", provision_tenant)
