"""Shopify Admin REST API refunds, for orders imported from Shopify (matched by
`Order.shopify_id`).

Built from Shopify's Admin REST reference (Refund and Transaction resources,
version 2025-01); not run against a live shop - tests stub the HTTP client
with responses in the documented shapes:

- `GET /admin/api/<v>/orders/<id>/transactions.json` -> `{transactions: [{id,
  kind: sale|capture|authorization|refund, status: success|pending|failure|error,
  gateway, amount, currency, parent_id}]}`: the parent of our refund is the
  successful `sale` or `capture`.
- `POST /admin/api/<v>/orders/<id>/refunds.json` with `{refund: {currency,
  notify, note, transactions: [{parent_id, amount, kind: "refund", gateway}]}}`
  -> 201 `{refund: {id, order_id, note, transactions: [{id, kind: "refund",
  status, amount, ...}]}}`; 422 `{errors: ...}` is a refusal.
- `GET /admin/api/<v>/orders/<id>/refunds.json` -> `{refunds: [...]}`.

The REST refund has no idempotency header, so the key goes into the
refund's `note` and `create` LOOKS UP first: an existing refund with our key
is answered instead of sending a second one. An amount-only refund (no
`refund_line_items`) leaves restocking to us; Shopify records an order
adjustment for it. Header: `X-Shopify-Access-Token`.
"""

from __future__ import annotations

import httpx

from refunds.gateways import http
from refunds.gateways.base import (
    ERROR,
    FAILED,
    NOT_FOUND,
    PENDING,
    SUCCEEDED,
    GatewayResult,
    RefundRequest,
)
from rma.money import format_amount

TX_STATUS = {"success": SUCCEEDED, "pending": PENDING, "failure": FAILED, "error": FAILED}


def _refund_result(refund: dict) -> GatewayResult:
    txs = [t for t in refund.get("transactions", []) if t.get("kind") == "refund"]
    if not txs:
        return GatewayResult(status=PENDING, reference=str(refund.get("id", "")), raw=refund)
    statuses = {TX_STATUS.get(str(t.get("status")), PENDING) for t in txs}
    status = FAILED if FAILED in statuses else PENDING if PENDING in statuses else SUCCEEDED
    message = "; ".join(str(t.get("message") or "") for t in txs if t.get("message"))
    return GatewayResult(
        status=status, reference=str(refund.get("id", "")), message=message[:500], raw=refund
    )


class ShopifyGateway:
    name = "shopify"

    def __init__(
        self, *, shop_domain: str, access_token: str, api_version: str = "2025-01"
    ) -> None:
        self.shop_domain = shop_domain
        self.access_token = access_token
        self.api_version = api_version or "2025-01"

    def _client(self) -> httpx.Client:
        return http.client(
            base_url=f"https://{self.shop_domain}/admin/api/{self.api_version}",
            headers={"X-Shopify-Access-Token": self.access_token, "Accept": "application/json"},
        )

    @staticmethod
    def _error(response: httpx.Response) -> GatewayResult:
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text[:500]}
        transient = response.status_code == 429 or response.status_code >= 500
        return GatewayResult(
            status=ERROR if transient else FAILED,
            message=f"{response.status_code}: {body.get('errors', '')}"[:500],
            raw=body if isinstance(body, dict) else {},
        )

    def lookup(self, request: RefundRequest) -> GatewayResult:
        try:
            with self._client() as c:
                response = c.get(f"/orders/{request.order_reference}/refunds.json")
        except httpx.HTTPError as exc:
            return GatewayResult(status=ERROR, message=f"network: {exc}"[:500])
        if response.status_code >= 400:
            return self._error(response)
        for refund in response.json().get("refunds", []):
            if request.idempotency_key in (refund.get("note") or ""):
                return _refund_result(refund)
        return GatewayResult(status=NOT_FOUND, message="no refund with this key")

    def create(self, request: RefundRequest) -> GatewayResult:
        found = self.lookup(request)
        if found.status != NOT_FOUND:
            return found  # already there (or unknown: never risk a second refund)
        try:
            with self._client() as c:
                tx_response = c.get(f"/orders/{request.order_reference}/transactions.json")
                if tx_response.status_code >= 400:
                    return self._error(tx_response)
                parents = [
                    t
                    for t in tx_response.json().get("transactions", [])
                    if t.get("kind") in ("sale", "capture") and t.get("status") == "success"
                ]
                if not parents:
                    return GatewayResult(
                        status=FAILED, message="no successful sale or capture to refund"
                    )
                parent = parents[0]
                body = {
                    "refund": {
                        "currency": request.currency,
                        "notify": False,
                        "note": f"Return refund {request.order_number} [{request.idempotency_key}]",
                        "transactions": [
                            {
                                "parent_id": parent["id"],
                                "amount": format_amount(request.amount, request.currency),
                                "kind": "refund",
                                "gateway": parent.get("gateway", ""),
                            }
                        ],
                    }
                }
                response = c.post(f"/orders/{request.order_reference}/refunds.json", json=body)
        except httpx.HTTPError as exc:
            return GatewayResult(status=ERROR, message=f"network: {exc}"[:500])
        if response.status_code >= 400:
            return self._error(response)
        return _refund_result(response.json().get("refund", {}))
