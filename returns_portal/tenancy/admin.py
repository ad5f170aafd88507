"""Admin for the tenancy core.

Tenant admins see and edit their own tenant's settings, domains, people
(`Membership`, by e-mail; they cannot grant staff or superuser status) and
API keys. Users, groups and job leases are for superusers only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from returns_portal.tenancy.admin_base import SuperuserOnlyAdminMixin, TenantScopedAdmin
from returns_portal.tenancy.models import ApiKey, JobLease, Membership, Role, Tenant, TenantDomain
from returns_portal.tenancy.services import api_key_create

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class SuperuserUserAdmin(SuperuserOnlyAdminMixin, UserAdmin):
    pass


@admin.register(Group)
class SuperuserGroupAdmin(SuperuserOnlyAdminMixin, GroupAdmin):
    pass


@admin.register(JobLease)
class JobLeaseAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "holder", "acquired_at", "expires_at")


class TenantDomainInline(admin.TabularInline):
    model = TenantDomain
    extra = 0

    def _may(self, request: HttpRequest, obj: Any) -> bool:
        return request.user.is_superuser

    has_add_permission = _may  # type: ignore[assignment]
    has_change_permission = _may  # type: ignore[assignment]
    has_delete_permission = _may  # type: ignore[assignment]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    """Tenants: superusers create and delete; a tenant's admins edit its settings."""

    list_display = ("slug", "name", "country", "time_zone", "currency", "is_active")
    search_fields = ("slug", "name")
    inlines = [TenantDomainInline]
    # A logo typed without a scheme is https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = (
        "slug",
        "name",
        "country",
        "subdivision",
        "time_zone",
        "currency",
        "brand_color",
        "logo_url",
        "support_email",
        "escalation_email",
        "is_active",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if request.user.is_superuser:
            return ("slug",) if obj else ()
        return ("slug", "is_active")

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if not change:
            from returns_portal.tenancy import provisioning

            obj.save()
            provisioning.provision(obj)
            return
        super().save_model(request, obj, form, change)


class MembershipForm(forms.ModelForm):
    """Adds a member by e-mail address; creates a login-less user if none exists."""

    email = forms.EmailField(label=_("E-mail"), required=False)

    class Meta:
        model = Membership
        fields = ("email", "role")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["email"].initial = self.instance.user.email
            self.fields["email"].disabled = True
        else:
            self.fields["email"].required = True

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not self.instance.pk and cleaned.get("email"):
            email = cleaned["email"].strip().lower()
            user = User.objects.filter(email__iexact=email).order_by("pk").first()
            if user is None:
                user = User(username=email, email=email)
                user.set_unusable_password()
                self._new_user = user
            elif user.is_superuser:
                raise forms.ValidationError(_("Superusers are managed by the operators."))
            tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
            if (
                user.pk is not None
                and tenant is not None
                and Membership.objects.filter(tenant=tenant, user=user).exists()
            ):
                self.add_error("email", _("This person is already a member of this tenant."))
            self.instance.user = user
        return cleaned

    def save(self, commit: bool = True) -> Membership:
        new_user = getattr(self, "_new_user", None)
        if new_user is not None and new_user.pk is None:
            new_user.save()
            self.instance.user = new_user
        return super().save(commit)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipForm
    list_display = ("user_email", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__email", "user__username")

    @admin.display(description=_("User"))
    def user_email(self, obj: Membership) -> str:
        return obj.user.email or obj.user.get_username()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["email", "role"]
        if getattr(request, "tenant", None) is None and obj is None:
            fields.insert(0, "tenant")
        return fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if getattr(request, "tenant", None) is None and obj is None:
            kwargs["fields"] = ["tenant", "role"]
            base = super().get_form(request, obj, change=change, **kwargs)

            class WithTenant(base):  # type: ignore[misc, valid-type]
                class Meta(base.Meta):  # type: ignore[name-defined]
                    fields = ("tenant", "role")

            return WithTenant
        return super().get_form(request, obj, change=change, **kwargs)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    """API keys: listed with their id, never their secret; created here shows the key once."""

    list_display = ("name", "tenant", "lookup_id", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    fields = ("name", "revoked_at")
    readonly_fields = ("lookup_id", "created_at", "last_used_at")
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        tenant = getattr(request, "tenant", None) or form.cleaned_data.get("tenant")
        if tenant is None:
            raise forms.ValidationError(_("Choose a tenant."))
        created = api_key_create(tenant=tenant, name=obj.name)
        obj.pk = created.api_key.pk
        obj.tenant = tenant
        messages.warning(
            request,
            _("New API key (shown once, copy it now): %(key)s") % {"key": created.raw_key},
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and getattr(request, "tenant", None) is None:
            return ("tenant", "name")
        return ("name", "lookup_id", "created_at", "last_used_at", "revoked_at")

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, _("%(n)d key(s) revoked.") % {"n": count})

    revoke.allowed_role = Role.ADMIN  # type: ignore[attr-defined]
