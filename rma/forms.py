"""Portal forms: they parse and validate input; domain rules stay in the services."""

from __future__ import annotations

import secrets
from datetime import UTC
from typing import Any, cast

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rma.models import ReturnMethod, ReturnReason
from rma.photos import MAX_PHOTOS_PER_LINE
from rma.selectors import OrderEligibility
from rma.services import PickupInput, ReturnLineInput


class LookupForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254)
    order_number = forms.CharField(label=gettext_lazy("Order number"), max_length=64)

    def clean_order_number(self) -> str:
        value = self.cleaned_data["order_number"].strip()
        if not value.lstrip("#").strip():
            raise forms.ValidationError(_("Enter your order number."))
        return value


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Zero or more files; each is checked by `rma.photos` in the view."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list:
        if not data:
            return []
        files = data if isinstance(data, list | tuple) else [data]
        if len(files) > MAX_PHOTOS_PER_LINE:
            raise forms.ValidationError(
                _("At most %(n)d photos per item.") % {"n": MAX_PHOTOS_PER_LINE}
            )
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def new_submission_nonce() -> str:
    """The hidden nonce that makes a double submit answer the first return."""
    return "portal:" + secrets.token_urlsafe(24)


class ReturnForm(forms.Form):
    """Per eligible line: `q_<line_id>` (quantity, 0 = not returned), `r_<line_id>`
    (reason code), `n_<line_id>` (note), `p_<line_id>` (photos); then the method,
    the pickup address and window (in the tenant's zone, which the view
    activates) and the hidden `nonce`."""

    method = forms.ChoiceField(
        label=gettext_lazy("How will you send it?"),
        choices=ReturnMethod.choices,
        widget=forms.RadioSelect,
        initial=ReturnMethod.DROP_OFF,
    )
    pickup_address = forms.CharField(
        label=gettext_lazy("Pickup address"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    pickup_start = forms.DateTimeField(
        label=gettext_lazy("Pickup from"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    pickup_end = forms.DateTimeField(
        label=gettext_lazy("Pickup until"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(
        self,
        *args: Any,
        eligibility: OrderEligibility,
        reasons: list[ReturnReason],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.eligibility = eligibility
        self.reasons = reasons
        if not eligibility.policy.pickup_enabled:
            cast(forms.ChoiceField, self.fields["method"]).choices = [
                (ReturnMethod.DROP_OFF.value, ReturnMethod.DROP_OFF.label)
            ]
        reason_choices = [("", _("Choose a reason"))] + [
            (r.code, _(r.label) + (" " + _("(photo required)") if r.requires_photo else ""))
            for r in reasons
        ]
        self.line_rows = []
        for item in eligibility.eligible:
            lid = item.line_id
            most = item.eligibility.returnable_quantity
            self.fields[f"q_{lid}"] = forms.TypedChoiceField(
                label=_("Quantity"),
                choices=[(n, str(n)) for n in range(most + 1)],
                coerce=int,
                initial=0,
                required=False,
                empty_value=0,  # type: ignore[arg-type]  # the stubs want a str; any value works
            )
            self.fields[f"r_{lid}"] = forms.ChoiceField(
                label=_("Reason"), choices=reason_choices, required=False
            )
            self.fields[f"n_{lid}"] = forms.CharField(
                label=_("Note (optional)"),
                required=False,
                max_length=2000,
                widget=forms.Textarea(attrs={"rows": 2}),
            )
            self.fields[f"x_{lid}"] = forms.CharField(
                label=_("Exchange instead (optional)"),
                help_text=_(
                    "The size or colour you want instead, e.g. its SKU. Leave empty for a refund."
                ),
                required=False,
                max_length=255,
            )
            self.fields[f"p_{lid}"] = MultipleFileField(
                label=_("Photos"),
                required=False,
                widget=MultipleFileInput(
                    attrs={"accept": "image/jpeg,image/png,image/webp,image/heic,image/heif"}
                ),
            )
            self.line_rows.append(
                {
                    "item": item,
                    "quantity": self[f"q_{lid}"],
                    "reason": self[f"r_{lid}"],
                    "note": self[f"n_{lid}"],
                    "exchange": self[f"x_{lid}"],
                    "photos": self[f"p_{lid}"],
                }
            )

    def _clean_pickup_time(self, name: str) -> Any:
        """A time the database can store: its UTC instant must stay within year 9999."""
        value = self.cleaned_data.get(name)
        if value is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError(_("Datetime value out of range.")) from None
        return value

    def clean_pickup_start(self) -> Any:
        return self._clean_pickup_time("pickup_start")

    def clean_pickup_end(self) -> Any:
        return self._clean_pickup_time("pickup_end")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        chosen = 0
        for item in self.eligibility.eligible:
            lid = item.line_id
            if cleaned.get(f"q_{lid}"):
                chosen += 1
                if not cleaned.get(f"r_{lid}"):
                    self.add_error(f"r_{lid}", _("Choose a reason."))
        if not chosen and not self.errors:
            raise forms.ValidationError(_("Choose at least one item to return."))
        return cleaned

    def chosen_lines(self) -> list[tuple[str, ReturnLineInput, list]]:
        """`(line_id, input, uploaded files)` for each line with a quantity, in order."""
        chosen = []
        for item in self.eligibility.eligible:
            lid = item.line_id
            quantity = self.cleaned_data.get(f"q_{lid}") or 0
            if quantity:
                chosen.append(
                    (
                        lid,
                        ReturnLineInput(
                            line_id=lid,
                            quantity=quantity,
                            reason=self.cleaned_data.get(f"r_{lid}") or "",
                            note=self.cleaned_data.get(f"n_{lid}") or "",
                            resolution="exchange"
                            if (self.cleaned_data.get(f"x_{lid}") or "").strip()
                            else "refund",
                            exchange_sku=(self.cleaned_data.get(f"x_{lid}") or "").strip(),
                        ),
                        self.cleaned_data.get(f"p_{lid}") or [],
                    )
                )
        return chosen

    def pickup(self) -> PickupInput | None:
        if self.cleaned_data.get("method") != ReturnMethod.PICKUP:
            return None
        return PickupInput(
            address=self.cleaned_data.get("pickup_address") or "",
            window_start=self.cleaned_data.get("pickup_start"),
            window_end=self.cleaned_data.get("pickup_end"),
        )

    #: service field -> form field, for the service's refusals.
    def field_for(self, refusal_field: str, line_ids: list[str]) -> str | None:
        parts = refusal_field.split(".")
        if parts[0] == "lines" and len(parts) == 3 and parts[1].isdigit():
            index = int(parts[1])
            if index < len(line_ids):
                prefix = {
                    "quantity": "q",
                    "reason": "r",
                    "note": "n",
                    "photos": "p",
                    "exchange_sku": "x",
                    "resolution": "x",
                }.get(parts[2], "q")
                return f"{prefix}_{line_ids[index]}"
        return {
            "method": "method",
            "pickup.address": "pickup_address",
            "pickup.window_start": "pickup_start",
            "pickup.window_end": "pickup_end",
        }.get(refusal_field)
