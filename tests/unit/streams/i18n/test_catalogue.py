"""The Spanish catalogue covers every string the code marks, and the helpers behave."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from streams.i18n import (
    DOMAIN,
    LOCALES_DIR,
    check_locale,
    format_datetime,
    format_percent,
    format_time,
    label,
    language_of,
    translator,
)
from streams.i18n.extract import SOURCES, marking_modules, messages, split

_FIELD = re.compile(r"\{[a-z_]*\}")


def _catalog(language: str):  # type: ignore[no-untyped-def]
    with (LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh, locale=language, domain=DOMAIN)


def test_the_scan_sees_strings_inside_f_strings() -> None:
    # Babel's own extractor misses these on Python 3.11; the check would pass vacuously.
    found = messages()
    assert "Skip to content" in found and "Sign out" in found  # f"{_('…')}" in render.py
    assert ("Digest: {count} notice", "Digest: {count} notices") in found
    assert "link\x04open" in found and "open" in found  # the verb and the state differ
    assert len(found) > 100


def test_every_marked_string_is_translated_in_spanish() -> None:
    catalog = _catalog("es")
    problems = []
    for key, where in messages().items():
        context, msg = split(key)
        entry = catalog.get(msg, context=context)
        if entry is None:
            problems.append(f"missing: {msg!r} ({where[0]})")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy or not all(strings):
            problems.append(f"untranslated or fuzzy: {msg!r} ({where[0]})")
        ids = msg if isinstance(msg, tuple) else (msg,)
        wanted = set(_FIELD.findall(ids[0]))
        for s in strings:  # a lost or renamed {field} raises KeyError at .format or drops data
            if s and set(_FIELD.findall(s)) != wanted:
                problems.append(f"placeholders differ: {msg!r} -> {s!r}")
    assert not problems, "run `python -m streams.i18n.extract` and translate:\n" + "\n".join(
        problems)


def test_every_module_that_marks_strings_is_scanned() -> None:
    # A string wrapped in a module the scan does not read would never be asked of the
    # translators: the Spanish check above would pass while the alert went out in English.
    marking = marking_modules()
    unlisted = sorted(set(marking) - set(SOURCES))
    assert not unlisted, f"add to streams.i18n.extract.SOURCES: {unlisted}"
    assert {"notifiers/email_message.py", "notifiers/push.py", "notifiers/card.py",
            "notifiers/followup.py", "notifiers/pagerduty.py"} <= set(marking)


def test_sources_exist() -> None:
    for rel in SOURCES:
        assert (LOCALES_DIR.parents[2] / rel).is_file(), rel


def test_locales_are_checked_and_unknown_ones_fall_back_to_english() -> None:
    assert check_locale("es-mx") == "es_MX" and check_locale("en") == "en"
    for bad in ("xx", "fr", "es_ES@@", "es_ZZ", "", "../es"):
        with pytest.raises(ValueError):
            check_locale(bad)
    assert language_of("es_AR") == "es" and language_of("fr") == "en"
    assert language_of(None) == "en" and language_of("??") == "en"
    assert translator("fr").gettext("Resolve") == "Resolve"
    assert translator("es_MX").gettext("Resolve") == "Resolver"
    assert label(translator("es"), "acknowledged") == "atendido"
    assert label(translator("es"), "custom_state") == "custom_state"


def test_dates_numbers_and_zones_follow_locale_and_zone() -> None:
    at = datetime(2026, 3, 2, 8, 5, tzinfo=UTC)
    assert format_datetime(at, "es", "Europe/Madrid") == "2 mar 2026, 09:05 CET"
    assert format_datetime(at, "en") == "Mar 2, 2026, 08:05 UTC"
    assert format_time(at, "es", "America/Mexico_City") == "02:05 CST"
    assert format_percent(0.253, "es") == "25,3\xa0%" and format_percent(0.253, "en") == "25.3%"
