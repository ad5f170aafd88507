"""Shared argument handling for the tracking commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import CommandError


def parse_instant(value: str | None, *, name: str) -> datetime | None:
    """ISO 8601 with `Z` or an offset (a bare date means 00:00 UTC); CommandError(2) otherwise."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"{name}: not an ISO 8601 time: {value!r}", returncode=2) from exc
    if parsed.tzinfo is None:
        if len(value.strip()) == 10:
            return parsed.replace(tzinfo=UTC)
        raise CommandError(f"{name}: give a Z or an offset: {value!r}", returncode=2)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+14:00 has no UTC instant
        raise CommandError(f"{name}: out of range: {value!r}", returncode=2) from exc


def read_file(path: str) -> bytes:
    """The file's bytes (`-` reads stdin); CommandError(2) when unreadable."""
    import sys

    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", returncode=2) from exc


def adapter_or_exit(code: str):
    from tracking.carriers.registry import codes, get_adapter

    try:
        return get_adapter(code)
    except KeyError as exc:
        raise CommandError(
            f"unknown carrier code {code!r}; one of: {', '.join(codes())}", returncode=2
        ) from exc
