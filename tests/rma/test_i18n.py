"""The portal in English, German and French: the browser's language, the selector
(`set_language` on the tenant host, CSRF, `next` kept on the host), the language a
return is made in and its confirmation e-mail, and the catalogues themselves
(complete, not fuzzy, placeholders kept, the committed .mo matching the .po)."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
from pathlib import Path

import django
import pytest
import time_machine
from babel.messages.pofile import read_po
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils.translation import to_locale

from rma.models import Notification, ReturnRequest
from rma.services import ReturnLineInput, return_request_create
from rma.tasks import notification_send
from tests.portal_helpers import NOW, order_with_lines

HOST = "acme.localhost"
#: Every language the portal offers besides the source language (English).
LOCALES = tuple(code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _po_path(lang: str) -> Path:
    return Path(settings.LOCALE_PATHS[0]) / lang / "LC_MESSAGES" / "django.po"


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _csrf(page) -> str:
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()


# --------------------------------------------------------------------------
# The browser's language
# --------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept", "lang", "heading", "button"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "de", "Artikel zurücksenden", "Bestellung suchen"),
        ("fr-FR,fr;q=0.9", "fr", "Retourner un article", "Trouver ma commande"),
        ("en-GB,en;q=0.9", "en", "Return an item", "Find my order"),
        ("ja", "en", "Return an item", "Find my order"),
    ],
)
def test_lookup_page_follows_accept_language(client, tenant, accept, lang, heading, button):
    page = client.get("/", HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE=accept)
    body = page.content.decode()
    assert page.status_code == 200
    assert f'<html lang="{lang}">' in body
    assert f"<h1>{heading}</h1>" in body and button in body


@pytest.mark.django_db
def test_lookup_error_is_translated(client, tenant):
    order_with_lines(tenant)
    page = client.post(
        "/",
        {"email": "someone@example.com", "order_number": "1001"},
        HTTP_HOST=HOST,
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert "Nous n&#x27;avons trouvé aucune commande" in page.content.decode()


# --------------------------------------------------------------------------
# The selector
# --------------------------------------------------------------------------
@pytest.mark.django_db
def test_language_selector_is_a_plain_form_with_one_button_per_language(client, tenant):
    body = client.get("/?from=mail", HTTP_HOST=HOST).content.decode()
    form = re.search(r'<form class="language-form"[^>]*>.*?</form>', body, re.S).group(0)
    assert 'action="/i18n/setlang/"' in form and 'method="post"' in form
    assert "hx-" not in form  # no JavaScript needed
    assert 'name="csrfmiddlewaretoken"' in form
    assert '<input type="hidden" name="next" value="/?from=mail">' in form  # back to this page
    buttons = re.findall(r'<button type="submit" name="language" value="(\w+)"', form)
    assert buttons == [code for code, _name in settings.LANGUAGES]
    assert 'value="en" lang="en" class="current" aria-current="true">English<' in form
    assert ">Deutsch<" in form and ">Français<" in form


@pytest.mark.django_db
def test_language_selector_switches_language_with_csrf(tenant):
    browser = Client(enforce_csrf_checks=True)
    home = browser.get("/", HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE="de")
    assert "Artikel zurücksenden" in home.content.decode()

    refused = browser.post("/i18n/setlang/", {"language": "fr", "next": "/"}, HTTP_HOST=HOST)
    assert refused.status_code == 403  # CSRF is checked

    switched = browser.post(
        "/i18n/setlang/",
        {"language": "fr", "next": "/", "csrfmiddlewaretoken": _csrf(home)},
        HTTP_HOST=HOST,
    )
    assert switched.status_code == 302 and switched["Location"] == "/"
    cookie = switched.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "fr" and cookie["samesite"] == "Lax" and cookie["httponly"]
    # The choice beats the browser's Accept-Language from now on.
    page = browser.get("/", HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE="de")
    body = page.content.decode()
    assert '<html lang="fr">' in body and "Retourner un article" in body
    assert 'value="fr" lang="fr" class="current" aria-current="true"' in body

    back = browser.post(
        "/i18n/setlang/",
        {"language": "en", "next": "/", "csrfmiddlewaretoken": _csrf(page)},
        HTTP_HOST=HOST,
    )
    assert back.status_code == 302
    assert "Return an item" in browser.get("/", HTTP_HOST=HOST).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("next_url", "location"),
    [
        ("/return/", "/return/"),
        ("/r/abc/?x=1", "/r/abc/?x=1"),
        ("http://acme.localhost/return/", "http://acme.localhost/return/"),
        ("http://globex.localhost/", "/"),
        ("https://evil.example/phish", "/"),
        ("//evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_language_selector_next_stays_on_the_same_host(
    client, tenant, other_tenant, next_url, location
):
    answer = client.post("/i18n/setlang/", {"language": "de", "next": next_url}, HTTP_HOST=HOST)
    assert answer.status_code == 302 and answer["Location"] == location


@pytest.mark.django_db
def test_language_selector_is_only_on_tenant_hosts(client, tenant):
    for host in ("localhost", "unknown.example"):
        answer = client.post("/i18n/setlang/", {"language": "de", "next": "/"}, HTTP_HOST=host)
        assert answer.status_code == 404, host
        assert settings.LANGUAGE_COOKIE_NAME not in answer.cookies


@pytest.mark.django_db
def test_not_found_page_is_translated_and_has_no_selector(client, tenant):
    page = client.get("/r/" + "x" * 32 + "/", HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE="de")
    body = page.content.decode()
    assert page.status_code == 404 and "Seite nicht gefunden" in body
    assert "language-form" not in body  # keeps foreign and missing tokens' 404s identical


# --------------------------------------------------------------------------
# A return made in German, and its e-mail
# --------------------------------------------------------------------------
@pytest.mark.django_db
def test_return_created_in_german_stores_de_and_its_email_is_german(client, tenant, frozen):
    order, (line, _other) = order_with_lines(tenant)
    german = {"HTTP_HOST": HOST, "HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}
    found = client.post("/", {"email": "buyer@example.com", "order_number": "1001"}, **german)
    assert found.status_code == 302
    page = client.get("/return/", **german)
    body = page.content.decode()
    assert "Was möchten Sie zurücksenden?" in body and "ab Versand" in body
    nonce = re.search(r'name="nonce" value="([^"]+)"', body).group(1)
    submitted = client.post(
        "/return/",
        {
            "nonce": nonce,
            "method": "drop_off",
            f"q_{line.line_id}": "1",
            f"r_{line.line_id}": "too_small",
        },
        **german,
    )
    assert submitted.status_code == 302, submitted.content.decode()[:2000]
    rr = ReturnRequest.objects.get()
    assert rr.language == "de"
    confirmation = client.get(submitted["Location"], **german).content.decode()
    assert f"Rücksendung {rr.rma_number} angemeldet" in confirmation

    # The worker sends what was rendered in the customer's language, whatever the
    # worker's own language is.
    queued = Notification.objects.get(key=f"return_confirmation:{rr.pk}")
    assert notification_send(queued.pk, tenant.pk) == "sent"
    (sent,) = mail.outbox
    assert sent.subject == f"Ihre Rücksendung {rr.rma_number} zur Bestellung {order.number}"
    assert sent.body.startswith(
        f"Guten Tag,\n\nwir haben Ihre Rücksendung {rr.rma_number} zur Bestellung {order.number}"
    )
    assert "Retourenlabel und Retourenschein (PDF):" in sent.body
    assert f"http://acme.localhost:8000/r/{rr.token}/" in sent.body
    assert "Track your return" not in sent.body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lang", "subject", "greeting"),
    [
        ("fr", "Votre retour {rma} pour la commande {order}", "Bonjour,\n\nNous avons bien"),
        ("en", "Your return {rma} for order {order}", "Hello,\n\nwe have your return"),
    ],
)
def test_confirmation_email_is_in_the_returns_language(tenant, lang, subject, greeting):
    order, (line, _other) = order_with_lines(tenant)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=line.line_id, quantity=1, reason="too_small")],
        method="drop_off",
        source="customer",
        now=NOW,
        language=lang,
    )
    queued = Notification.objects.get(key=f"return_confirmation:{rr.pk}")
    assert queued.subject == subject.format(rma=rr.rma_number, order=order.number)
    assert queued.body_text.startswith(greeting)


# --------------------------------------------------------------------------
# The catalogues
# --------------------------------------------------------------------------
#: printf-style (`%(name)s`, `%d`, `%%`) and brace (`{name}`) placeholders.
PLACEHOLDER = re.compile(
    r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]|%[-#0 +]*\d*[diouxXeEfFgGcrs%]"
)
BRACE = re.compile(r"\{\w*\}")


def _placeholders(text: str, flags: set[str]) -> list[str]:
    found = sorted(PLACEHOLDER.findall(text)) if "python-format" in flags else []
    if "python-brace-format" in flags:
        found += sorted(BRACE.findall(text))
    return found


def _catalog(lang: str):
    with _po_path(lang).open("rb") as handle:
        return read_po(handle, locale=to_locale(lang), abort_invalid=True)


def _django_plural_forms(lang: str) -> str:
    """The plural rule of Django's own catalogue for `lang` (what makemessages copies):
    ours must be the same, so "1 day" and the admin's plurals agree."""
    path = (
        Path(django.__file__).parent
        / "conf"
        / "locale"
        / to_locale(lang)
        / "LC_MESSAGES"
        / "django.po"
    )
    return re.search(r'"Plural-Forms: (.*?)\\n"', path.read_text(encoding="utf-8")).group(1)


@pytest.mark.parametrize("lang", LOCALES)
def test_catalogue_is_complete_not_fuzzy_and_keeps_placeholders(lang):
    catalog = _catalog(lang)
    header = dict(catalog.mime_headers)
    assert header["Language"] == lang
    assert header["Plural-Forms"] == _django_plural_forms(lang)
    assert "charset=utf-8" in header["Content-Type"].lower()
    assert not catalog.fuzzy, "the header is marked fuzzy"
    problems = []
    entries = [m for m in catalog if m.id]
    assert len(entries) > 400, "the catalogue lost its entries"
    for message in entries:
        where = f"{message.id!r} ({', '.join(f'{p}:{n}' for p, n in message.locations)})"
        if message.fuzzy:
            problems.append(f"fuzzy: {where}")
        if isinstance(message.id, tuple):
            strings = list(message.string)
            sources = [message.id[1]] * len(strings)
            if len(strings) != 2:
                problems.append(f"{len(strings)} plural forms: {where}")
        else:
            strings, sources = [message.string], [message.id]
        for source, text in zip(sources, strings, strict=True):
            if not text or not text.strip():
                problems.append(f"untranslated: {where}")
            elif _placeholders(text, message.flags) != _placeholders(source, message.flags):
                problems.append(f"placeholders differ: {where} -> {text!r}")
            elif source.endswith("\n") != text.endswith("\n"):
                problems.append(f"trailing newline differs: {where}")
    obsolete = list(catalog.obsolete)
    assert not obsolete, f"obsolete entries left in {lang}: {obsolete}"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LOCALES)
def test_committed_mo_matches_the_po(lang):
    """The .mo Django loads says exactly what the .po says (run compilemessages)."""
    catalog = _catalog(lang)
    expected = {}
    for message in catalog:
        if not message.id:
            continue
        prefix = f"{message.context}\x04" if message.context else ""
        if isinstance(message.id, tuple):
            for index, text in enumerate(message.string):
                expected[(prefix + message.id[0], index)] = text
        else:
            expected[prefix + message.id] = message.string
    mo_path = _po_path(lang).with_suffix(".mo")
    assert mo_path.is_file(), f"{mo_path} is missing: run manage.py compilemessages"
    with mo_path.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    # `_catalog` is the parsed .mo (msgid -> msgstr, (msgid, n) for plurals).
    loaded = {key: value for key, value in compiled._catalog.items() if key != ""}
    missing = sorted(str(k) for k in expected.keys() - loaded.keys())
    extra = sorted(str(k) for k in loaded.keys() - expected.keys())
    changed = sorted(str(k) for k in expected.keys() & loaded.keys() if expected[k] != loaded[k])
    assert not (missing or extra or changed), (
        f"{mo_path} is stale (run manage.py compilemessages): missing {missing[:5]}, "
        f"extra {extra[:5]}, changed {changed[:5]}"
    )


@pytest.mark.parametrize("lang", LOCALES)
def test_po_passes_msgfmt_check(lang, tmp_path):
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        if IN_CI:
            pytest.fail("CI must have msgfmt (gettext) to check the catalogues")
        pytest.skip("msgfmt (gettext) is not installed")
    result = subprocess.run(
        [msgfmt, "--check", "--statistics", "-o", str(tmp_path / "django.mo"), str(_po_path(lang))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


def test_tracking_page_shows_the_refund_estimate_in_the_page_language(client, tenant, frozen):
    order, (line, _second) = order_with_lines(tenant)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="buyer@example.com",
        lines=[ReturnLineInput(line_id=line.line_id, quantity=1, reason="too_small")],
        method="drop_off",
        source="customer",
        now=NOW,
        language="fr",
    )
    rr.refresh_from_db()
    assert rr.refund_estimate_text.startswith("Prévu entre le ")
    assert rr.refund_estimate_texts["de"].startswith("Voraussichtlich zwischen ")
    english = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE="en")
    assert rr.refund_estimate_texts["en"] in english.content.decode()
    assert "Prévu" not in english.content.decode()
    french = client.get(f"/r/{rr.token}/", HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE="fr")
    assert rr.refund_estimate_text in french.content.decode()
