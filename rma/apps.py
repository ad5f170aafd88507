from django.apps import AppConfig


class RmaConfig(AppConfig):
    name = "rma"
    verbose_name = "Returns"

    def ready(self) -> None:
        from returns_portal.tenancy import provisioning
        from rma.provisioning import provision_tenant

        provisioning.register("rma", provision_tenant)
