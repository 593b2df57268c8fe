"""levels.reach, Levels.targets and the deferral's timeline phrase: where a target leads when
contacts are missing, and how a deferral reads on the timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from agents.escalate.levels import Levels, Reach, reach
from streams.config.escalation import Level, Member, Policy, Schedule, TargetSpec
from streams.i18n.timeline import english

AT = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def _schedule(sid: str, member: Member) -> Schedule:
    return Schedule(id=sid, members=[member], start=date(2026, 1, 1))


SCHEDULES = {s.id: s for s in [
    _schedule("all", Member(name="alice", slack="U1", email="alice@example.com",
                            push="alice-phone")),
    _schedule("mail", Member(name="bob", email="bob@example.com")),
    _schedule("chat", Member(name="carol", slack="U3")),
    _schedule("none", Member(name="dan")),
]}
FALLBACK = [TargetSpec(slack="#ops"), TargetSpec(schedule="mail", via=["email"]),
            TargetSpec(slack="#ops")]


def _said(found: Reach) -> list[str]:
    """The notes as the timeline stores them, for policy p level 1."""
    return [english(key, {"policy": "p", "level": 1, **values}) for key, values in found.notes]


@pytest.mark.parametrize(("spec", "fallback", "pairs", "notes"), [
    ({"slack": "#crisis"}, FALLBACK, [("slack", "#crisis")], []),
    ({"schedule": "all", "via": ["push", "slack"]}, FALLBACK,
     [("push", "alice-phone"), ("slack", "U1")], []),
    # bob has no push topic: his first other contact instead.
    ({"schedule": "mail", "via": ["push"]}, FALLBACK,
     [("email", "bob@example.com")], ["bob has no push contact; sent by email instead"]),
    # carol is reached on Slack, as asked; she has nothing for push or email to stand in.
    ({"schedule": "chat", "via": ["slack", "push", "email"]}, FALLBACK,
     [("slack", "U3")], ["carol has no push contact; reached by slack only",
                         "carol has no email contact; reached by slack only"]),
    # dan has no contact at all: the fallback, each target once, schedules resolved.
    ({"schedule": "none", "via": ["slack"]}, FALLBACK,
     [("slack", "#ops"), ("email", "bob@example.com")],
     ["dan (on call in none) has no contact: nobody reachable; "
      "fallback → slack #ops, email bob@example.com"]),
    ({"schedule": "none", "via": ["slack"]}, [],
     [], ["dan (on call in none) has no contact: nobody reachable, and "
          "escalation.fallback reaches nobody"]),
])
def test_reach(spec: dict[str, object], fallback: list[TargetSpec],
               pairs: list[tuple[str, str]], notes: list[str]) -> None:
    found = reach(TargetSpec.model_validate(spec), SCHEDULES, AT, fallback)
    assert found.pairs == pairs
    assert _said(found) == [f"p level 1: {note}" for note in notes]


def test_a_fallback_that_leads_nowhere_says_so() -> None:
    found = reach(TargetSpec(schedule="none"), SCHEDULES, AT,
                  [TargetSpec(schedule="none", via=["push"])])
    assert found.pairs == [] and "reaches nobody" in _said(found)[0]


@pytest.mark.parametrize(("until", "now", "text"), [
    ("2026-03-29T05:00", "2026-03-28T22:00",
     "deferred to 07:00 Europe/Madrid on Sun 2026-03-29"),
    ("2026-03-29T05:00", "2026-03-28T23:30", "deferred to 07:00 Europe/Madrid"),  # 00:30 CET
    ("2026-03-29T05:00", "2026-03-29T00:30", "deferred to 07:00 Europe/Madrid"),  # 01:30 CET
    ("2026-10-25T06:00", "2026-10-25T01:30", "deferred to 07:00 Europe/Madrid"),
])
def test_deferred_text_names_the_local_time_and_the_day_when_it_is_not_today(
        until: str, now: str, text: str) -> None:
    utc = [datetime.fromisoformat(v).replace(tzinfo=UTC).isoformat() for v in (until, now)]
    said = english("deferred", {"policy": "p", "level": 1, "until": utc[0],
                                "zone": "Europe/Madrid", "at": utc[1]})
    assert said == f"p level 1: quiet hours, {text}"


def test_a_level_notifies_a_target_once_when_the_fallback_repeats_it() -> None:
    level = Level(targets=[TargetSpec(schedule="none"), TargetSpec(slack="#ops")])
    levels = Levels(policies={"p": Policy(id="p", levels=[level])}, schedules=SCHEDULES,
                    fallback=[TargetSpec(slack="#ops")], repeat_interval_s=3600)
    inc: dict[str, Any] = {"timeline": []}
    where = {"policy": "p", "level": 1}
    assert levels.targets({"incident": inc}, level, AT, where) == [("slack", "#ops")]
    assert [e["text"] for e in inc["timeline"]] == [
        "p level 1: dan (on call in none) has no contact: nobody reachable; "
        "fallback → slack #ops"]
