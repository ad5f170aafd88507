"""Warehouse and refund endpoints (DESIGN.md section 10; issue 6):

- `POST /api/v1/returns/<rma_number>/check-in/` `{condition}`;
- `POST /api/v1/returns/<rma_number>/inspections/` `{lines: [{line_id | sku,
  quantity?, grade, disposition, matches, note?}]}` (`line_id` is the order
  line's public id; `quantity` defaults to every unit of the line not yet
  inspected);
- `GET /api/v1/returns/<rma_number>/refund/`;
- `POST /api/v1/returns/<rma_number>/exchange/` `{carrier, tracking_number,
  lines?: [{line_id, replacement_unit_price}]}`: the replacement of the
  return's exchange lines ships as an OUTBOUND shipment; reaches `exchanged`.

The first call that writes answers 201, a repeat 200 with the stored result.
Another tenant's RMA is the same 404 as a missing one. Refusals are 400
(`{field: [...]}` or `{detail, code}`) and write nothing.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from refunds.models import Exchange
from refunds.selectors import refund_summary
from refunds.services import ExchangeAlreadyShipped, exchange_ship
from rma.models import (
    CheckIn,
    Disposition,
    Inspection,
    InspectionGrade,
    PackageCondition,
    ReturnRequest,
)
from rma.money import format_amount
from rma.warehouse import (
    InspectionEntry,
    WarehouseError,
    checkin_record,
    inspection_record,
    return_get_by_number,
)


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _return(request: Any, rma_number: str) -> ReturnRequest:
    try:
        return return_get_by_number(tenant=request.api_tenant, rma_number=rma_number)
    except ReturnRequest.DoesNotExist as exc:
        raise NotFound() from exc


def _actor(request: Any) -> str:
    return f"api:{request.auth.name}"


class CheckInSerializer(serializers.Serializer):
    condition = serializers.ChoiceField(choices=PackageCondition.values)


def checkin_data(rr: ReturnRequest, checkin: CheckIn) -> dict:
    rr.refresh_from_db()
    return {
        "rma_number": rr.rma_number,
        "status": rr.status,
        "check_in": {
            "condition": checkin.condition,
            "checked_in_at": _iso(checkin.checked_in_at),
            "checked_in_by": checkin.actor,
            "channel": checkin.channel,
        },
        "refund": refund_summary(rr),
    }


class CheckInView(APIView):
    @extend_schema(
        request=CheckInSerializer, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT}
    )
    def post(self, request: Any, rma_number: str) -> Response:
        rr = _return(request, rma_number)
        data = CheckInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = checkin_record(
                tenant=request.api_tenant,
                return_request=rr,
                condition=data.validated_data["condition"],
                now=timezone.now(),
                actor=_actor(request),
                channel="api",
            )
        except WarehouseError as exc:
            raise ValidationError({"detail": exc.message, "code": exc.code}) from exc
        return Response(
            checkin_data(rr, result.checkin),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class InspectionLineSerializer(serializers.Serializer):
    line_id = serializers.CharField(required=False)
    sku = serializers.CharField(required=False)
    quantity = serializers.IntegerField(required=False, min_value=1)
    grade = serializers.ChoiceField(choices=InspectionGrade.values)
    disposition = serializers.ChoiceField(choices=Disposition.values)
    matches = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("line_id") and not attrs.get("sku"):
            raise serializers.ValidationError("Give line_id or sku.")
        return attrs


class InspectionsSerializer(serializers.Serializer):
    lines = InspectionLineSerializer(many=True, allow_empty=False)


def inspections_data(rr: ReturnRequest, all_inspected: bool) -> dict:
    rr.refresh_from_db()
    rows = Inspection.objects.filter(tenant_id=rr.tenant_id, return_request=rr).select_related(
        "return_line__order_line"
    )
    return {
        "rma_number": rr.rma_number,
        "status": rr.status,
        "all_inspected": all_inspected,
        "inspections": [
            {
                "line_id": i.return_line.order_line.line_id,
                "sku": i.return_line.order_line.sku,
                "quantity": i.quantity,
                "grade": i.grade,
                "disposition": i.disposition,
                "matches": i.matches,
                "note": i.note,
                "inspected_at": _iso(i.inspected_at),
                "inspected_by": i.actor,
            }
            for i in rows
        ],
        "refund": refund_summary(rr),
    }


class InspectionsView(APIView):
    @extend_schema(
        request=InspectionsSerializer,
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Any, rma_number: str) -> Response:
        rr = _return(request, rma_number)
        data = InspectionsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lines = list(rr.lines.select_related("order_line"))
        entries = []
        errors: dict[str, Any] = {}
        for i, item in enumerate(data.validated_data["lines"]):
            if item.get("line_id"):
                found = [ln for ln in lines if ln.order_line.line_id == item["line_id"]]
            else:
                found = [ln for ln in lines if ln.order_line.sku == item["sku"]]
            if not found:
                errors[str(i)] = {
                    "line_id": ["not_in_return: this line is not part of the return."]
                }
                continue
            if len(found) > 1:
                errors[str(i)] = {
                    "sku": ["ambiguous_sku: the SKU matches two lines; give line_id."]
                }
                continue
            entries.append(
                InspectionEntry(
                    return_line=found[0],
                    grade=item["grade"],
                    disposition=item["disposition"],
                    matches=item["matches"],
                    quantity=item.get("quantity"),
                    note=item.get("note", ""),
                )
            )
        if errors:
            raise ValidationError({"lines": errors})
        try:
            result = inspection_record(
                tenant=request.api_tenant,
                return_request=rr,
                entries=entries,
                now=timezone.now(),
                actor=_actor(request),
                channel="api",
            )
        except WarehouseError as exc:
            raise ValidationError({"detail": exc.message, "code": exc.code}) from exc
        return Response(
            inspections_data(rr, result.all_inspected),
            status=status.HTTP_200_OK if result.repeat else status.HTTP_201_CREATED,
        )


class RefundView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Any, rma_number: str) -> Response:
        rr = _return(request, rma_number)
        return Response({"rma_number": rr.rma_number, "refund": refund_summary(rr)})


class ExchangeLineSerializer(serializers.Serializer):
    line_id = serializers.CharField()
    replacement_unit_price = serializers.DecimalField(max_digits=18, decimal_places=3)


class ExchangeSerializer(serializers.Serializer):
    carrier = serializers.CharField(max_length=32)
    tracking_number = serializers.CharField(max_length=64)
    lines = ExchangeLineSerializer(many=True, required=False)


def exchange_data(rr: ReturnRequest) -> dict:
    rr.refresh_from_db()
    rows = Exchange.objects.filter(tenant_id=rr.tenant_id, return_request=rr).select_related(
        "return_line__order_line", "shipment"
    )

    def money(value: Any, cur: str) -> str | None:
        return None if value is None else format_amount(value, cur)

    return {
        "rma_number": rr.rma_number,
        "status": rr.status,
        "exchanges": [
            {
                "line_id": e.return_line.order_line.line_id,
                "exchange_sku": e.exchange_sku,
                "replacement_unit_price": money(e.replacement_unit_price, e.currency),
                "price_difference": money(e.price_difference, e.currency),
                "currency": e.currency,
                "shipment": {
                    "direction": "outbound",
                    "carrier": e.shipment.carrier,
                    "tracking_number": e.shipment.tracking_number,
                }
                if e.shipment
                else None,
                "shipped_at": _iso(e.shipped_at),
            }
            for e in rows
        ],
    }


class ExchangeView(APIView):
    @extend_schema(
        request=ExchangeSerializer, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT}
    )
    def post(self, request: Any, rma_number: str) -> Response:
        rr = _return(request, rma_number)
        data = ExchangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        by_line_id = {ln.order_line.line_id: ln.pk for ln in rr.lines.select_related("order_line")}
        prices = {}
        for i, item in enumerate(data.validated_data.get("lines", [])):
            if item["line_id"] not in by_line_id:
                raise ValidationError({"lines": {str(i): {"line_id": ["not_in_return"]}}})
            prices[by_line_id[item["line_id"]]] = item["replacement_unit_price"]
        now = timezone.now()
        try:
            exchanges = exchange_ship(
                tenant=request.api_tenant,
                return_request=rr,
                carrier=data.validated_data["carrier"],
                tracking_number=data.validated_data["tracking_number"],
                now=now,
                actor=_actor(request),
                replacement_unit_prices=prices or None,
            )
        except ExchangeAlreadyShipped as exc:
            return Response(
                {"detail": str(exc), "code": "exchange_already_shipped"},
                status=status.HTTP_409_CONFLICT,
            )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc), "code": "exchange_refused"}) from exc
        # A repeat of the shipping call finds the shipment it made before this request.
        created = any(ex.shipped_at == now for ex in exchanges)
        return Response(
            exchange_data(rr), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
