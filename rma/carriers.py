"""Carrier display names and public tracking-page URL templates, for the portal and e-mails.

Codes follow karrio's carrier names (DESIGN.md section 9). The URL templates
are each carrier's public "track a parcel" page with the number as a query
or path parameter, as the carriers publish them; `{number}` is replaced
URL-encoded. A carrier without a public page (the `sandbox`, aggregators)
gets no link. Tracking-number normalization proper belongs to the carrier
adapters; `normalize_tracking_number` only strips what customers and shops
add around a number (spaces, hyphens) and upper-cases it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

#: code -> (display name, public tracking URL template or "")
CARRIERS: dict[str, tuple[str, str]] = {
    "ups": ("UPS", "https://www.ups.com/track?tracknum={number}"),
    "fedex": ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={number}"),
    "usps": ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
    "dhl_express": (
        "DHL Express",
        "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={number}",
    ),
    "dhl_parcel_de": (
        "DHL Paket",
        "https://www.dhl.de/de/privatkunden/dhl-sendungsverfolgung.html?piececode={number}",
    ),
    "dhl_universal": (
        "DHL",
        "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}",
    ),
    "canadapost": (
        "Canada Post",
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}",
    ),
    "royalmail": (
        "Royal Mail",
        "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    ),
    "dpd": ("DPD", "https://tracking.dpd.de/status/en_US/parcel/{number}"),
    "gls": ("GLS", "https://gls-group.com/track/{number}"),
    "laposte": ("La Poste", "https://www.laposte.fr/outils/suivre-vos-envois?code={number}"),
    "chronopost": (
        "Chronopost",
        "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={number}",
    ),
    "australiapost": ("Australia Post", "https://auspost.com.au/mypost/track/details/{number}"),
    "sendle": ("Sendle", "https://track.sendle.com/tracking?ref={number}"),
    "bpost": ("bpost", "https://track.bpost.cloud/btr/web/#/search?itemCode={number}"),
    "sf_express": (
        "SF Express",
        "https://www.sf-express.com/we/ow/chn/en/waybill/waybill-detail/{number}",
    ),
    "yanwen": ("Yanwen", "https://track.yw56.com.cn/en/querydel?nums={number}"),
    "purolator": ("Purolator", "https://www.purolator.com/en/shipping/tracker?pin={number}"),
    "easypost": ("EasyPost", ""),
    "aftership": ("AfterShip", ""),
    "shippo": ("Shippo", ""),
    "karrio": ("karrio", ""),
    "sandbox": ("Sandbox Post", ""),
}

_STRIP = re.compile(r"[\s\-]+")


def is_known_carrier(code: str) -> bool:
    return (code or "").strip().lower() in CARRIERS


def carrier_name(code: str) -> str:
    """The carrier's display name (the code itself when unknown)."""
    return CARRIERS.get((code or "").lower(), (code, ""))[0]


def carrier_tracking_url(code: str, number: str) -> str:
    """The carrier's public tracking page for `number`, or `""` when none is known."""
    template = CARRIERS.get((code or "").lower(), ("", ""))[1]
    if not template or not number:
        return ""
    return template.format(number=quote(number, safe=""))


def normalize_tracking_number(number: str) -> str:
    """`" 1z 999-aa1 "` -> `"1Z999AA1"`: spaces and hyphens removed, upper-cased."""
    return _STRIP.sub("", number or "").upper()
