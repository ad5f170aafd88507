"""`TenantScopedAdmin`: the base of every tenant-owned model's admin (DESIGN.md section 3).

What it scopes, for the tenants the user may act in on this host
(`request_tenant_roles`):

- the changelist, change form, history and delete views (`get_queryset`);
- foreign-key and many-to-many choices, hence raw-id values typed by hand;
- autocomplete and raw-id popups, which go through the related model's
  admin `get_queryset` (every tenant-owned admin subclasses this);
- list filters on relations (`TenantRelatedFieldListFilter`);
- actions: each selected object is re-checked against the action's role.

Permissions are per tenant role, not Django model permissions: `view_role`,
`add_role`, `change_role`, `delete_role` (viewer < agent < admin), checked
against `obj.tenant` when there is an object. A form's related rows must share
the object's tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from returns_portal.tenancy.models import Role, Tenant
from returns_portal.tenancy.services import request_tenant_roles, role_at_least, tenants_with_role

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def is_tenant_owned(model: type[models.Model]) -> bool:
    """True for models with a `tenant` foreign key to `Tenant`."""
    try:
        field = model._meta.get_field("tenant")
    except Exception:
        return False
    return getattr(field, "related_model", None) is Tenant


def scope_queryset(qs: models.QuerySet, tenant_ids: list[int]) -> models.QuerySet:
    """Limit a queryset of Tenant or a tenant-owned model to `tenant_ids`."""
    if qs.model is Tenant:
        return qs.filter(pk__in=tenant_ids)
    if is_tenant_owned(qs.model):
        return qs.filter(tenant_id__in=tenant_ids)
    return qs


def tenant_action(*, role: str = Role.AGENT, description: StrOrPromise | None = None) -> Callable:
    """Decorate an admin action with the role it needs on each selected object's tenant."""

    def decorator(func: Callable) -> Callable:
        func.allowed_role = role  # type: ignore[attr-defined]
        if description is not None:
            func.short_description = description  # type: ignore[attr-defined]
        return func

    return decorator


class TenantRelatedFieldListFilter(RelatedFieldListFilter):
    """A relation filter whose choices are the user's tenants' rows only."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        tenant_ids = tenants_with_role(request, Role.VIEWER)
        qs = scope_queryset(related._default_manager.all(), tenant_ids)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            qs = qs.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in qs[:500]]


class TenantScopedModelForm(forms.ModelForm):
    """Checks that every related tenant-owned row shares the object's tenant."""

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        tenant = cleaned.get("tenant")
        if tenant is None and getattr(self.instance, "tenant_id", None):
            tenant = self.instance.tenant
        if tenant is None:
            return cleaned
        for name, value in cleaned.items():
            if name == "tenant" or value is None:
                continue
            values = value if isinstance(value, models.QuerySet | list | tuple) else [value]
            for item in values:
                if (
                    isinstance(item, models.Model)
                    and is_tenant_owned(type(item))
                    and getattr(item, "tenant_id", None) != tenant.pk
                ):
                    self.add_error(name, _("This belongs to another tenant."))
                    break
        return cleaned


class TenantScopedAdmin(admin.ModelAdmin):
    """Admin for a tenant-owned model. See the module docstring for what it scopes."""

    view_role: str = Role.VIEWER
    add_role: str = Role.ADMIN
    change_role: str = Role.ADMIN
    delete_role: str = Role.ADMIN
    form: type[forms.ModelForm] = TenantScopedModelForm

    # --- scoping ---------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = super().get_queryset(request)
        return scope_queryset(qs, tenants_with_role(request, self.view_role))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if related is Tenant:
            ids = tenants_with_role(request, self._form_role(request))
            kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
        elif is_tenant_owned(related):
            ids = tenants_with_role(request, Role.VIEWER)
            base = kwargs.get("queryset") or related._default_manager.all()
            kwargs["queryset"] = base.filter(tenant_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if is_tenant_owned(related):
            ids = tenants_with_role(request, Role.VIEWER)
            base = kwargs.get("queryset") or related._default_manager.all()
            kwargs["queryset"] = base.filter(tenant_id__in=ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _form_role(self, request: HttpRequest) -> str:
        return self.change_role

    def get_list_filter(self, request: HttpRequest) -> list:
        scoped = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation and (
                    field.related_model is Tenant or is_tenant_owned(field.related_model)
                ):
                    item = (item, TenantRelatedFieldListFilter)
            scoped.append(item)
        return scoped

    def get_exclude(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        # On a tenant host the tenant is implied; elsewhere a new row picks one.
        if getattr(request, "tenant", None) is not None or obj is not None:
            exclude.append("tenant")
        return exclude

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and "tenant" not in readonly:
            readonly.append("tenant")
        return readonly

    def _adds_tenant_field(self, request: HttpRequest, obj: models.Model | None) -> bool:
        """A new row on the base domain picks its tenant: the add form shows the field."""
        return (
            obj is None and getattr(request, "tenant", None) is None and is_tenant_owned(self.model)
        )

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if self._adds_tenant_field(request, obj) and "tenant" not in fields:
            fields.insert(0, "tenant")
        return fields

    def get_fieldsets(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if self._adds_tenant_field(request, obj) and "tenant" not in flatten_fieldsets(fieldsets):
            name, options = fieldsets[0]
            fieldsets[0] = (name, {**options, "fields": ("tenant", *options["fields"])})
        return fieldsets

    def get_form(
        self,
        request: HttpRequest,
        obj: models.Model | None = None,
        change: bool = False,
        **kwargs: Any,
    ):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not is_tenant_owned(self.model):
            return form
        host_tenant = getattr(request, "tenant", None) if obj is None else None

        class ScopedForm(form):  # type: ignore[misc, valid-type]
            """Gives a new row the host's tenant (related rows are validated against it),
            and checks unique constraints that lead with the tenant even when the form
            does not show it, so a duplicate is a form error rather than an IntegrityError."""

            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                if host_tenant is not None:
                    self.instance.tenant = host_tenant

            def _get_validation_exclusions(self) -> set[str]:
                exclude = set(super()._get_validation_exclusions())
                if getattr(self.instance, "tenant_id", None) is not None:
                    exclude.discard("tenant")
                return exclude

        return ScopedForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        host_tenant = getattr(request, "tenant", None)
        if not change and host_tenant is not None:
            obj.tenant = host_tenant
        tenant_id = obj.pk if isinstance(obj, Tenant) else obj.tenant_id
        role = request_tenant_roles(request).get(tenant_id)
        needed = self.change_role if change else self.add_role
        if not role_at_least(role, needed):
            raise PermissionDenied(_("You may not change this tenant's data."))
        super().save_model(request, obj, form, change)

    # --- permissions -----------------------------------------------------
    def _has_role(self, request: HttpRequest, needed: str, obj: models.Model | None) -> bool:
        roles = request_tenant_roles(request)
        if obj is not None:
            tenant_id = obj.pk if isinstance(obj, Tenant) else getattr(obj, "tenant_id", None)
            return tenant_id is not None and role_at_least(roles.get(tenant_id), needed)
        return any(role_at_least(role, needed) for role in roles.values())

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._has_role(request, self.view_role, None)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._has_role(request, self.view_role, obj) or self.has_change_permission(
            request, obj
        )

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._has_role(request, self.add_role, None)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._has_role(request, self.change_role, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._has_role(request, self.delete_role, obj)

    # --- actions ---------------------------------------------------------
    def get_action(self, action: Any) -> Any:
        found = super().get_action(action)
        if found is None:
            return None
        func, name, description = found
        needed = getattr(
            func,
            "allowed_role",
            self.delete_role if name == "delete_selected" else self.change_role,
        )

        def checked(
            modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: models.QuerySet
        ) -> Any:
            allowed = tenants_with_role(request, needed)
            permitted = scope_queryset(queryset, allowed)
            if permitted.count() != queryset.count():
                modeladmin.message_user(
                    request,
                    _("You lack the %(role)s role for some selected rows; nothing was done.")
                    % {"role": needed},
                    messages.ERROR,
                )
                return None
            return func(modeladmin, request, permitted)

        checked.allowed_role = needed  # type: ignore[attr-defined]
        for attr in ("allowed_permissions", "short_description"):
            if hasattr(func, attr):
                setattr(checked, attr, getattr(func, attr))
        return checked, name, description


class SuperuserOnlyAdminMixin:
    """For models that belong to no tenant (users, groups, leases): superusers only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser
