"""Silence: matchers (=, *, !=, ~regex, =~regex, !~regex), time window, incident binding,
expiry, round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agents.escalate.routing import labels_of
from streams.config.escalation import SilenceSpec
from streams.core.silences import Silence, first_match, from_spec

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LABELS = labels_of("acme", "warning", "volume_spike", "es")


def silence(matchers: dict[str, str], *, id: str = "s1", start: timedelta = timedelta(0),
            end: timedelta = timedelta(hours=1), incident_id: str | None = None) -> Silence:
    return Silence(id=id, matchers=matchers, starts_at=T0 + start, ends_at=T0 + end,
                   created_by="ana", comment="maintenance", incident_id=incident_id)


@pytest.mark.parametrize(("matchers", "labels", "expected"), [
    ({"watch": "acme"}, LABELS, True),
    ({"watch": "acme", "severity": "warning"}, LABELS, True),
    ({"watch": "acme", "severity": "critical"}, LABELS, False),   # every matcher must hold
    ({"watch": "Acme"}, LABELS, False),                            # equality is exact
    ({"watch": "*"}, LABELS, True),
    ({"language": "*"}, labels_of("acme", "info", "x", None), True),  # even when absent
    ({"severity": "!=critical"}, LABELS, True),
    ({"severity": "!=warning"}, LABELS, False),
    ({"language": "!=en"}, labels_of("acme", "info", "x", None), True),  # absent reads as ""
    ({"watch": "~acme|rival-.*"}, LABELS, True),
    ({"watch": "~rival-.*"}, labels_of("rival-b", "info", "x", None), True),
    ({"watch": "~acm"}, LABELS, False),                            # a full match, not search
    ({"watch": "~.*cm"}, LABELS, False),
    ({"detector": "~(volume|sentiment)_.*", "severity": "!=critical"}, LABELS, True),
    ({"watch": "!~rival-.*"}, LABELS, True),
    ({"watch": "!~ac.*"}, LABELS, False),
    ({"language": "~"}, labels_of("acme", "info", "x", None), True),  # empty regex: absent
    ({"watch": "=*"}, LABELS, False),                              # "=" escapes: literal "*"
    ({"watch": "=*"}, labels_of("*", "info", "x", None), True),
    # "=~" is Alertmanager's spelling of "~" (a regex), not a literal "~acme"...
    ({"watch": "=~ac.*"}, LABELS, True),
    ({"watch": "=~ac"}, LABELS, False),                            # anchored like "~"
    ({"watch": "=~acme"}, labels_of("~acme", "info", "x", None), False),
    # ...and a literal leading "~" is written as a regex.
    ({"watch": "~\\~acme"}, labels_of("~acme", "info", "x", None), True),
    ({"watch": "=!=x"}, labels_of("!=x", "info", "x", None), True),  # "=" still escapes "!"
])
def test_matchers(matchers: dict[str, str], labels: dict[str, str], expected: bool) -> None:
    assert silence(matchers).matches(labels, T0) is expected


@pytest.mark.parametrize(("offset", "expected"), [
    (timedelta(seconds=-1), False),                  # not started yet
    (timedelta(0), True),                            # starts_at inclusive
    (timedelta(minutes=59, seconds=59), True),
    (timedelta(hours=1), False),                     # ends_at exclusive: expired
    (timedelta(days=3), False),
])
def test_active_window(offset: timedelta, expected: bool) -> None:
    s = silence({"watch": "acme"})
    assert s.active(T0 + offset) is expected
    assert s.matches(LABELS, T0 + offset) is expected


def test_a_silence_starting_in_the_future_does_not_match_yet() -> None:
    s = silence({"watch": "acme"}, start=timedelta(hours=2), end=timedelta(hours=4))
    assert not s.matches(LABELS, T0)
    assert s.matches(LABELS, T0 + timedelta(hours=2))


def test_a_silence_ending_before_it_starts_is_allowed_and_never_active() -> None:
    s = silence({"watch": "acme"}, start=timedelta(hours=1), end=timedelta(0))
    assert not any(s.active(T0 + timedelta(minutes=m)) for m in range(-120, 120))


def test_times_in_other_zones_are_compared_as_instants() -> None:
    madrid_noon = datetime(2026, 3, 10, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    s = silence({"watch": "acme"})
    assert s.active(madrid_noon)
    assert s.starts_at.tzinfo is UTC


@pytest.mark.parametrize(("matchers", "message"), [
    ({"watch": "~acme("}, "invalid regex"),
    ({"watch": "!~[z-a]"}, "invalid regex"),
    ({"watch": "~a{99999999999}"}, "invalid regex"),
    ({"watch": "~" + "a" * 300}, "longer than"),
    ({"team": "comms"}, "unknown label"),
    ({}, "no matchers"),
])
def test_bad_matchers_are_rejected_at_construction(matchers: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        silence(matchers)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Silence(id="s", matchers={"watch": "acme"}, starts_at=datetime(2026, 3, 10),
                ends_at=T0, created_by="ana")
    with pytest.raises(ValueError, match="timezone-aware"):
        silence({"watch": "acme"}).active(datetime(2026, 3, 10, 12, 30))


def test_the_matchers_dict_is_copied() -> None:
    matchers = {"watch": "acme"}
    s = silence(matchers)
    matchers["watch"] = "rival"
    assert s.matchers == {"watch": "acme"}
    assert s.matches(LABELS, T0)


def test_first_match_goes_in_order_and_skips_inactive_ones() -> None:
    expired = silence({"watch": "acme"}, id="expired", start=-timedelta(hours=2),
                      end=-timedelta(hours=1))
    other = silence({"watch": "rival"}, id="other")
    broad = silence({"severity": "!=critical"}, id="broad")
    narrow = silence({"watch": "acme"}, id="narrow")
    found = first_match([expired, other, broad, narrow], LABELS, T0)
    assert found is not None and found.id == "broad"
    assert first_match([expired, other], LABELS, T0) is None
    assert first_match([], LABELS, T0) is None


def test_a_silence_bound_to_a_resolved_incident_no_longer_applies() -> None:
    bound = silence({"watch": "acme"}, id="bound", incident_id="inc-1", end=timedelta(days=1))
    fallback = silence({"watch": "*"}, id="everything")
    found = first_match([bound, fallback], LABELS, T0, resolved={"inc-0"})
    assert found is bound
    found = first_match([bound, fallback], LABELS, T0, resolved={"inc-1"})
    assert found is fallback
    assert first_match([bound], LABELS, T0, resolved=["inc-1"]) is None


def test_from_spec_starts_now_unless_told() -> None:
    spec = SilenceSpec(matchers={"watch": "acme"}, ends_at=T0 + timedelta(hours=1),
                       comment="launch day")
    s = from_spec(spec, id="cfg-0", now=T0)
    assert (s.id, s.starts_at, s.ends_at, s.created_by, s.comment, s.incident_id) == (
        "cfg-0", T0, T0 + timedelta(hours=1), "config", "launch day", None)
    later = SilenceSpec(matchers={"watch": "acme"}, starts_at=T0 + timedelta(minutes=5),
                        ends_at=T0 + timedelta(hours=1), created_by="ops")
    s = Silence.from_spec(later, id="cfg-1", now=T0)
    assert (s.starts_at, s.created_by) == (T0 + timedelta(minutes=5), "ops")
    assert not s.matches(LABELS, T0)


def test_from_spec_takes_naive_config_times_as_utc() -> None:
    spec = SilenceSpec(matchers={"watch": "acme"}, ends_at=datetime(2026, 3, 10, 13, 0))
    assert from_spec(spec, id="cfg", now=T0).ends_at == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)


def test_from_spec_rejects_an_invalid_regex() -> None:
    spec = SilenceSpec(matchers={"watch": "~("}, ends_at=T0)
    with pytest.raises(ValueError, match="invalid regex"):
        from_spec(spec, id="cfg", now=T0)


@pytest.mark.parametrize("original", [
    silence({"watch": "~acme|rival-.*", "severity": "!=critical", "language": "*"}),
    silence({"detector": "volume_spike"}, incident_id="inc-42", end=timedelta(days=2)),
])
def test_json_round_trip(original: Silence) -> None:
    data = json.loads(json.dumps(original.to_dict()))
    assert data["starts_at"] == "2026-03-10T12:00:00+00:00"
    restored = Silence.from_dict(data)
    assert restored == original
    assert restored.matches(LABELS, T0) == original.matches(LABELS, T0)


@pytest.mark.parametrize(("change", "message"), [
    ({"ends_at": None}, "malformed"),
    ({"starts_at": "yesterday"}, "Invalid isoformat"),
    ({"starts_at": "2026-03-10T12:00:00"}, "timezone-aware"),
    ({"matchers": {"watch": 3}}, "map label names to strings"),
    ({"matchers": {"watch": "~("}}, "invalid regex"),
])
def test_from_dict_rejects_malformed_records(change: dict[str, object], message: str) -> None:
    data = {**silence({"watch": "acme"}).to_dict(), **change}
    with pytest.raises(ValueError, match=message):
        Silence.from_dict(data)


def test_from_dict_names_a_missing_key() -> None:
    data = silence({"watch": "acme"}).to_dict()
    del data["created_by"]
    with pytest.raises(ValueError, match="lacks 'created_by'"):
        Silence.from_dict(data)


def test_matches_every_incident_sees_through_wildcards_and_negations() -> None:
    from streams.core.silences import matches_every_incident

    watches = ["acme", "globex"]
    for everything in ({"watch": "*"}, {"watch": "~.*"}, {"severity": "!=nothing"},
                       {"watch": "~acme|globex|.*"}, {"language": "!~xx"},
                       {"watch": "*", "detector": "*"}):
        assert matches_every_incident(everything, watches=watches), everything
    for narrow in ({"watch": "acme"}, {"watch": "~acme|globex"}, {"watch": "!=acme"},
                   {"severity": "critical"}, {"watch": "*", "detector": "negative_spike"},
                   {"language": "es"}, {"severity": "~info|warning"}):
        assert not matches_every_incident(narrow, watches=watches), narrow


def test_a_config_silence_of_everything_must_say_all() -> None:
    from streams.config.settings import ConfigError, load_settings

    spec = {"matchers": {"watch": "*"}, "ends_at": "2030-01-01T00:00:00Z"}
    with pytest.raises(ConfigError) as err:
        load_settings(None, escalation={"silences": [spec]})
    assert "escalation.silences.0.matchers" in str(err.value) and "all: true" in str(err.value)
    settings = load_settings(None, escalation={"silences": [{**spec, "all": True}]})
    assert settings.escalation.silences[0].all
    silence = Silence.from_spec(settings.escalation.silences[0], id="c", now=datetime.now(UTC))
    assert silence.all and Silence.from_dict(silence.to_dict()).all


# -- expiry (Alertmanager's: ends_at becomes now, the silence stays listed as expired) ------

@pytest.mark.parametrize(("offset", "state"), [
    (timedelta(seconds=-1), "pending"),
    (timedelta(0), "active"),
    (timedelta(minutes=59, seconds=59), "active"),
    (timedelta(hours=1), "expired"),
])
def test_state(offset: timedelta, state: str) -> None:
    assert silence({"watch": "acme"}).state(T0 + offset) == state


def test_an_empty_window_reads_as_expired() -> None:
    assert silence({"watch": "acme"}, start=timedelta(hours=2)).state(T0) == "expired"


def test_expire_ends_it_now_and_says_who() -> None:
    s = silence({"watch": "acme"})
    at = T0 + timedelta(minutes=10)
    done = s.expire(by="luis", at=at)
    assert (done.ends_at, done.starts_at, done.expired_by, done.expired_at) == (at, T0, "luis",
                                                                                 at)
    assert (done.id, done.matchers, done.created_by, done.comment) == (
        s.id, s.matchers, s.created_by, s.comment)
    assert s.matches(LABELS, at) and not done.matches(LABELS, at)
    assert done.state(at) == "expired" and s.state(at) == "active"


def test_expiring_a_pending_silence_keeps_it_from_ever_starting() -> None:
    pending = silence({"watch": "acme"}, start=timedelta(hours=1), end=timedelta(hours=2))
    done = pending.expire(by="luis", at=T0)
    assert done.starts_at == done.ends_at == T0
    assert not any(done.matches(LABELS, T0 + timedelta(minutes=m)) for m in (0, 60, 90))


def test_expire_is_idempotent() -> None:
    at = T0 + timedelta(minutes=10)
    once = silence({"watch": "acme"}).expire(by="luis", at=at)
    # The first expiry stands: a later one (or one after the natural end) changes nothing.
    assert once.expire(by="ana", at=at + timedelta(minutes=5)) is once
    ended = silence({"watch": "acme"})
    assert ended.expire(by="ana", at=T0 + timedelta(hours=3)) is ended


def test_an_expired_silence_round_trips_and_old_records_still_read() -> None:
    done = silence({"watch": "acme"}).expire(by="luis", at=T0 + timedelta(minutes=10))
    data = json.loads(json.dumps(done.to_dict()))
    assert data["expired_by"] == "luis" and data["expired_at"] == "2026-03-10T12:10:00+00:00"
    assert Silence.from_dict(data) == done
    old = silence({"watch": "acme"}).to_dict()
    del old["expired_by"], old["expired_at"]
    assert Silence.from_dict(old).expired_by is None


def test_config_silences_are_told_apart_by_id() -> None:
    from streams.config.settings import Settings
    from streams.core.silences import is_configured
    from streams.runtime.pipeline import Views

    settings = Settings(escalation={"silences": [
        {"matchers": {"watch": "acme"}, "ends_at": "2030-01-01T00:00:00Z"}]})
    made = Views.create(settings, bootstrap="127.0.0.1:9").silences.silences()
    assert [is_configured(s.id) for s in made] == [True]
    assert not is_configured("s-0123456789abcdef")
