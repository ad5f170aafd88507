"""Webhook verification on raw bytes (EasyPost official fixture, AfterShip,
Shippo, karrio)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracking.carriers.base import WebhookVerificationError
from tracking.carriers.registry import get_adapter

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "carriers"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
EASYPOST_HEADER = "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db"


def _easypost_body() -> bytes:
    path = CORPUS / "easypost" / "tracker_updated_event_body.json"
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("EasyPost fixture missing in CI")
        pytest.skip("shared corpus not present")
    return path.read_bytes()


def _verify_easypost(body: bytes, secret: str = "sécret", value: str = EASYPOST_HEADER):
    return get_adapter("easypost").verify_webhook(
        headers={"X-Hmac-Signature": value}, body=body, secret=secret, now=NOW
    )


def test_webhooks_easypost_official_fixture_verifies() -> None:
    body = _easypost_body()
    assert len(body) == 3550
    assert _verify_easypost(body).event_id == "evt_1"


def test_webhooks_easypost_header_name_is_case_insensitive() -> None:
    body = _easypost_body()
    get_adapter("easypost").verify_webhook(
        headers={"x-hmac-signature": EASYPOST_HEADER}, body=body, secret="sécret", now=NOW
    )


def test_webhooks_easypost_tampered_byte_fails() -> None:
    body = bytearray(_easypost_body())
    body[100] ^= 0x01
    with pytest.raises(WebhookVerificationError):
        _verify_easypost(bytes(body))


def test_webhooks_easypost_reserialized_body_fails() -> None:
    body = json.dumps(json.loads(_easypost_body())).encode()
    with pytest.raises(WebhookVerificationError):
        _verify_easypost(body)


def test_webhooks_easypost_trailing_newline_fails() -> None:
    with pytest.raises(WebhookVerificationError):
        _verify_easypost(_easypost_body() + b"\n")


def test_webhooks_easypost_wrong_or_unnormalized_secret_fails() -> None:
    body = _easypost_body()
    for secret in ("secret", "se\u0301cret".replace("e\u0301", "é") + "x"):
        with pytest.raises(WebhookVerificationError):
            _verify_easypost(body, secret=secret)
    # the NFKD form of the secret is what is used: the composed and decomposed spellings both verify
    _verify_easypost(body, secret="se\u0301cret")


def test_webhooks_easypost_missing_header_fails() -> None:
    with pytest.raises(WebhookVerificationError):
        get_adapter("easypost").verify_webhook(
            headers={}, body=_easypost_body(), secret="sécret", now=NOW
        )


def _aftership_body() -> bytes:
    return json.dumps(
        {
            "event": "tracking_update",
            "event_id": "e-1",
            "ts": 1780000000,
            "msg": {"tracking_number": "1", "checkpoints": []},
        }
    ).encode()


def test_webhooks_aftership_valid_signature_verifies() -> None:
    body = _aftership_body()
    sig = base64.b64encode(hmac.new(b"as-secret", body, hashlib.sha256).digest()).decode()
    result = get_adapter("aftership").verify_webhook(
        headers={"aftership-hmac-sha256": sig}, body=body, secret="as-secret", now=NOW
    )
    assert result.event_id == "e-1" and result.signed_at == datetime.fromtimestamp(
        1780000000, tz=UTC
    )


def test_webhooks_aftership_tampered_and_wrong_secret_fail() -> None:
    body = _aftership_body()
    sig = base64.b64encode(hmac.new(b"as-secret", body, hashlib.sha256).digest()).decode()
    with pytest.raises(WebhookVerificationError):
        get_adapter("aftership").verify_webhook(
            headers={"aftership-hmac-sha256": sig}, body=body + b" ", secret="as-secret", now=NOW
        )
    with pytest.raises(WebhookVerificationError):
        get_adapter("aftership").verify_webhook(
            headers={"aftership-hmac-sha256": sig}, body=body, secret="other", now=NOW
        )


def test_webhooks_shippo_token_scheme() -> None:
    adapter = get_adapter("shippo")
    adapter.verify_webhook(
        headers={}, body=b"{}", secret="tok-123", now=NOW, query={"token": "tok-123"}
    )
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(
            headers={}, body=b"{}", secret="tok-123", now=NOW, query={"token": "tok-124"}
        )
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(headers={}, body=b"{}", secret="tok-123", now=NOW)


def test_webhooks_shippo_hmac_scheme_and_stale_timestamp() -> None:
    adapter = get_adapter("shippo")
    body = b'{"event":"track_updated"}'
    stamp = int(NOW.timestamp())
    sig = hmac.new(b"sh-secret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    result = adapter.verify_webhook(
        headers={"Shippo-Auth-Signature": f"t={stamp},v1={sig}"},
        body=body,
        secret="sh-secret",
        now=NOW,
    )
    assert result.signed_at == NOW
    old = stamp - 3600
    old_sig = hmac.new(b"sh-secret", f"{old}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(
            headers={"Shippo-Auth-Signature": f"t={old},v1={old_sig}"},
            body=body,
            secret="sh-secret",
            now=NOW,
        )


def test_webhooks_karrio_signature() -> None:
    body = b'{"id":"evt_1","type":"tracker.updated","data":{}}'
    sig = hmac.new(b"k-secret", body, hashlib.sha256).hexdigest()
    assert (
        get_adapter("karrio")
        .verify_webhook(headers={"X-Karrio-Signature": sig}, body=body, secret="k-secret", now=NOW)
        .event_id
        == "evt_1"
    )
    with pytest.raises(WebhookVerificationError):
        get_adapter("karrio").verify_webhook(
            headers={"X-Karrio-Signature": sig}, body=body + b"x", secret="k-secret", now=NOW
        )


def test_webhooks_carrier_without_webhooks_refuses() -> None:
    with pytest.raises(WebhookVerificationError):
        get_adapter("ups").verify_webhook(headers={}, body=b"{}", secret="x", now=NOW)


def _shippo(stamp: str, sig: str, body: bytes = b"{}"):
    return get_adapter("shippo").verify_webhook(
        headers={"Shippo-Auth-Signature": f"t={stamp},v1={sig}"},
        body=body,
        secret="sh-secret",
        now=NOW,
    )


def _shippo_sig(stamp: str, body: bytes = b"{}") -> str:
    return hmac.new(b"sh-secret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "stamp",
    ["99999999999999999999", "9" * 5000, "-1", "1e9", "١٧٨٠٠٠٠٠٠٠", "", "17800000000000"],
)
def test_webhooks_shippo_untrusted_timestamp_never_overflows(stamp: str) -> None:
    """The header's `t` is untrusted: a huge, signed, non-ASCII or empty value
    is a verification error (401), never an OverflowError (503)."""
    with pytest.raises(WebhookVerificationError, match="malformed"):
        _shippo(stamp, "00")
    with pytest.raises(WebhookVerificationError, match="malformed"):
        _shippo(stamp, _shippo_sig(stamp))  # even correctly signed


def test_webhooks_shippo_signed_far_timestamp_is_outside_the_tolerance() -> None:
    far = "999999999999"  # year 33658: representable digits, compared as an integer
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        _shippo(far, "00")
    with pytest.raises(WebhookVerificationError, match="outside the tolerance"):
        _shippo(far, _shippo_sig(far))
    stamp = str(int(NOW.timestamp()) - 299)
    assert _shippo(stamp, _shippo_sig(stamp)).signed_at == datetime.fromtimestamp(
        int(stamp), tz=UTC
    )


@pytest.mark.parametrize(
    ("ts", "signed_at"),
    [
        ("1e300", datetime.max.replace(tzinfo=UTC)),
        ("-1e300", datetime.min.replace(tzinfo=UTC)),
        ("99999999999999999999", datetime.max.replace(tzinfo=UTC)),
        ("NaN", None),
        ("true", None),
        ('"1780000000"', None),
    ],
)
def test_webhooks_aftership_signed_ts_out_of_range_is_clamped(ts: str, signed_at) -> None:
    """A signed `ts` beyond datetime's range is clamped (the receiver then calls
    it stale); one that is no number gives no signed time."""
    body = f'{{"event": "tracking_update", "event_id": "e-9", "ts": {ts}, "msg": {{}}}}'.encode()
    sig = base64.b64encode(hmac.new(b"as-secret", body, hashlib.sha256).digest()).decode()
    result = get_adapter("aftership").verify_webhook(
        headers={"aftership-hmac-sha256": sig}, body=body, secret="as-secret", now=NOW
    )
    assert (result.event_id, result.signed_at) == ("e-9", signed_at)
