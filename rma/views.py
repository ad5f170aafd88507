"""Customer portal views. Interfaces only: parse input, call a selector or service, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The tenant's portal home: the order lookup form (`email`, `order_number`)."""
    return render(request, "portal/home.html", {})
