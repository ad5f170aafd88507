"""Provisioning registry: what every app sets up for a new tenant.

Apps register a `provision_tenant(tenant)` callable in their `AppConfig.ready()`
(`register(...)`); `tenant_create` runs them all, in app order, inside the
tenant's creation transaction. Each provisioner must be idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from returns_portal.tenancy.models import Tenant

Provisioner = Callable[["Tenant"], None]

_registry: list[tuple[str, Provisioner]] = []


def register(name: str, provisioner: Provisioner) -> None:
    """Register `provisioner` under `name` (re-registering a name replaces it)."""
    for i, (existing, _fn) in enumerate(_registry):
        if existing == name:
            _registry[i] = (name, provisioner)
            return
    _registry.append((name, provisioner))


def provisioners() -> list[tuple[str, Provisioner]]:
    """The registered provisioners in registration order."""
    return list(_registry)


def provision(tenant: Tenant) -> list[str]:
    """Run every provisioner for `tenant`; returns the names run."""
    names = []
    for name, fn in _registry:
        fn(tenant)
        names.append(name)
    return names
