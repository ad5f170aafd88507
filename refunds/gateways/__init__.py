"""Refund gateways: `sandbox`, `shopify`, `stripe` (see each module). `gateway_for`
builds the adapter for a refund's gateway name with the tenant's decrypted credentials."""

from __future__ import annotations

from typing import Any

from refunds.gateways.base import Gateway, GatewayResult, RefundRequest
from refunds.gateways.sandbox import SandboxGateway
from refunds.gateways.shopify import ShopifyGateway
from refunds.gateways.stripe import StripeGateway

__all__ = ["Gateway", "GatewayResult", "RefundRequest", "gateway_for"]


def gateway_for(name: str, account: Any = None) -> Gateway:
    """The adapter for `name`; `account` is the tenant's `GatewayAccount` (None for sandbox)."""
    from returns_portal.tenancy.crypto import decrypt_json

    if name == "sandbox":
        return SandboxGateway()
    if account is None or not account.is_active:
        raise ValueError(f"gateway {name!r} is not connected for this tenant")
    creds = decrypt_json(account.credentials_encrypted)
    if name == "stripe":
        return StripeGateway(secret_key=creds.get("secret_key", ""))
    if name == "shopify":
        return ShopifyGateway(
            shop_domain=account.shop_domain,
            access_token=creds.get("access_token", ""),
            api_version=account.api_version,
        )
    raise ValueError(f"unknown gateway {name!r}")
