"""A detector's summary in a reader's language: its clauses (``Signal.summary_parts``) as data,
each said with a template from the catalogue.

The detectors keep writing ``summary`` in English (machines and search read it); beside it they
emit one part per clause: a key and its values. Here each key has an English template marked
for translation and says how each value is shown: numbers as the locale writes them, with the
decimals the English text has always had; times in the reader's zone, named. In English and UTC
the result is the English summary exactly (a test renders every detector's parts to hold the
two together).

Values from mentions (story text, handles, terms) are put in as they are: each channel escapes
the rendered line as it escapes any untrusted text. ``str.format`` does not read the braces of a
value, so a ``{x}`` in a mention stays text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from streams.i18n import (
    DEFAULT,
    N_,
    Translations,
    decimal_symbol,
    format_decimal,
    format_percent,
    format_time,
    translator,
)

__all__ = ["KEYS", "Part", "SummaryError", "render_summary", "show_value", "time_of",
           "zone_of"]

Value = str | int | float | Sequence[str | int | float]


class Part(Protocol):
    """What :func:`render_summary` reads of a ``streams.core.records.Phrase`` (i18n stands
    below the records: it cannot import them)."""

    @property
    def key(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Value]: ...


class SummaryError(ValueError):
    """Parts this version cannot say (an unknown key, a missing or wrong value): the caller
    shows the English ``summary`` instead. The message names keys and types, never a value
    (values may be mention text, and it is logged)."""


# How each value is shown: the English f-string's format, so English stays byte for byte.
#   d: integer, no grouping     ,d: grouped integer     .0f/.1f: fixed decimals
#   .0%: percent                .1e: p-value            s: text as given
#   hm: HH:MM in the zone       hmz: HH:MM and the zone's name
_Spec = dict[str, str]
_TEMPLATES: dict[str, tuple[str, _Spec]] = {
    "influencer": (
        N_("@{handle} ({reach} followers) posted a negative mention, {velocity} "
           "interactions/min: \u201c{text}\u201d"),
        {"handle": "s", "reach": ",d", "velocity": ".0f", "text": "s"}),
    "influencer_verified": (
        N_("@{handle} ({reach} followers, verified) posted a negative mention, {velocity} "
           "interactions/min: \u201c{text}\u201d"),
        {"handle": "s", "reach": ",d", "velocity": ".0f", "text": "s"}),
    "volume_spike": (
        N_("{observed} mentions in {minutes} min, {ratio}x the expected {expected} (p={p}); "
           "{authors} authors"),
        {"observed": "d", "minutes": "d", "ratio": ".1f", "expected": ".1f", "p": ".1e",
         "authors": "d"}),
    "negative_spike": (
        N_("{observed} negative mentions in {minutes} min, {ratio}x the expected {expected} "
           "(p={p}); {authors} authors"),
        {"observed": "d", "minutes": "d", "ratio": ".1f", "expected": ".1f", "p": ".1e",
         "authors": "d"}),
    "sentiment_shift": (
        N_("negative share {share} ({negative} of {total}) in {minutes} min vs the usual "
           "{usual} (p={p}), at {volume}x usual volume"),
        {"share": ".0%", "negative": "d", "total": "d", "minutes": "d", "usual": ".0%",
         "p": ".1e", "volume": ".1f"}),
    "risk_term_surge": (
        N_("{observed} mentions with risk terms (legal, safety, recall, boycott, outage, "
           "breach, fraud) in {minutes} min vs {expected} expected (p={p})"),
        {"observed": "d", "minutes": "d", "expected": ".1f", "p": ".1e"}),
    "emerging_term": (
        N_("new term {term}: {count} mentions in {minutes} min, never seen before for this "
           "watch"),
        {"term": "s", "count": "d", "minutes": "d"}),
    "stories": (
        N_("{stories} stories; the largest, \u2018{text}\u2019 \u00d7{count} by {authors} "
           "accounts in {minutes} min"),
        {"stories": "d", "text": "s", "count": "d", "authors": "d", "minutes": "d"}),
    "campaign": (N_("campaign: one story dominates"), {}),
    "window": (N_("{start}\u2013{end}"), {"start": "hm", "end": "hmz"}),
    "surge_start": (
        N_("negatives running {ratio}x normal for {span}: {observed} negative mentions in the "
           "last {hours} h against {expected} expected (p={p}), volume {volume}x"),
        {"ratio": ".1f", "observed": ".0f", "hours": "d", "expected": ".1f", "p": ".1e",
         "volume": ".1f", "lasting_min": "d"}),
    "surge_ongoing": (
        N_("still running {ratio}x normal for {span}: {observed} negative mentions in the "
           "last {hours} h against {expected} expected (p={p}), volume {volume}x"),
        {"ratio": ".1f", "observed": ".0f", "hours": "d", "expected": ".1f", "p": ".1e",
         "volume": ".1f", "lasting_min": "d"}),
    # Lists: their items are joined here (values are parallel lists), the head translated.
    "hourly": (N_("hourly negatives/expected ({zone}): {hours}"), {}),
    "top_terms": (N_("top terms: {terms}"), {}),
    "top_authors": (N_("top authors: {authors}"), {}),
}
#: Every key the renderer can say: a detector emitting another one is caught by the tests.
KEYS = frozenset(_TEMPLATES)
_SEP = "; "


def zone_of(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ValueError, KeyError) as exc:  # config checks zones: this is a bad record
        raise SummaryError(f"unknown time zone {tz!r}") from exc


def time_of(value: object) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError as exc:
            raise SummaryError("not an ISO time") from exc
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when
    raise SummaryError(f"not a time: {type(value).__name__}")


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SummaryError(f"not a number: {type(value).__name__}")
    return value


def _fixed(value: float, decimals: int, locale: str) -> str:
    # Python's own rounding first (what the English f-string did, binary exact), then Babel
    # writes those digits the locale's way: Babel alone rounds str(0.15) up where Python
    # rounds 0.15 down, and English would no longer match the stored summary.
    digits = Decimal(f"{value:.{decimals}f}")
    return format_decimal(digits, locale, format="0" + ("." + "0" * decimals if decimals
                                                          else ""))


def show_value(value: object, spec: str, locale: str, zone: ZoneInfo) -> str:
    if spec == "s":
        if not isinstance(value, str):
            raise SummaryError(f"not text: {type(value).__name__}")
        return value
    if spec in ("hm", "hmz"):
        when = time_of(value)
        return format_time(when, locale, zone) if spec == "hmz" \
            else f"{when.astimezone(zone):%H:%M}"
    number = _number(value)
    if spec == "d":
        return _fixed(number, 0, locale)
    if spec == ",d":
        return format_decimal(Decimal(f"{number:.0f}"), locale, format="#,##0")
    if spec in (".0f", ".1f"):
        return _fixed(number, int(spec[1]), locale)
    if spec == ".0%":
        # As Python's "%" does it: times 100 in binary, then rounded.
        return format_percent(Decimal(f"{number * 100:.0f}") / 100, locale, decimals=0)
    if spec == ".1e":
        # Babel has no fixed-mantissa scientific pattern that writes "e-05" as the English
        # text always has; only the decimal mark is the locale's.
        return f"{number:.1e}".replace(".", decimal_symbol(locale))
    raise SummaryError(f"unknown format {spec!r}")  # pragma: no cover - a table typo


def _list(params: Mapping[str, Value], name: str) -> list[str | int | float]:
    value = params.get(name)
    if not isinstance(value, list | tuple):
        raise SummaryError(f"{name}: a list is needed")
    return list(value)


def _items(key: str, params: Mapping[str, Value], locale: str, zone: ZoneInfo) -> str:
    """The joined items of a list clause."""
    if key == "top_terms":
        return ", ".join(show_value(t, "s", locale, zone) for t in _list(params, "terms"))
    if key == "top_authors":
        handles, counts = _list(params, "handles"), _list(params, "counts")
        if len(handles) != len(counts):
            raise SummaryError("top_authors: handles and counts differ in length")
        return ", ".join(f"@{show_value(h, 's', locale, zone)} ({show_value(n, 'd', locale, zone)})"
                         for h, n in zip(handles, counts, strict=True))
    starts, observed = _list(params, "starts"), _list(params, "observed")
    expected = _list(params, "expected")
    if not len(starts) == len(observed) == len(expected):
        raise SummaryError("hourly: starts, observed and expected differ in length")
    return ", ".join(f"{time_of(s).astimezone(zone):%H}h {show_value(o, '.0f', locale, zone)}/"
                     f"{show_value(e, '.1f', locale, zone)}"
                     for s, o, e in zip(starts, observed, expected, strict=True))


def _span(lasting_min: float, locale: str, tr: Translations) -> str:
    # The surge's own rule: hours once it has lasted two, minutes before.
    hours = lasting_min / 60
    if hours >= 2:
        return tr.gettext("{hours} h").format(hours=_fixed(hours, 0, locale))
    return tr.gettext("{minutes} min").format(minutes=_fixed(lasting_min, 0, locale))


def _clause(part: Part, locale: str, zone: ZoneInfo, tr: Translations) -> str:
    found = _TEMPLATES.get(part.key)
    if found is None:
        raise SummaryError(f"no template for summary part {part.key[:64]!r}")
    template, spec = found
    params = part.params
    values: dict[str, str] = {}
    for name, how in spec.items():
        if name not in params:
            raise SummaryError(f"{part.key}: {name} is missing")
        values[name] = show_value(params[name], how, locale, zone)
    if part.key in ("surge_start", "surge_ongoing"):
        values["span"] = _span(_number(params["lasting_min"]), locale, tr)
    elif part.key == "hourly":
        starts = _list(params, "starts")
        if not starts:
            raise SummaryError("hourly: no hours")
        # The zone as of the latest hour: the one the reader's clock shows now.
        last = time_of(starts[-1]).astimezone(zone)
        values.update(zone=str(last.tzname() or zone),
                      hours=_items(part.key, params, locale, zone))
    elif part.key == "top_terms":
        values["terms"] = _items(part.key, params, locale, zone)
    elif part.key == "top_authors":
        values["authors"] = _items(part.key, params, locale, zone)
    return tr.gettext(template).format(**values)


def render_summary(parts: Iterable[Part], *, locale: str | None = DEFAULT,
                   timezone: str = "UTC") -> str:
    """The summary ``parts`` make, in ``locale`` with times in ``timezone``; SummaryError if
    a part cannot be said (the caller shows the stored English summary then)."""
    tr, zone, loc = translator(locale), zone_of(timezone), locale or DEFAULT
    return _SEP.join(_clause(part, loc, zone, tr) for part in parts)
