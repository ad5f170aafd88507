from django.apps import AppConfig


class ReturnsPortalConfig(AppConfig):
    """The composition root as an app: its management commands and tasks."""

    name = "returns_portal"
    verbose_name = "Returns portal"
