"""Message catalogues and localised dates, numbers and time zones (Babel).

Source strings are English and are the ``en`` catalogue; other languages ship a gettext
catalogue at ``locales/<language>/LC_MESSAGES/escucha.po``. The ``.po`` is compiled in memory
the first time a language is asked for (no build step: the Makefile installs, it compiles
nothing), and cached.

A locale is anything Babel parses (``es``, ``es_MX``, ``es-AR``) whose language we ship: the
catalogue is chosen by language, dates and numbers by the full locale. Unknown or unshipped
locales fall back to English rather than fail a delivery; config validates with
:func:`check_locale` so a typo is reported at start-up instead.

Only the text around the data is translated: mention text, author names, watch names and
anything else from a mention or config is passed through untouched.
"""

from __future__ import annotations

import gettext
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel import dates as _dates
from babel import numbers as _numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["DEFAULT", "DOMAIN", "EN", "LOCALES_DIR", "N_", "SHIPPED", "Lang", "Translations",
           "check_locale", "check_target_locales", "check_timezone", "decimal_symbol",
           "format_datetime",
           "format_decimal", "format_percent", "format_time", "label", "language_of",
           "negotiate", "translator"]

DEFAULT = "en"
DOMAIN = "escucha"
LOCALES_DIR = Path(__file__).parent / "locales"
#: Languages with a catalogue, plus the source language.
SHIPPED = frozenset({"en"} | {p.name for p in LOCALES_DIR.iterdir()
                              if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()})

Translations = gettext.NullTranslations
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[_-](?:[A-Za-z]{2}|\d{3}))?$")


def _parse(locale: str) -> Locale:
    return Locale.parse(locale.replace("-", "_"))


def check_locale(value: str) -> str:
    """``value`` normalised (``es-mx`` -> ``es_MX``), or ValueError naming what we ship."""
    if not _LOCALE.match(value):
        raise ValueError(f"locale {value!r}: use a language, optionally with a region, "
                         f"e.g. 'es' or 'es_MX'; shipped: {sorted(SHIPPED)}")
    try:
        parsed = _parse(value)
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValueError(f"unknown locale {value!r}; use one of {sorted(SHIPPED)} (optionally "
                         "with a region, e.g. 'es_MX')") from None
    if str(parsed).lower() != value.replace("-", "_").lower():
        # Babel maps what it does not know to a neighbour (es_ZZ -> es_ES) or keeps a
        # modifier; a typo must not quietly become some other region's formats.
        raise ValueError(f"locale {value!r} is not one Babel knows exactly (closest: "
                         f"{str(parsed)!r})")
    if parsed.language not in SHIPPED:
        raise ValueError(f"no catalogue for {value!r}; shipped: {sorted(SHIPPED)}")
    return str(parsed)


def check_timezone(value: str) -> str:
    """``value`` if it is an IANA zone this machine knows, or ValueError saying what to use."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like "
                         "'Europe/Madrid'") from None
    return value


def check_target_locales(value: dict[str, str]) -> dict[str, str]:
    """Each target's locale normalised; every wrong one reported at once, like the rest of
    the config."""
    bad, out = [], {}
    for target, loc in value.items():
        try:
            out[target] = check_locale(loc)
        except ValueError as exc:
            bad.append(f"{target}: {exc}")
    if bad:
        raise ValueError("; ".join(bad))
    return out


def language_of(locale: str | None) -> str:
    """The shipped language for ``locale``; English for unknown or unshipped ones."""
    if not locale:
        return DEFAULT
    try:
        language = _parse(locale).language
    except (ValueError, TypeError, UnknownLocaleError):
        return DEFAULT
    return language if language in SHIPPED else DEFAULT


def _babel_locale(locale: str | None) -> Locale:
    try:
        parsed = _parse(locale or DEFAULT)
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse(DEFAULT)
    return parsed if parsed.language in SHIPPED else Locale.parse(DEFAULT)


@cache
def _compiled(language: str) -> Translations:
    if language == DEFAULT:
        return gettext.NullTranslations()
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    # Fuzzy entries are guesses awaiting review: shown in English until someone signs off.
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def translator(locale: str | None) -> Translations:
    """A gettext object (``.gettext``, ``.ngettext``, ``.pgettext``) for ``locale``."""
    return _compiled(language_of(locale))


def _zone(tz: str | ZoneInfo | None) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    return ZoneInfo(tz or "UTC")


def format_datetime(when: datetime, locale: str | None, tz: str | ZoneInfo | None = None,
                    *, format: str = "medium") -> str:
    """``when`` in ``tz`` (default UTC): the date as ``locale`` writes it (``format`` is
    Babel's date format), a 24-hour time, and the zone's abbreviation (``CET``, ``UTC``) so
    nobody guesses which clock it is. 24 hours in every language: on-call people read times
    across teams, and "12:05" cannot be misread as midnight."""
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    local = aware.astimezone(_zone(tz))
    day = _dates.format_date(local, format=format, locale=_babel_locale(locale))
    return f"{day}, {local:%H:%M} {local.tzname() or local.tzinfo}"


def format_decimal(value: float | Decimal, locale: str | None, *,
                   format: str | None = None) -> str:
    return _numbers.format_decimal(value, format=format, locale=_babel_locale(locale))


def decimal_symbol(locale: str | None) -> str:
    """The decimal mark of ``locale`` (``.`` in en, ``,`` in es)."""
    return str(_numbers.get_decimal_symbol(_babel_locale(locale)))


def format_percent(value: float | Decimal, locale: str | None, *, decimals: int = 1) -> str:
    """``value`` as a fraction (0.253 -> ``25.3%`` in en, ``25,3 %`` in es)."""
    loc = _babel_locale(locale)
    base = loc.percent_formats[None].pattern  # '#,##0%' in en, '#,##0\u00a0%' in es
    body = "#,##0" + ("." + "0" * decimals if decimals else "")
    return _numbers.format_percent(value, format=base.replace("#,##0", body, 1), locale=loc)


def format_time(when: datetime, locale: str | None, tz: str | ZoneInfo | None = None) -> str:
    """24-hour ``HH:MM`` in ``tz`` with the zone's abbreviation (``locale`` is for symmetry:
    both shipped languages write it the same)."""
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    local = aware.astimezone(_zone(tz))
    return f"{local:%H:%M} {local.tzname() or local.tzinfo}"


def negotiate(accept_language: str | None) -> str:
    """The shipped language a browser's ``Accept-Language`` header prefers most (``es`` for
    ``es-MX,es;q=0.9,en;q=0.8``), English if none is shipped or the header is malformed.
    Only where nobody is signed in yet (the sign-in page): a user's own setting wins after."""
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate((accept_language or "")[:1000].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0 and _LOCALE.match(tag):
            ranked.append((-quality, n, tag))
    for _q, _n, tag in sorted(ranked):
        language = language_of(tag)
        if language != DEFAULT or tag.lower().startswith(DEFAULT):
            return language
    return DEFAULT


def N_(message: str) -> str:
    """Marks a string for the catalogue where it is defined; translated where it is shown."""
    return message


#: Incident states and severities as shown to people; the stored values stay English.
_LABELS = {"open": N_("open"), "acknowledged": N_("acknowledged"), "resolved": N_("resolved"),
           "info": N_("info"), "warning": N_("warning"), "critical": N_("critical")}


def label(tr: Translations, value: str) -> str:
    """A state or severity in ``tr``'s language; anything else unchanged."""
    return tr.gettext(_LABELS[value]) if value in _LABELS else value


class Lang:
    """The language and clock of one message: gettext plus the time zone it shows."""

    def __init__(self, locale: str | None = DEFAULT, timezone: str = "UTC") -> None:
        self.locale, self.timezone = locale or DEFAULT, timezone
        self.tr: Translations = translator(locale)
        self._ = self.tr.gettext

    def hm(self, when: datetime) -> str:
        # Records normalise most datetimes, not acked_at/resolved_at: naive means UTC here too.
        return format_time(when, self.locale, self.timezone)

    def at(self, when: datetime, *, format: str = "medium") -> str:
        return format_datetime(when, self.locale, self.timezone, format=format)

    def label(self, value: str) -> str:
        return label(self.tr, value)

    @property
    def unset(self) -> bool:
        """English in UTC, i.e. nothing configured: renderers keep their historic formats."""
        return self.locale == DEFAULT and self.timezone == "UTC"


#: English in UTC: what every renderer uses when no locale is configured.
EN = Lang()
