"""The HTTP client the gateways use (httpx, pinned in pyproject).

`TRANSPORT` is None in production (httpx's default transport). Tests set it
to an `httpx.MockTransport` that answers with responses built from the
gateways' documented shapes; no test talks to a live service.
"""

from __future__ import annotations

import httpx

TRANSPORT: httpx.BaseTransport | None = None
TIMEOUT = httpx.Timeout(20.0, connect=5.0)


def client(
    *, base_url: str, headers: dict[str, str], auth: httpx.Auth | tuple | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers=headers, auth=auth, timeout=TIMEOUT, transport=TRANSPORT
    )
