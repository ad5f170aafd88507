"""`POST /api/v1/tracking-events/` (DESIGN.md section 10): push a carrier
payload for the API key's tenant.

Body: `{"carrier": code, "tracking_number": optional, "payload": object|array|string}`
(a JSON payload as JSON, an XML payload as a string). The same ingest path as
a webhook (`tracking_events_ingest`, source `api`): the raw payload is stored
first, parsed, matched only against this tenant's shipments. Answers 202 with
`{events, stored, duplicates, unmatched_numbers, shipments}`; 400 with the
reason when the payload cannot be parsed (it stays stored, `rejected`).
`Idempotency-Key`: the same key and body replay the first answer; another
body with the same key is a 422.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, cast

from django.db import IntegrityError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rma.models import Shipment
from tracking.carriers.registry import codes
from tracking.ingest import IngestError, tracking_events_ingest
from tracking.models import PayloadSource, RawPayload, TrackingEvent

log = logging.getLogger(__name__)


@extend_schema_field(OpenApiTypes.ANY)
class PayloadField(serializers.Field):
    """A JSON object/array (sent as JSON bytes) or a string (XML or JSON text)."""

    def to_internal_value(self, data: Any) -> bytes:
        if isinstance(data, str):
            if not data.strip():
                raise serializers.ValidationError("The payload is empty.")
            return data.encode("utf-8")
        if isinstance(data, dict | list):
            return json.dumps(data, ensure_ascii=False).encode("utf-8")
        raise serializers.ValidationError("Give the payload as a JSON object or a string.")

    def to_representation(self, value: Any) -> Any:
        return value


class TrackingEventsIn(serializers.Serializer):
    carrier = serializers.ChoiceField(choices=[])
    tracking_number = serializers.CharField(required=False, allow_blank=True, max_length=64)
    payload = PayloadField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(serializers.ChoiceField, self.fields["carrier"]).choices = codes()


SUMMARY = inline_serializer(
    "TrackingEventsSummary",
    {
        "events": serializers.IntegerField(),
        "stored": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "unmatched_numbers": serializers.ListField(child=serializers.CharField()),
        "shipments": serializers.ListField(child=serializers.DictField()),
    },
)


class TrackingEventsView(APIView):
    @extend_schema(
        request=TrackingEventsIn,
        responses={202: SUMMARY},
        examples=[
            OpenApiExample(
                "UPS XML as a string",
                value={"carrier": "ups", "payload": "<TrackResponse>...</TrackResponse>"},
                request_only=True,
            )
        ],
        summary="Push a carrier tracking payload",
    )
    def post(self, request: Request) -> Response:
        tenant = request.api_tenant  # type: ignore[attr-defined]
        serializer = TrackingEventsIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        body: bytes = data["payload"]
        key = (request.headers.get("Idempotency-Key") or "").strip()[:200]
        if key:
            previous = RawPayload.objects.filter(
                tenant=tenant, source=PayloadSource.API, idempotency_key=key
            ).first()
            if previous is not None:
                return self._replay(previous, body, data)
        now = timezone.now()
        try:
            result = tracking_events_ingest(
                tenant=tenant,
                provider=data["carrier"],
                body=body,
                tracking_number=data.get("tracking_number") or None,
                source=PayloadSource.API,
                now=now,
                idempotency_key=key,
            )
        except IngestError as exc:
            return Response(
                {"detail": f"payload cannot be parsed: {exc}", "code": exc.code},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except IntegrityError:
            previous = RawPayload.objects.get(
                tenant=tenant, source=PayloadSource.API, idempotency_key=key
            )
            return self._replay(previous, body, data)
        except Exception:
            # A payload stored before the failure is an outbox entry: it is processed
            # later. Either way the client may retry (with the same Idempotency-Key).
            log.exception("tracking-events ingest failed for tenant %s", tenant.pk)
            return Response(
                {
                    "detail": "The payload could not be processed now; retry later.",
                    "code": "unavailable",
                },
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "30"},
            )
        return Response(self._answer(tenant, result.as_summary(), result.shipments), status=202)

    def _answer(self, tenant: Any, summary: dict[str, Any], shipment_ids: Any) -> dict[str, Any]:
        shipments = Shipment.objects.filter(tenant=tenant, pk__in=list(shipment_ids)).order_by("pk")
        summary["shipments"] = [
            {
                "carrier": s.carrier,
                "tracking_provider": s.tracking_provider,
                "tracking_number": s.tracking_number,
                "leg": s.leg,
                "status": s.status,
                "exception_reason": s.exception_reason or None,
            }
            for s in shipments
        ]
        return summary

    def _replay(self, previous: RawPayload, body: bytes, data: dict[str, Any]) -> Response:
        digest = hashlib.sha256(body).hexdigest()
        if previous.body_sha256 != digest or previous.provider != data["carrier"]:
            return Response(
                {
                    "detail": "This Idempotency-Key was used with a different body.",
                    "code": "idempotency_key_reused",
                },
                status=422,
            )
        if previous.error_code == "payload":
            return Response(
                {"detail": f"payload cannot be parsed: {previous.error}", "code": "payload"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        summary = dict(previous.result or {})
        ids = set(
            TrackingEvent.objects.filter(tenant=previous.tenant, payload=previous).values_list(
                "shipment_id", flat=True
            )
        )
        return Response(self._answer(previous.tenant, summary, ids), status=202)
