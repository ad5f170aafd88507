"""Stripe refunds (used when the order's `payment_reference` is a Stripe charge `ch_...`
or PaymentIntent `pi_...`).

Built from Stripe's API reference (not run against the live service; tests
stub the HTTP client with responses in the documented shapes):

- Create: `POST https://api.stripe.com/v1/refunds`, form-encoded
  `charge=` or `payment_intent=`, `amount` in the currency's smallest unit
  (zero-decimal currencies such as JPY/KRW in major units), `metadata[...]`;
  header `Idempotency-Key` (Stripe answers a repeated key with the first
  result). Answer: a Refund object `{id: "re_...", object: "refund",
  amount, currency, status: pending|requires_action|succeeded|failed|canceled,
  metadata, charge, payment_intent, ...}`.
- Lookup: `GET /v1/refunds?charge=...` (or `payment_intent=`), a list
  `{object: "list", data: [...], has_more}`; we match `metadata.idempotency_key`.
- Errors: `{error: {type, code, message}}`; 4xx other than 409/429 are
  permanent, 409 (idempotency in flight), 429 and 5xx are transient.
- Webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, HMAC-SHA256 with
  the endpoint secret over `"<t>.<raw body>"`; 300 s tolerance by default.
  Events `refund.created`, `refund.updated`, `refund.failed` and
  `charge.refund.updated` carry the Refund object in `data.object`.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

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
from rma.money import currency_exponent, quantize

API_BASE = "https://api.stripe.com"
STATUS = {
    "succeeded": SUCCEEDED,
    "pending": PENDING,
    "requires_action": PENDING,
    "failed": FAILED,
    "canceled": FAILED,
}
DEFAULT_TOLERANCE = 300


def is_stripe_reference(reference: str) -> bool:
    """True for a Stripe charge (`ch_`) or PaymentIntent (`pi_`) id."""
    return reference.startswith(("ch_", "pi_")) and len(reference) > 3


def stripe_amount(amount: Decimal, currency: str) -> int:
    """Smallest currency unit as Stripe counts it (1.50 USD -> 150, 9899 JPY -> 9899)."""
    return int(quantize(amount, currency).scaleb(currency_exponent(currency)))


def refund_result(obj: dict) -> GatewayResult:
    """A `GatewayResult` from a Stripe Refund object."""
    status = STATUS.get(str(obj.get("status")), PENDING)
    message = obj.get("failure_reason") or ""
    return GatewayResult(status=status, reference=str(obj.get("id", "")), message=message, raw=obj)


class StripeGateway:
    name = "stripe"

    def __init__(self, *, secret_key: str) -> None:
        self.secret_key = secret_key

    def _client(self) -> httpx.Client:
        return http.client(
            base_url=API_BASE,
            headers={"Authorization": f"Bearer {self.secret_key}"},
        )

    @staticmethod
    def _target(reference: str) -> tuple[str, str]:
        return ("payment_intent" if reference.startswith("pi_") else "charge", reference)

    def create(self, request: RefundRequest) -> GatewayResult:
        field, ref = self._target(request.order_reference)
        data = {
            field: ref,
            "amount": str(stripe_amount(request.amount, request.currency)),
            "reason": "requested_by_customer",
            "metadata[idempotency_key]": request.idempotency_key,
            "metadata[order_number]": request.order_number,
        }
        try:
            with self._client() as c:
                response = c.post(
                    "/v1/refunds", data=data, headers={"Idempotency-Key": request.idempotency_key}
                )
        except httpx.HTTPError as exc:
            return GatewayResult(status=ERROR, message=f"network: {exc}"[:500])
        return self._answer(response)

    def lookup(self, request: RefundRequest) -> GatewayResult:
        field, ref = self._target(request.order_reference)
        try:
            with self._client() as c:
                response = c.get("/v1/refunds", params={field: ref, "limit": "100"})
        except httpx.HTTPError as exc:
            return GatewayResult(status=ERROR, message=f"network: {exc}"[:500])
        if response.status_code >= 400:
            return self._answer(response)
        body = response.json()
        for obj in body.get("data", []):
            if (obj.get("metadata") or {}).get("idempotency_key") == request.idempotency_key:
                return refund_result(obj)
        return GatewayResult(status=NOT_FOUND, message="no refund with this key", raw=body)

    @staticmethod
    def _answer(response: httpx.Response) -> GatewayResult:
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text[:500]}
        if response.status_code < 300:
            return refund_result(body)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = f"{error.get('code') or error.get('type') or response.status_code}: {error.get('message', '')}"
        transient = response.status_code in (409, 429) or response.status_code >= 500
        return GatewayResult(status=ERROR if transient else FAILED, message=message[:500], raw=body)


class SignatureError(ValueError):
    """The webhook's `Stripe-Signature` is missing, malformed, wrong or stale."""


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` value for `payload` (tests and local tools)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    *, payload: bytes, header: str, secret: str, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Raise `SignatureError` unless `header` signs `payload` with `secret` within
    `tolerance` seconds of `now` (Unix seconds). Any `v1` entry may match (secret roll)."""
    if not header or not secret:
        raise SignatureError("missing signature or secret")
    timestamp = None
    signatures = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    # Untrusted header text: ASCII digits of a sane length only (`"²".isdigit()`
    # is true but int() refuses it), signatures compared as bytes (comparing
    # str with non-ASCII characters raises TypeError), the timestamp compared
    # as an integer and never turned into a datetime.
    if (
        timestamp is None
        or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12)
        or not signatures
    ):
        raise SignatureError("malformed Stripe-Signature header")
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256
    ).hexdigest()
    if not any(
        hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")) for sig in signatures
    ):
        raise SignatureError("signature does not match the payload")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError("timestamp outside the tolerance window")
