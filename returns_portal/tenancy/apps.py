from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TenancyConfig(AppConfig):
    default = True
    name = "returns_portal.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"


class PortalAdminConfig(admin_apps.AdminConfig):
    """Replaces `django.contrib.admin` in INSTALLED_APPS so `admin.site` is a `TenantAdminSite`."""

    default = False
    default_site = "returns_portal.tenancy.admin_site.TenantAdminSite"
