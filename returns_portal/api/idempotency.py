"""`Idempotency-Key` on API POSTs (DESIGN.md section 10, contract).

The same key with the same request replays the first answer (status and
body, with `Idempotent-Replayed: true`); the same key with a different
method, path or body is a 422; a key whose first request is still running
is a 409 with `Retry-After`. Keys are per tenant (`IdempotencyKey`, unique
`(tenant, key)`). A first request that ends in a 5xx releases its key, so a
retry runs again; 2xx and 4xx answers are kept. An in-progress claim older
than `STALE_AFTER` (a crashed request) is taken over. A key is remembered for
`settings.IDEMPOTENCY_KEY_TTL` (24 h by default, as Stripe does): after that
the same key starts a new request, whether or not `retention_prune` has
deleted the old row yet.

The body hash is SHA-256 over the JSON body in canonical form (keys sorted,
no spaces; the raw bytes when it is not JSON), or for multipart over the
`data` part (canonical likewise) and each file's field name, file name and
bytes, in order: the same request hashes alike whatever key order, spacing
or multipart boundary the client chose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response

from returns_portal.models import IdempotencyKey
from returns_portal.tenancy.models import Tenant

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
STALE_AFTER = timedelta(minutes=1)


def request_body_hash(request: Any) -> str:
    """SHA-256 hex of the request's content (see the module docstring)."""
    digest = hashlib.sha256()
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type.startswith("multipart/"):
        digest.update(b"multipart\0")
        digest.update(_canonical_json(str(request.data.get("data", "")).encode()))
        for field in sorted(request.FILES.keys()):
            for upload in request.FILES.getlist(field):
                digest.update(f"\0{field}\0{upload.name}\0".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    else:
        digest.update(_canonical_json(request._request.body))
    return digest.hexdigest()


def _canonical_json(raw: bytes) -> bytes:
    """`raw` re-serialized with sorted keys and no spaces, or `raw` itself when it is
    not JSON (then the request fails validation anyway, and hashes as sent)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Claim:
    """`kind`: `new` (run the request), `replay`, `mismatch` (422) or `busy` (409)."""

    kind: str
    record: IdempotencyKey


@transaction.atomic
def idempotency_claim(
    *, tenant: Tenant, key: str, method: str, path: str, body_hash: str, now: datetime
) -> Claim:
    """Claim `key` for this request, or say why not (rules in the module docstring)."""
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(
                tenant=tenant,
                key=key,
                method=method,
                path=path[:500],
                body_hash=body_hash,
                created_at=now,
            )
            return Claim("new", record)
    except IntegrityError:
        pass
    record = IdempotencyKey.objects.select_for_update().get(tenant=tenant, key=key)
    if record.created_at <= now - settings.IDEMPOTENCY_KEY_TTL:
        # Expired: the key is free again (the row is reused, not deleted, so the
        # unique (tenant, key) constraint keeps serializing concurrent claims).
        IdempotencyKey.objects.filter(pk=record.pk).update(
            method=method,
            path=path[:500],
            body_hash=body_hash,
            status_code=None,
            response_body=None,
            created_at=now,
            completed_at=None,
        )
        record.refresh_from_db()
        return Claim("new", record)
    if (record.method, record.path, record.body_hash) != (method, path[:500], body_hash):
        return Claim("mismatch", record)
    if record.status_code is not None:
        return Claim("replay", record)
    if record.created_at < now - STALE_AFTER:
        IdempotencyKey.objects.filter(pk=record.pk).update(created_at=now)
        return Claim("new", record)
    return Claim("busy", record)


@transaction.atomic
def idempotency_complete(
    *, record: IdempotencyKey, status_code: int, body: Any, now: datetime
) -> None:
    """Keep the first answer (or release the key after a server error)."""
    if status_code >= 500:
        IdempotencyKey.objects.filter(pk=record.pk, status_code__isnull=True).delete()
        return
    IdempotencyKey.objects.filter(pk=record.pk).update(
        status_code=status_code, response_body=body, completed_at=now
    )


@transaction.atomic
def idempotency_release(*, record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def idempotent(method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate an API view's `post` so it honours `Idempotency-Key`."""

    @wraps(method)
    def wrapper(self: Any, request: Any, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return method(self, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            return Response(
                {"detail": f"{HEADER} is at most {MAX_KEY_LENGTH} characters.", "code": "invalid"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        now = timezone.now()
        claim = idempotency_claim(
            tenant=request.api_tenant,
            key=key,
            method=request.method,
            path=request.path,
            body_hash=request_body_hash(request),
            now=now,
        )
        if claim.kind == "mismatch":
            return Response(
                {
                    "detail": f"This {HEADER} was used with a different request.",
                    "code": "idempotency_key_reused",
                },
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        if claim.kind == "busy":
            return Response(
                {
                    "detail": f"A request with this {HEADER} is still running.",
                    "code": "idempotency_key_in_use",
                },
                status=status.HTTP_409_CONFLICT,
                headers={"Retry-After": "1"},
            )
        if claim.kind == "replay":
            return Response(
                claim.record.response_body,
                status=claim.record.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = method(self, request, *args, **kwargs)
        except BaseException:
            idempotency_release(record=claim.record)
            raise
        idempotency_complete(
            record=claim.record,
            status_code=response.status_code,
            body=response.data,
            now=timezone.now(),
        )
        return response

    return wrapper
