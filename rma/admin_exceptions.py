"""The staff exception queue in the Django admin (issue 5; MISSION "Exceptions, caught
early"; DESIGN.md section 3 for scoping and roles).

`ReturnExceptionAdmin` lists the user's tenants' exceptions (open ones by
default), oldest overdue first, with kind, age, how long overdue, carrier and
tracking number, assignee, priority and the value at risk; filters by kind,
state, carrier, assignee and how overdue; search by RMA, order number,
tracking number and e-mail. The detail page shows the return's timeline
(milestones, status changes, shipments, notifications, other exceptions) and
the exception's activity, and takes a note.

**Value at risk** is the return's `expected_refund_amount/currency`, a
denormalized copy of the refund written by `refunds.due_times.refund_due_times_refresh`
through `rma.services.return_refund_summary_update`: `rma` cannot import
`refunds` (DESIGN.md section 2), and a column on the return keeps the list at
a fixed number of queries.

Actions (agents and admins; `tenant_action` re-checks every selected row's
tenant role, the services check again and write an `ExceptionActivity` row
with who and when): assign to me / to an agent, start a carrier trace
(reference and follow-up time), request proof of drop-off (e-mail), offer a
replacement to a loyal customer (records a `ReplacementOffer`), escalate
(priority up, e-mail to the tenant's escalation address), resolve with a
resolution code. Viewers see the queue and cannot act.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from returns_portal.tenancy.admin_base import (
    TenantScopedAdmin,
    TenantScopedModelForm,
    tenant_action,
)
from returns_portal.tenancy.models import Membership, Role
from returns_portal.tenancy.services import tenants_with_role
from rma.exception_services import (
    RESOLUTION_CODES,
    ExceptionNotOpen,
    NotLoyal,
    StaffNotAllowed,
    exception_assign,
    exception_escalate,
    exception_note_add,
    exception_proof_request,
    exception_replacement_offer,
    exception_staff_resolve,
    exception_trace_start,
)
from rma.models import (
    ExceptionActivity,
    ExceptionState,
    Milestone,
    Notification,
    ReplacementOffer,
    ReturnException,
    ReturnStatusChange,
    Shipment,
    ShipmentDirection,
)
from rma.money import format_amount

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

User = get_user_model()


def _duration(delta: timedelta) -> str:
    """`3 d 4 h`, `5 h 12 m`, `0 m`."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} m"
    return f"{minutes} m"


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------
class StateFilter(admin.SimpleListFilter):
    """Open by default; resolved or all on request."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list:
        return [("open", _("Open")), ("resolved", _("Resolved")), ("all", _("All"))]

    def choices(self, changelist: Any):
        current = self.value() or "open"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(state=ExceptionState.OPEN)
        if value == "resolved":
            return queryset.filter(state=ExceptionState.RESOLVED)
        return queryset


class CarrierFilter(admin.SimpleListFilter):
    """Carriers of the user's tenants' shipments (never another tenant's)."""

    title = _("carrier")
    parameter_name = "carrier"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list:
        carriers = (
            Shipment.objects.filter(tenant_id__in=tenants_with_role(request, Role.VIEWER))
            .order_by("carrier")
            .values_list("carrier", flat=True)
            .distinct()
        )
        return [(c, c) for c in carriers[:100]]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value():
            return queryset.filter(x_carrier=self.value())
        return queryset


def agents_of(tenant_ids: list[int]) -> models.QuerySet:
    """Users with the agent or admin role in every one of `tenant_ids`."""
    users = User.objects.filter(is_active=True)
    for tenant_id in set(tenant_ids):
        users = users.filter(
            pk__in=Membership.objects.filter(
                tenant_id=tenant_id, role__in=[Role.AGENT, Role.ADMIN]
            ).values("user_id")
        )
    return users.order_by("username")


class AssigneeFilter(admin.SimpleListFilter):
    """Me, unassigned, or an agent of the user's tenants."""

    title = _("assignee")
    parameter_name = "assignee"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list:
        tenant_ids = tenants_with_role(request, Role.VIEWER)
        people = (
            User.objects.filter(
                pk__in=Membership.objects.filter(
                    tenant_id__in=tenant_ids, role__in=[Role.AGENT, Role.ADMIN]
                ).values("user_id")
            )
            .exclude(pk=request.user.pk or 0)
            .order_by("username")
        )
        return [
            ("me", _("Assigned to me")),
            ("none", _("Unassigned")),
            *((str(u.pk), u.get_username()) for u in people[:100]),
        ]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        value = self.value()
        if value == "me":
            return queryset.filter(assignee=request.user)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit():
            allowed = {str(pk) for pk, _label in self.lookup_choices[2:]}
            if value not in allowed:
                return queryset.none()
            return queryset.filter(assignee_id=int(value))
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    """How long past the missed target (`due_at`), trace follow-ups due, escalation."""

    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list:
        return [
            ("1d", _("Overdue more than 1 day")),
            ("3d", _("Overdue more than 3 days")),
            ("7d", _("Overdue more than 7 days")),
            ("follow_up", _("Trace follow-up due")),
            ("escalated", _("Escalated")),
        ]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        now = timezone.now()
        value = self.value()
        days = {"1d": 1, "3d": 3, "7d": 7}.get(value or "")
        if days:
            return queryset.filter(due_at__lte=now - timedelta(days=days))
        if value == "follow_up":
            return queryset.filter(trace_follow_up_at__lte=now)
        if value == "escalated":
            return queryset.filter(escalated_at__isnull=False)
        return queryset


# --------------------------------------------------------------------------
# Forms
# --------------------------------------------------------------------------
class ExceptionNoteForm(TenantScopedModelForm):
    """The detail page edits nothing on the row; it takes a note (an activity row)."""

    note = forms.CharField(
        label=_("Add a note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    class Meta:
        model = ReturnException
        fields: list[str] = []


class ActionForm(forms.Form):
    """Base of the intermediate pages: carries the selection back."""


class AgentChoiceField(forms.ModelChoiceField):
    """Agents by username (not by their full name, which may be blank)."""

    def label_from_instance(self, obj: Any) -> str:
        return obj.get_username()


class AssignForm(ActionForm):
    assignee = AgentChoiceField(queryset=User.objects.none(), label=_("Agent"))

    def __init__(self, *args: Any, agents: models.QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = agents


class TraceForm(ActionForm):
    trace_ref = forms.CharField(label=_("Carrier trace reference"), max_length=100)
    follow_up_at = forms.DateTimeField(
        label=_("Follow up at (UTC, YYYY-MM-DD HH:MM)"),
        input_formats=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"],
    )


class ResolveForm(ActionForm):
    resolution_code = forms.ChoiceField(label=_("Resolution"), choices=RESOLUTION_CODES)
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


# --------------------------------------------------------------------------
# Inline and admin
# --------------------------------------------------------------------------
class ActivityInline(admin.TabularInline):
    """Who did what and when: read-only, written by the services."""

    model = ExceptionActivity
    fields = ("at", "action", "actor_label", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("at", "pk")
    verbose_name_plural = _("Activity")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # the parent admin has already checked the row's tenant


def _primary_shipment(field: str) -> Subquery:
    return Subquery(
        Shipment.objects.filter(
            tenant_id=OuterRef("tenant_id"),
            return_request_id=OuterRef("return_request_id"),
            direction=ShipmentDirection.INBOUND,
        )
        .order_by("-is_primary", "pk")
        .values(field)[:1]
    )


class ReturnExceptionAdmin(TenantScopedAdmin):
    view_role = Role.VIEWER
    change_role = Role.AGENT  # agents add notes and act
    add_role = Role.ADMIN
    delete_role = Role.ADMIN
    form = ExceptionNoteForm

    list_display = (
        "rma",
        "kind",
        "reason",
        "age",
        "overdue_by",
        "carrier",
        "tracking_number",
        "assignee",
        "priority",
        "escalated",
        "value_at_risk",
        "state",
    )
    list_display_links = ("rma", "kind")
    list_filter = ("kind", StateFilter, CarrierFilter, AssigneeFilter, OverdueFilter)
    search_fields = (
        "return_request__rma_number",
        "return_request__order__number",
        "return_request__order__number_key",
        "return_request__email",
        "shipment__tracking_number",
        "return_request__shipments__tracking_number",
    )
    ordering = (F("due_at").asc(nulls_last=True), "opened_at", "pk")  # type: ignore[assignment]
    list_select_related = ("return_request", "return_request__order", "shipment", "assignee")
    list_per_page = 50
    inlines = [ActivityInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "return_request",
                    "shipment",
                    "kind",
                    "state",
                    "reason",
                    "detail",
                    "due_at",
                    "opened_at",
                    "resolved_at",
                    "resolution_code",
                    "resolution_note",
                    "resolved_by",
                )
            },
        ),
        (
            _("Handling"),
            {"fields": ("assignee", "priority", "escalated_at", "trace_ref", "trace_follow_up_at")},
        ),
        (_("Value at risk"), {"fields": ("value_at_risk",)}),
        (_("Timeline of the return"), {"fields": ("timeline",)}),
        (_("Note"), {"fields": ("note",)}),
    )
    readonly_fields = (
        "return_request",
        "shipment",
        "kind",
        "state",
        "reason",
        "detail",
        "due_at",
        "opened_at",
        "resolved_at",
        "resolution_code",
        "resolution_note",
        "resolved_by",
        "assignee",
        "priority",
        "escalated_at",
        "trace_ref",
        "trace_follow_up_at",
        "value_at_risk",
        "timeline",
    )
    actions = [
        "assign_to_me",
        "assign_to_agent",
        "start_trace",
        "request_proof_of_dropoff",
        "offer_replacement",
        "escalate",
        "resolve",
    ]

    # --- queryset --------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                x_carrier=Coalesce(F("shipment__carrier"), _primary_shipment("carrier")),
                x_tracking=Coalesce(
                    F("shipment__tracking_number"), _primary_shipment("tracking_number")
                ),
            )
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return [fs for fs in fieldsets if "note" not in fs[1]["fields"]]
        return fieldsets

    def get_actions(self, request: HttpRequest) -> dict:
        if not tenants_with_role(request, Role.AGENT):
            return {}  # viewers see no actions (and the wrapper refuses them anyway)
        return super().get_actions(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # opened by detectors, check-in and inspection only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # resolved, never deleted

    # --- columns ---------------------------------------------------------
    @admin.display(description=_("RMA"), ordering="return_request__rma_number")
    def rma(self, obj: ReturnException) -> str:
        return obj.return_request.rma_number

    @admin.display(description=_("age"), ordering="opened_at")
    def age(self, obj: ReturnException) -> str:
        end = obj.resolved_at or timezone.now()
        return _duration(end - obj.opened_at)

    @admin.display(description=_("overdue by"), ordering="due_at")
    def overdue_by(self, obj: ReturnException) -> str:
        if obj.due_at is None:
            return "-"
        end = obj.resolved_at or timezone.now()
        return _duration(end - obj.due_at)

    @admin.display(description=_("carrier"), ordering="x_carrier")
    def carrier(self, obj: ReturnException) -> str:
        return getattr(obj, "x_carrier", None) or "-"

    @admin.display(description=_("tracking number"))
    def tracking_number(self, obj: ReturnException) -> str:
        return getattr(obj, "x_tracking", None) or "-"

    @admin.display(description=_("escalated"), boolean=True)
    def escalated(self, obj: ReturnException) -> bool:
        return obj.escalated_at is not None

    @admin.display(
        description=_("value at risk"), ordering="return_request__expected_refund_amount"
    )
    def value_at_risk(self, obj: ReturnException) -> str:
        rr = obj.return_request
        if rr.expected_refund_amount is None or not rr.expected_refund_currency:
            return "-"
        amount = format_amount(rr.expected_refund_amount, rr.expected_refund_currency)
        return f"{amount} {rr.expected_refund_currency}"

    @admin.display(description=_("timeline"))
    def timeline(self, obj: ReturnException) -> str:
        """The return's story in time order (UTC): milestones, status changes,
        shipments and their last scan, notifications, exceptions."""
        rr = obj.return_request
        scope = {"tenant_id": rr.tenant_id, "return_request_id": rr.pk}
        items: list[tuple[datetime, str, str]] = []
        for m in Milestone.objects.filter(**scope):
            items.append(
                (m.reached_at, f"milestone: {m.get_name_display()}", f"{m.source} {m.actor}")
            )
        for c in ReturnStatusChange.objects.filter(**scope):
            items.append((c.at, f"status: {c.from_status} -> {c.to_status}", c.reason))
        for s in Shipment.objects.filter(**scope):
            items.append((s.created_at, f"shipment {s.carrier} {s.tracking_number}", s.status))
            if s.last_scan_at:
                items.append(
                    (s.last_scan_at, f"last scan {s.tracking_number}", s.last_scan_location)
                )
        for n in Notification.objects.filter(**scope):
            items.append((n.created_at, f"e-mail: {n.kind}", f"{n.state} {n.to_email}"))
        for e in ReturnException.objects.filter(**scope):
            items.append((e.opened_at, f"exception opened: {e.kind}", e.reason))
            if e.resolved_at:
                items.append((e.resolved_at, f"exception resolved: {e.kind}", e.resolution_code))
        items.sort(key=lambda item: item[0])
        if not items:
            return "-"
        return format_html(
            "<table><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((_utc(at), what, detail) for at, what, detail in items),
            ),
        )

    # --- the note --------------------------------------------------------
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        note = (form.cleaned_data.get("note") or "").strip()
        if note:
            try:
                exception_note_add(exception=obj, text=note, actor=request.user, now=timezone.now())
            except StaffNotAllowed:
                self.message_user(request, _("You may not act on this exception."), messages.ERROR)

    # --- actions ---------------------------------------------------------
    def _intermediate(
        self,
        request: HttpRequest,
        queryset: models.QuerySet,
        form: forms.Form,
        *,
        action: str,
        title: StrOrPromise,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/rma/returnexception/action_form.html", context)

    def _each(
        self, request: HttpRequest, queryset: models.QuerySet, fn: Any, done: StrOrPromise
    ) -> None:
        """Run `fn(exception)` for each selected row; report how many changed and why others
        did not."""
        changed = 0
        for exc in queryset.select_related("return_request", "tenant"):
            try:
                if fn(exc):
                    changed += 1
            except (StaffNotAllowed, ExceptionNotOpen, NotLoyal, ValueError) as exc_error:
                self.message_user(
                    request, f"{exc.return_request.rma_number}: {exc_error}", messages.WARNING
                )
        self.message_user(request, done % {"n": changed}, messages.SUCCESS)

    @tenant_action(role=Role.AGENT, description=_("Assign to me"))
    def assign_to_me(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda e: exception_assign(
                exception=e, assignee=request.user, actor=request.user, now=now
            ),
            _("%(n)s exception(s) assigned to you."),
        )

    @tenant_action(role=Role.AGENT, description=_("Assign to an agent..."))
    def assign_to_agent(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        agents = agents_of(list(queryset.values_list("tenant_id", flat=True).distinct()))
        if "apply" in request.POST:
            form = AssignForm(request.POST, agents=agents)
            if form.is_valid():
                assignee = form.cleaned_data["assignee"]
                now = timezone.now()
                self._each(
                    request,
                    queryset,
                    lambda e: exception_assign(
                        exception=e, assignee=assignee, actor=request.user, now=now
                    ),
                    _("%(n)s exception(s) assigned."),
                )
                return None
        else:
            form = AssignForm(agents=agents)
        return self._intermediate(
            request, queryset, form, action="assign_to_agent", title=_("Assign to an agent")
        )

    @tenant_action(role=Role.AGENT, description=_("Start a carrier trace..."))
    def start_trace(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        now = timezone.now()
        if "apply" in request.POST:
            form = TraceForm(request.POST)
            if form.is_valid():
                ref = form.cleaned_data["trace_ref"]
                follow_up = form.cleaned_data["follow_up_at"]
                if timezone.is_naive(follow_up):
                    follow_up = follow_up.replace(tzinfo=UTC)
                self._each(
                    request,
                    queryset,
                    lambda e: exception_trace_start(
                        exception=e,
                        trace_ref=ref,
                        follow_up_at=follow_up,
                        actor=request.user,
                        now=now,
                    ),
                    _("Trace recorded on %(n)s exception(s)."),
                )
                return None
        else:
            initial = (now + timedelta(days=2)).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            form = TraceForm(initial={"follow_up_at": initial})
        return self._intermediate(
            request, queryset, form, action="start_trace", title=_("Start a carrier trace")
        )

    @tenant_action(role=Role.AGENT, description=_("Request proof of drop-off (e-mail)"))
    def request_proof_of_dropoff(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda e: exception_proof_request(exception=e, actor=request.user, now=now)[1],
            _("Proof of drop-off requested for %(n)s exception(s)."),
        )

    @tenant_action(role=Role.AGENT, description=_("Offer a replacement (loyal customers)"))
    def offer_replacement(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda e: exception_replacement_offer(exception=e, actor=request.user, now=now)[1],
            _("Replacement offered for %(n)s return(s)."),
        )

    @tenant_action(role=Role.AGENT, description=_("Escalate"))
    def escalate(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda e: exception_escalate(exception=e, actor=request.user, now=now),
            _("%(n)s exception(s) escalated."),
        )

    @tenant_action(role=Role.AGENT, description=_("Resolve..."))
    def resolve(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        if "apply" in request.POST:
            form = ResolveForm(request.POST)
            if form.is_valid():
                code = form.cleaned_data["resolution_code"]
                note = form.cleaned_data["note"]
                now = timezone.now()
                self._each(
                    request,
                    queryset,
                    lambda e: exception_staff_resolve(
                        exception=e, resolution_code=code, note=note, actor=request.user, now=now
                    ),
                    _("%(n)s exception(s) resolved."),
                )
                return None
        else:
            form = ResolveForm()
        return self._intermediate(request, queryset, form, action="resolve", title=_("Resolve"))


admin.site.register(ReturnException, ReturnExceptionAdmin)


@admin.register(ReplacementOffer)
class ReplacementOfferAdmin(TenantScopedAdmin):
    """Replacement offers made from the queue: read-only here (the exchange flow acts on them)."""

    list_display = ("return_request", "state", "loyalty_reason", "offered_by", "offered_at")
    list_filter = ("state",)
    search_fields = ("return_request__rma_number",)
    list_select_related = ("return_request", "offered_by")
    readonly_fields = (
        "return_request",
        "exception",
        "state",
        "loyalty_reason",
        "note",
        "offered_by",
        "offered_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
