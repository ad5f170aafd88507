"""REST views under `/api/v1/` (DESIGN.md section 10). Interfaces only: parse, call a
service or selector (the same ones the portal calls), render with `presenters`.

The tenant is the API key's (`request.api_tenant`); every lookup is scoped to
it, so another tenant's order number or RMA number is the same 404 as a
missing one. Refusals are 400s whose field errors name the line and the
reason, with the same shape under `codes` holding the error codes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from returns_portal.api import presenters
from returns_portal.api.idempotency import HEADER, idempotent
from returns_portal.api.pagination import ApiPagination
from returns_portal.api.parsers import JSONParser
from returns_portal.api.serializers import (
    ErrorOut,
    OrderIn,
    OrderOut,
    ReturnCreateIn,
    ReturnDetailOut,
    ReturnListFilters,
    ReturnSummaryOut,
    ShipmentIn,
    ShipmentOut,
)
from rma.labels import labels_purchase_for_return
from rma.models import ReturnRequest
from rma.order_services import order_upsert_from_api
from rma.photos import PhotoRejected, photo_process
from rma.selectors import order_get_by_number, return_get_by_rma_number
from rma.services import (
    PickupInput,
    Refusal,
    ReturnLineInput,
    ReturnRefused,
    ShipmentInput,
    return_request_create,
    shipment_attach,
)
from rma.states import MilestoneSource

NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Same key and body replays the first answer; a different body is a 422.",
)


def not_found() -> Response:
    return Response(dict(NOT_FOUND), status=status.HTTP_404_NOT_FOUND)


#: Line indexes a client may name (`lines.<i>.photos`): the API takes at most 200 lines.
MAX_LINE_INDEX_DIGITS = 3


def _line_index(text: str) -> int | None:
    """`int(text)` for a short ASCII decimal index, else None (never a huge int)."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_LINE_INDEX_DIGITS:
        return int(text)
    return None


def refusal_body(refusals: list[Refusal], n_lines: int = 0) -> dict[str, Any]:
    """`{field: [message]}` nested like DRF's errors (`lines` is a list with one dict
    per submitted line), and the same shape under `codes` with the codes. A refusal
    naming a line index beyond `n_lines` is keyed by its whole field name instead."""
    errors: dict[str, Any] = {}
    codes: dict[str, Any] = {}
    for refusal in refusals:
        parts = refusal.field.split(".")
        for target, value in ((errors, refusal.message), (codes, refusal.code)):
            index = _line_index(parts[1]) if parts[0] == "lines" and len(parts) == 3 else None
            if index is not None and index < n_lines:
                rows = target.setdefault("lines", [{} for _ in range(n_lines)])
                if not isinstance(rows, list):
                    continue
                rows[index].setdefault(parts[2], []).append(value)
            elif len(parts) == 2:
                target.setdefault(parts[0], {}).setdefault(parts[1], []).append(value)
            else:
                slot = target.setdefault(refusal.field, [])
                if isinstance(slot, list):
                    slot.append(value)
                else:
                    slot.setdefault("non_field_errors", []).append(value)
    errors["codes"] = codes
    return errors


class OrderDetailView(APIView):
    """`GET|PUT /api/v1/orders/<order_number>/` (`1001`, or `%231001` for `#1001`)."""

    @extend_schema(responses={200: OrderOut, 404: ErrorOut}, summary="Get an order")
    def get(self, request: Any, order_number: str) -> Response:
        tenant = request.api_tenant
        order = order_get_by_number(tenant=tenant, number=order_number)
        if order is None:
            return not_found()
        return Response(presenters.order_detail(tenant=tenant, order=order))

    @extend_schema(
        request=OrderIn,
        responses={200: OrderOut, 201: OrderOut, 400: ErrorOut},
        summary="Create or update an order (upsert by number)",
    )
    def put(self, request: Any, order_number: str) -> Response:
        tenant = request.api_tenant
        creating = order_get_by_number(tenant=tenant, number=order_number) is None
        serializer = OrderIn(data=request.data, context={"creating": creating})
        if not serializer.is_valid():
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        data = dict(serializer.validated_data)
        lines = [dict(line) for line in data.pop("lines")]
        if data.get("number") and (
            data["number"].strip().lstrip("#").lower() != order_number.strip().lstrip("#").lower()
        ):
            return Response(
                {"number": ["Does not match the order number in the URL."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            order, created = order_upsert_from_api(
                tenant=tenant,
                number=data.pop("number", None) or order_number,
                fields=data,
                lines=lines,
                now=timezone.now(),
            )
        except ReturnRefused as refused:
            return Response(
                refusal_body(refused.refusals, len(lines)), status=status.HTTP_400_BAD_REQUEST
            )
        return Response(
            presenters.order_detail(tenant=tenant, order=order),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


def _parse_return_payload(request: Any) -> tuple[Any, dict[int, list], Response | None]:
    """The JSON (body, or the multipart part `data`) and uploaded photos by line index."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    files: dict[int, list] = {}
    if content_type.startswith("multipart/"):
        raw = request.data.get("data")
        try:
            payload = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return (
                None,
                {},
                Response(
                    {"data": ["Put the return as JSON in the multipart part 'data'."]},
                    status=status.HTTP_400_BAD_REQUEST,
                ),
            )
        for field in request.FILES:
            parts = field.split(".")
            index = _line_index(parts[1]) if len(parts) == 3 else None
            if index is not None and parts[0] == "lines" and parts[2] == "photos":
                files[index] = request.FILES.getlist(field)
                continue
            return (
                None,
                {},
                Response(
                    {field: ["Unexpected file part; use lines.<i>.photos."]},
                    status=status.HTTP_400_BAD_REQUEST,
                ),
            )
        return payload, files, None
    return request.data, files, None


class ReturnListView(APIView):
    """`GET /api/v1/returns/` (filters) and `POST /api/v1/returns/` (create)."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        parameters=[ReturnListFilters],
        responses={200: ReturnSummaryOut(many=True), 400: ErrorOut},
        summary="List returns",
    )
    def get(self, request: Any) -> Response:
        tenant = request.api_tenant
        filters = ReturnListFilters(data=request.query_params)
        if not filters.is_valid():
            return Response(filters.errors, status=status.HTTP_400_BAD_REQUEST)
        qs = presenters.return_list_queryset(tenant=tenant, filters=filters.validated_data)
        paginator = ApiPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        urls = presenters.Urls(tenant)
        return paginator.get_paginated_response(
            [presenters.return_summary(rr, urls) for rr in page or []]
        )

    @extend_schema(
        request={"application/json": ReturnCreateIn, "multipart/form-data": OpenApiTypes.OBJECT},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: ReturnDetailOut,
            400: OpenApiResponse(
                ErrorOut,
                description="Refused (policy, quantity, window, final sale, missing photo, "
                "unknown order or e-mail, ambiguous_sku); nothing was written.",
            ),
            422: OpenApiResponse(ErrorOut, description="Idempotency-Key reused with another body"),
        },
        summary="Create a return (RMA)",
    )
    @idempotent
    def post(self, request: Any) -> Response:
        tenant = request.api_tenant
        payload, files, error = _parse_return_payload(request)
        if error is not None:
            return error
        serializer = ReturnCreateIn(data=payload)
        if not serializer.is_valid():
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        data = serializer.validated_data
        lines = data["lines"]
        photos: dict[int, list] = {}
        refusals: list[Refusal] = []
        for index, uploads in files.items():
            if index >= len(lines):
                refusals.append(
                    Refusal(f"lines.{index}.photos", "unknown_line", "No such line.", index)
                )
                continue
            processed = []
            for upload in uploads:
                try:
                    processed.append(photo_process(upload))
                except PhotoRejected as exc:
                    refusals.append(Refusal(f"lines.{index}.photos", exc.code, exc.message, index))
            photos[index] = processed
        if refusals:
            return Response(refusal_body(refusals, len(lines)), status=status.HTTP_400_BAD_REQUEST)
        pickup = data.get("pickup")
        shipment = data.get("shipment")
        key = request.headers.get(HEADER, "").strip()
        try:
            rr = return_request_create(
                tenant=tenant,
                order=order_get_by_number(tenant=tenant, number=data["order_number"]),
                email=data["email"],
                lines=[
                    ReturnLineInput(
                        line_id=line.get("line_id", ""),
                        sku=line.get("sku", ""),
                        quantity=line["quantity"],
                        reason=line["reason"],
                        note=line.get("note", ""),
                        resolution=line.get("resolution", "refund"),
                        exchange_sku=line.get("exchange_sku", ""),
                    )
                    for line in lines
                ],
                method=data["method"],
                pickup=PickupInput(**pickup) if pickup else None,
                photos=photos,
                shipment=ShipmentInput(**shipment) if shipment else None,
                submission_key=idempotency_submission_key(key),
                source=MilestoneSource.API,
                language=data["language"],
                now=timezone.now(),
            )
        except ReturnRefused as refused:
            return Response(
                refusal_body(refused.refusals, len(lines)), status=status.HTTP_400_BAD_REQUEST
            )
        # The RMA is committed: buy the label now, outside any transaction.
        labels_purchase_for_return(return_request=rr)
        rr.refresh_from_db()
        body = presenters.return_detail(tenant=tenant, return_request=rr, now=timezone.now())
        return Response(body, status=status.HTTP_201_CREATED)


def idempotency_submission_key(key: str) -> str:
    """The return's `submission_key` for an `Idempotency-Key`: a database-level
    guard against two concurrent first requests with the same key."""
    if not key:
        return ""
    return "api:" + hashlib.sha256(key.encode()).hexdigest()[:56]


class ReturnDetailView(APIView):
    """`GET /api/v1/returns/<rma_number>/`: a fixed number of queries."""

    @extend_schema(responses={200: ReturnDetailOut, 404: ErrorOut}, summary="Get a return")
    def get(self, request: Any, rma_number: str) -> Response:
        tenant = request.api_tenant
        try:
            rr = return_get_by_rma_number(tenant=tenant, rma_number=rma_number)
        except ReturnRequest.DoesNotExist:
            return not_found()
        return Response(
            presenters.return_detail(tenant=tenant, return_request=rr, now=timezone.now())
        )


class ReturnShipmentsView(APIView):
    """`POST /api/v1/returns/<rma_number>/shipments/` `{carrier, tracking_number}`."""

    @extend_schema(
        request=ShipmentIn,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: ShipmentOut, 200: ShipmentOut, 400: ErrorOut, 404: ErrorOut},
        summary="Attach a shipment (a label bought elsewhere)",
    )
    @idempotent
    def post(self, request: Any, rma_number: str) -> Response:
        tenant = request.api_tenant
        try:
            rr = return_get_by_rma_number(tenant=tenant, rma_number=rma_number)
        except ReturnRequest.DoesNotExist:
            return not_found()
        serializer = ShipmentIn(data=request.data)
        if not serializer.is_valid():
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        try:
            shipment, created = shipment_attach(
                tenant=tenant,
                return_request=rr,
                carrier=serializer.validated_data["carrier"],
                tracking_number=serializer.validated_data["tracking_number"],
                now=timezone.now(),
            )
        except ReturnRefused as refused:
            return Response(refusal_body(refused.refusals), status=status.HTTP_400_BAD_REQUEST)
        urls = presenters.Urls(tenant)
        return Response(
            presenters.shipment_json(shipment, rr, urls),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
