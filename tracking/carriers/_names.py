"""Aggregators' names for physical carriers -> DESIGN.md section 9 codes.

Sources: EasyPost "Carrier" names in Tracker objects (``carrier``: ``FedEx``,
``USPS``, ``UPS``, ``DHLExpress``, ``CanadaPost``...); AfterShip courier slugs
(aftership.com/docs/tracking couriers list); Shippo carrier tokens
(docs.goshippo.com "Carriers" tokens); karrio carrier names.
"""

from __future__ import annotations

_NAMES: dict[str, str] = {
    # EasyPost
    "fedex": "fedex",
    "fedexground": "fedex",
    "fedexsmartpost": "fedex",
    "ups": "ups",
    "upsmailinnovations": "ups",
    "usps": "usps",
    "dhlexpress": "dhl_express",
    "dhlecommerce": "dhl_universal",
    "dhlpaket": "dhl_parcel_de",
    "canadapost": "canadapost",
    "royalmail": "royalmail",
    "dpd": "dpd",
    "dpduk": "dpd",
    "gls": "gls",
    "colissimo": "laposte",
    "laposte": "laposte",
    "chronopost": "chronopost",
    "australiapost": "australiapost",
    "sendle": "sendle",
    "bpost": "bpost",
    "sfexpress": "sf_express",
    "yanwen": "yanwen",
    "purolator": "purolator",
    # AfterShip slugs (hyphens removed before lookup)
    "dhl": "dhl_express",
    "dhlgermany": "dhl_parcel_de",
    "dhlglobalmail": "dhl_universal",
    "royalmailgroup": "royalmail",
    "lapostecolissimo": "laposte",
    "chronopostfrance": "chronopost",
    "australiapostapi": "australiapost",
    "sfexpresscn": "sf_express",
    "purolatorinternational": "purolator",
    "glsgermany": "gls",
    "dpdde": "dpd",
    # Shippo tokens (underscores removed before lookup)
    "canada_post": "canadapost",
    "australia_post": "australiapost",
    "dhl_express": "dhl_express",
    "dhl_germany": "dhl_parcel_de",
    "royal_mail": "royalmail",
    "sf_express": "sf_express",
}


def physical_carrier(name: object) -> str | None:
    """Our carrier code for an aggregator's carrier name/slug/token, or None."""
    if not name:
        return None
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    return _NAMES.get(key) or _NAMES.get(str(name).lower())
