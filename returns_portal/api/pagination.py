"""List pagination: DRF's limit/offset with a bounded `limit`."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class ApiPagination(LimitOffsetPagination):
    """`?limit=&offset=` (default 50). `limit` is capped: an unbounded one reached the
    database as `LIMIT <huge>` (an overflow, hence a 500)."""

    max_limit = 200
