"""An incident's timeline in a reader's language: each entry's ``phrase`` (a key and its
values) said with a template from the catalogue.

The escalation engine writes every entry through :func:`english`, so the stored ``text`` is
this module's English rendering (the API, logs and searches read it, as they read a
detector's ``summary``); people get :func:`say`, in their language and time zone. An entry
without a phrase (written before phrases existed) or one this version cannot say shows its
stored text.

Entries that quote a detector's summary carry its clauses too (``summary_parts``): the
quoted part is said by :func:`streams.i18n.summaries.render_summary` in the same language.
Values from people and mentions (names, reasons, story text, delivery errors) are put in as
they are; each channel escapes the result as it escapes any untrusted text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from babel import dates as _dates

from streams.i18n import DEFAULT, N_, Translations, format_datetime, label, translator
from streams.i18n.summaries import (
    Part,
    SummaryError,
    render_summary,
    show_value,
    time_of,
    zone_of,
)

__all__ = ["CLAIMS", "ENTRY_KINDS", "KEYS", "KINDS", "SOURCES", "claim_of", "english",
           "kind_of", "say", "say_claim"]

Value = str | int | float | Sequence[str | int | float]

#: How an acknowledgement, resolution or step arrived (``Ack.source``), in words.
SOURCES = {"slack": "Slack", "api": N_("the API"), "link": N_("a signed link"),
           "console": N_("the console"), "cli": N_("the command line"),
           "pagerduty": "PagerDuty", "teams": "Teams", "googlechat": "Google Chat"}
#: Notification kinds as people read them; the stored kinds stay English.
KINDS = {"trigger": N_("trigger"), "escalate": N_("escalate"), "reminder": N_("reminder"),
          "update": N_("update"), "acknowledge": N_("acknowledge"), "resolve": N_("resolve"),
          "digest": N_("digest")}
#: A claim's state in words (agents/store/claims.py ``Claim.says``): who has a mention.
CLAIMS = {"claimed": N_("{who} is answering this"), "answered": N_("{who} answered this"),
          "not_answering": N_("{who} decided not to answer: {reason}"),
          "released": N_("released by {who}")}
#: Timeline entry kinds (``TimelineEntry.kind``) as the console labels them.
ENTRY_KINDS = {"signal": N_("signal"), "notification": N_("notification"), "ack": N_("ack"),
               "resolve": N_("resolve"), "reopen": N_("reopen"), "escalate": N_("escalate"),
               "silenced": N_("silenced"), "skipped": N_("skipped"), "deferred": N_("deferred"),
               "fallback": N_("fallback"), "delivery": N_("delivery"), "failed": N_("failed"),
               "step": N_("step"), "inhibited": N_("inhibited"), "claim": N_("claim"),
               "merged": N_("merged"), "waiting": N_("waiting")}
#: Delivery outcomes (``Receipt.outcome``) in words.
_OUTCOMES = {"delivered": N_("delivered"), "failed": N_("failed"),
             "duplicate": N_("duplicate")}

# Each value's format, as in streams/i18n/summaries.py (s: text as given, d: integer), plus
#   src: an Ack.source in words    kind: a notification kind    sev: a severity
#   outcome: a delivery outcome    until: date and time in the reader's zone
#   qh: a quiet-hours end, in the quiet hours' own zone (the clock the rule is written in)
#   claim: a claim (state, who, reason) in words
#   summary: a detector's summary, from the entry's summary_parts when it has them
# Templates that are only punctuation around values are not marked: nothing to translate.
_TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "signal": ("{summary}", {"summary": "summary"}),
    "signal_joined": ("{detector}: {summary}", {"detector": "s", "summary": "summary"}),
    "reopen": (N_("recurred: {summary}"), {"summary": "summary"}),
    "notification": (N_("{kind} (level {level}) \u2192 {names}"),
                     {"kind": "kind", "level": "d", "names": "s"}),
    "fallback_instead": (
        N_("{policy} level {level}: {member} has no {channel} contact; sent by {instead} "
           "instead"),
        {"policy": "s", "level": "d", "member": "s", "channel": "s", "instead": "s"}),
    "fallback_only": (
        N_("{policy} level {level}: {member} has no {channel} contact; reached by {used} only"),
        {"policy": "s", "level": "d", "member": "s", "channel": "s", "used": "s"}),
    "fallback_to": (
        N_("{policy} level {level}: {member} (on call in {schedule}) has no contact: nobody "
           "reachable; fallback \u2192 {names}"),
        {"policy": "s", "level": "d", "member": "s", "schedule": "s", "names": "s"}),
    "fallback_none": (
        N_("{policy} level {level}: {member} (on call in {schedule}) has no contact: nobody "
           "reachable, and escalation.fallback reaches nobody"),
        {"policy": "s", "level": "d", "member": "s", "schedule": "s"}),
    "deferred": (N_("{policy} level {level}: quiet hours, deferred to {until}"),
                 {"policy": "s", "level": "d", "until": "qh"}),
    "deferred_reminder": (
        N_("{policy} reminder (level {level}): quiet hours, deferred to {until}"),
        {"policy": "s", "level": "d", "until": "qh"}),
    "skipped": (N_("{policy} level {level}: nobody to notify"), {"policy": "s", "level": "d"}),
    "escalate": (N_("{policy}: not acknowledged within {timeout}s \u2192 level {level}"),
                 {"policy": "s", "timeout": "d", "level": "d"}),
    "merged_into": (N_("merged into {target}: same story \u2018{text}\u2019 \u00d7{count}"),
                    {"target": "s", "text": "s", "count": "d"}),
    "released": (N_("released: {target} is resolved; escalating on its own"),
                 {"target": "s"}),
    "joined_by": (N_("joined by watch {watch} ({count} mentions of the same story; {joiner})"),
                  {"watch": "s", "count": "d", "joiner": "s"}),
    "inhibited_by": (
        N_("inhibited by {source} ({severity} {detector} on {watch}; inhibit rule {rule})"),
        {"source": "s", "severity": "sev", "detector": "s", "watch": "s", "rule": "d"}),
    "inhibits": (N_("inhibits {target}"), {"target": "s"}),
    "not_inhibited": (N_("no longer inhibited by {source}"), {"source": "s"}),
    "inhibition_ended": (N_("inhibition by {source} ended"), {"source": "s"}),
    "silenced_by": (N_("silenced by {silence} until {until}"),
                    {"silence": "s", "until": "until"}),
    "silenced_by_all": (N_("silenced by {silence} (a silence of every incident, all: true) "
                           "until {until}"), {"silence": "s", "until": "until"}),
    "silence_expired": (N_("silence {silence} expired"), {"silence": "s"}),
    "silence_ended": (N_("silence ended"), {}),
    "waiting": (
        N_("held {seconds} s before paging: a story is forming (\u2018{text}\u2019 "
           "\u00d7{count}); the same story on another watch joins this incident instead of "
           "paging twice"),
        {"seconds": "d", "text": "s", "count": "d"}),
    "ack": (N_("acknowledged via {source}"), {"source": "src"}),
    "resolve": (N_("resolved via {source}"), {"source": "src"}),
    # No signal for escalation.resolve_after_s (the engine's own Ack, source "auto").
    "resolve_auto": (N_("resolved via auto"), {}),
    "step": (N_("step done via {source}: {step}"), {"source": "src", "step": "s"}),
    # A claim on one of the incident's mentions (agents/store/claims.py): state, who, reason.
    "claim": ("{claim} ({mention})", {"claim": "claim", "mention": "s"}),
    "claim_note": ("{note} ({mention})", {"note": "s", "mention": "s"}),
    "delivery": ("{channel} {target}: {outcome} {detail}",
                 {"channel": "s", "target": "s", "outcome": "outcome", "detail": "s"}),
}
#: Every key an entry may carry: the engine writing another one is caught by the tests.
KEYS = frozenset(_TEMPLATES)
class Entry(Protocol):
    """What :func:`say` reads of a ``streams.core.records.TimelineEntry``."""

    @property
    def text(self) -> str: ...

    @property
    def phrase(self) -> Part | None: ...

    @property
    def summary_parts(self) -> Sequence[Part]: ...


def _quiet_until(params: Mapping[str, Value], locale: str, tr: Translations) -> str:
    """'07:00 Europe/Madrid', with the local day when it is not the day of ``at`` there."""
    zone_name = params.get("zone")
    if not isinstance(zone_name, str):
        raise SummaryError("deferred: zone is missing")
    zone = zone_of(zone_name)
    local = time_of(params.get("until")).astimezone(zone)
    today = time_of(params.get("at")).astimezone(zone).date()
    said = f"{local:%H:%M} {zone_name}"
    if local.date() == today:
        return said
    try:
        day = _dates.format_date(local, format="EEE yyyy-MM-dd", locale=locale.replace("-", "_"))
    except (ValueError, TypeError) as exc:  # UnknownLocaleError is a ValueError
        raise SummaryError("unknown locale") from exc
    return tr.gettext("{time} on {day}").format(time=said, day=day)


def say_claim(params: Mapping[str, Value], tr: Translations) -> str:
    """A claim in ``tr``'s language: ``params`` has its ``state``, ``who`` and ``reason``."""
    state, who, reason = params.get("state"), params.get("who"), params.get("reason", "")
    if not (isinstance(state, str) and state in CLAIMS and isinstance(who, str)
            and isinstance(reason, str)):
        raise SummaryError("a claim needs a known state, who and reason as text")
    return tr.gettext(CLAIMS[state]).format(who=who, reason=reason)


def kind_of(kind: str, tr: Translations) -> str:
    """A timeline entry's kind in ``tr``'s language; an unknown one as it is."""
    return tr.gettext(ENTRY_KINDS[kind]) if kind in ENTRY_KINDS else kind


def claim_of(text: str | None, phrase: Part | None, tr: Translations) -> str | None:
    """A sample mention's claim line in ``tr``'s language: its ``phrase`` said, or its stored
    ``text`` (English) when it has none or one this version cannot say."""
    if phrase is None:
        return text
    try:
        return say_claim(phrase.params, tr)
    except SummaryError:
        return text


def _until(value: object, locale: str, timezone: str) -> str:
    when = time_of(value)
    if locale == DEFAULT and timezone == "UTC":  # the stored English text's own format
        return f"{when:%Y-%m-%d %H:%M} UTC"
    return format_datetime(when, locale, zone_of(timezone), format="short")


def _value(name: str, how: str, params: Mapping[str, Value], parts: Sequence[Part],
           locale: str, timezone: str, tr: Translations | None) -> str:
    """One value as said; ``tr`` None: the stored English text, whose sources and kinds stay
    the record's own words ("acknowledged via slack", which tools match on)."""
    if how == "summary":
        if parts:
            return render_summary(parts, locale=locale, timezone=timezone)
        how = "s"  # an entry of a signal without clauses: its English summary as it is
    said = tr or translator(DEFAULT)
    if how == "qh":
        return _quiet_until(params, locale, said)
    if how == "claim":
        return say_claim(params, said)
    value = params[name]
    words = {"src": SOURCES, "kind": KINDS, "outcome": _OUTCOMES, "sev": {}}.get(how)
    if words is not None:
        if not isinstance(value, str):
            raise SummaryError(f"not text: {type(value).__name__}")
        if tr is None:
            return value
        if how == "sev":
            return label(tr, value)
        return tr.gettext(words[value]) if value in words else value
    if how == "until":
        return _until(value, locale, timezone)
    return show_value(value, how, locale, zone_of(timezone))


def _render(key: str, params: Mapping[str, Value], parts: Sequence[Part], locale: str,
            timezone: str, *, stored: bool = False) -> str:
    found = _TEMPLATES.get(key)
    if found is None:
        raise SummaryError(f"no template for timeline key {key[:64]!r}")
    template, spec = found
    tr = translator(locale)
    values = {name: _value(name, how, params, parts, locale, timezone, None if stored else tr)
              for name, how in spec.items()}
    return tr.gettext(template).format(**values)


def english(key: str, params: Mapping[str, Value], parts: Iterable[Part] = ()) -> str:
    """The stored text of an entry: ``key`` said in English, times in UTC."""
    return _render(key, params, list(parts), DEFAULT, "UTC", stored=True)


def say(entry: Entry, *, locale: str | None = DEFAULT, timezone: str = "UTC") -> str:
    """``entry`` in ``locale`` with times in ``timezone``; its stored text when it has no
    phrase or one this version cannot say."""
    if entry.phrase is None:
        return entry.text
    try:
        return _render(entry.phrase.key, entry.phrase.params, list(entry.summary_parts),
                       locale or DEFAULT, timezone)
    except (SummaryError, KeyError, ValueError):
        return entry.text
