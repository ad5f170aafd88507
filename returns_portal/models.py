"""Composition-root models: what the REST API itself keeps.

`IdempotencyKey` stores the first answer to a POST made with an
`Idempotency-Key` header (DESIGN.md section 10), per tenant.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from returns_portal.tenancy.models import TenantOwned


class IdempotencyKey(TenantOwned):
    """The first answer to `(tenant, key)`.

    `body_hash` is the SHA-256 hex of the request body (for multipart, of the
    `data` part and each file's name and bytes). A row with `status_code`
    null is in progress; `returns_portal.api.idempotency` takes it over when
    it is older than its stale limit (a crashed request). Replays answer with
    `status_code` and `response_body` (JSON) as first sent.
    """

    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    body_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotencykey_unique")
        ]
        # `retention_prune` deletes expired keys across tenants by age.
        indexes = [models.Index(fields=["created_at"], name="idempotencykey_created")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
