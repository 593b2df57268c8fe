"""One story, one incident, and inhibition, through the whole pipeline.

Real parts: the embedded broker, `escucha worker` as a process, the bundled model, and the
local server speaking Slack's Web API. A copy-paste storm (300 accounts, one text with small
variations) inside ordinary traffic matches two watches, ``acme`` and ``chargers``: one
Slack alert names both, both timelines (read back from the incidents topic) say which
joined which, and the joiner turning critical later still pages nobody. Alongside, a
critical post on ``globex`` and a warning on ``hooli`` under an inhibit rule: the warning
pages nobody and both timelines say so. The escalation settings are the defaults
(``group_wait_s`` 0): what makes the storm page once is the story hold (``story_wait_s``,
README "One story, one incident"). An incident whose evidence shows a story forming waits
15 s before paging: the storm's campaign flag comes a few copies after its first signal, and
the other watch's incident needs a record's trip to reach the incidents view.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.core import topics
from streams.core.records import Author, Engagement, Mention
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.slack import FakeSlack
from tests.support.faults import influencer_mention, publish, until
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, write_config
from tests.unit.agents.detect.story_corpus import storm_texts

_ORDINARY = ("Picked up the new Acme charger today, nice colours",
             "Acme opens a store downtown on Saturday",
             "Comparing Acme and other brands of phone charger this week",
             "My charger arrived from Acme, quick delivery, thanks",
             "Acme event tonight, looking forward to the keynote",
             "Which charger do you use for a tablet? Mine is an Acme")


_NAMES = {"acme": "Acme", "chargers": "Chargers", "globex": "Globex", "hooli": "Hooli"}
_TERMS = {"chargers": "charger"}


def _config(tmp: Path, slack: FakeSlack) -> Path:
    return write_config(
        tmp / "escucha.yaml",
        kafka={"commit_interval_s": 1.0},
        # Ten minutes of history before the storm: enough for a baseline of these tests.
        detect={"warmup_min": 5, "lateness_min": 2, "spike_recent_min": 0},
        notifiers={"slack": {"token": "xoxb-test-token", "channel": "#crisis",
                             "base_url": slack.url}},
        escalation={
            # group_wait_s stays 0, the default: the storm pages once by the story hold alone.
            "group_interval_s": 1,
            "policies": [{"id": "crisis", "levels": [{"targets": [{"slack": "#crisis"}]}]}],
            "route": {"policy": "crisis"},
            "inhibit_rules": [{"source_match": {"severity": "critical", "watch": "globex"},
                               "target_match": {"severity": "warning", "watch": "hooli"},
                               "equal": ["language"]}],
        },
        watches=[{"id": w, "name": name, "terms": [_TERMS.get(w, w)]}
                 for w, name in _NAMES.items()],
        datadir=str(tmp / "var"),
    )


def _mention(i: int, text: str, handle: str, at: datetime) -> Mention:
    return Mention(source="sim", id=f"m{i}", url=f"https://social.example/{handle}/{i}",
                   author=Author(handle=handle, followers=300), text=text, language="en",
                   created_at=at, engagement=Engagement(likes=i % 7))


def _storm_in_traffic(start: datetime) -> list[Mention]:
    """Fifteen minutes of ordinary posts on both watches (about 8 a minute) and, from minute
    ten, 300 varied copies of one angry text by 300 accounts, one every second."""
    rng, out = random.Random(24), list[Mention]()
    at = start
    while at < start + timedelta(minutes=15):
        out.append(_mention(len(out), rng.choice(_ORDINARY), f"user{rng.randrange(900)}", at))
        at += timedelta(seconds=rng.uniform(5, 10))
    storm_at = start + timedelta(minutes=10)
    for n, text in enumerate(storm_texts(24, 300)):
        out.append(_mention(len(out), text, f"storm{n}", storm_at + timedelta(seconds=n)))
    return sorted(out, key=lambda m: m.created_at)


async def _incidents(bootstrap: str) -> dict[str, dict[str, Any]]:
    """The latest snapshot of each incident on the incidents topic. Polled, so read with a
    short idle time (whatever is on the topic when the read starts is read in full)."""
    snaps = await read_all(bootstrap, topics.INCIDENTS.name, idle_s=0.5, skip_invalid=True)
    return {str(s["id"]): s for s in snaps if "id" in s}


def _timeline(inc: dict[str, Any]) -> list[str]:
    return [f"{t['kind']}: {t['text']}" for t in inc.get("timeline", [])]


def _top_level(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c.params for c in slack.posted if not c.params.get("thread_ts")]


def _incident_of(params: dict[str, Any]) -> str:
    return str(params["metadata"]["event_payload"]["incident_id"])


async def test_one_story_on_two_watches_is_one_incident_and_a_critical_inhibits_a_warning(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    port = free_port()
    async with FakeSlack(known_channels={"#crisis"}) as slack:
        worker = EscuchaProcess(["worker", "--config", str(_config(tmp_path, slack))],
                                env={"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap,
                                     "ESCUCHA_WEB_PORT": str(port)},
                                log=tmp_path / "worker.log")
        log = lambda: worker.output()[-3000:]  # noqa: E731
        try:
            start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=16)
            # The critical goes in first and the warning once the critical's incident is on
            # the incidents topic: with no group_wait, an inhibition holds back what comes
            # after its source is known. The storm's backlog follows.
            at = start + timedelta(minutes=15)
            critical = influencer_mention(term="Globex", id="crit-1", handle="bigcritic", at=at)
            warning = influencer_mention(term="Hooli", id="warn-1", handle="midcritic", at=at)
            warning = warning.model_copy(update={"author": warning.author.model_copy(
                update={"followers": 200_000, "verified": False})})
            await publish(broker.bootstrap, [critical])

            async def globex_open() -> bool:
                return any(i["watch_id"] == "globex"
                           for i in (await _incidents(broker.bootstrap)).values())

            await until(globex_open, timeout=90, what="the critical's incident", context=log)
            await publish(broker.bootstrap, [warning, *_storm_in_traffic(start)])

            async def merged() -> dict[str, dict[str, Any]] | None:
                incs = await _incidents(broker.bootstrap)
                joiner = next((i for i in incs.values() if i.get("merged_into")), None)
                if joiner is None:
                    return None
                target = incs.get(joiner["merged_into"], {})
                return ({"joiner": joiner, "target": target}
                        if joiner["id"] in target.get("joined", []) else None)

            found: dict[str, dict[str, Any]] = await until(
                merged, timeout=60, what="a storm incident joining another", context=log)
            joiner, target = found["joiner"], found["target"]
            assert {joiner["watch_id"], target["watch_id"]} == {"acme", "chargers"}
            assert target["watches"] == [joiner["watch_id"]]
            assert any(f"merged into {target['id']}: same story" in t
                       for t in _timeline(joiner)), _timeline(joiner)
            assert any(f"joined by watch {joiner['watch_id']}" in t and joiner["id"] in t
                       for t in _timeline(target)), _timeline(target)

            # One top-level alert for the storm; its message (edited in place) names both.
            def both_named() -> list[dict[str, Any]] | None:
                msgs = [m for m in slack.messages()
                        if m["metadata"]["event_payload"]["incident_id"] == target["id"]]
                names = f"{_NAMES[target['watch_id']]}, {_NAMES[joiner['watch_id']]}"
                return msgs if msgs and names in str(msgs[0]["blocks"]) else None

            await until(both_named, timeout=30, what="the alert naming both watches",
                        context=log)
            # The joiner turns critical (a 2M-follower post on its watch alone, queued behind
            # the storm's backlog): still merged, still nobody paged for it.
            term = {"acme": "Acme", "chargers": "charger"}[joiner["watch_id"]]
            await publish(broker.bootstrap, [influencer_mention(
                term=term, id="worse-1", handle="loudcritic", at=start + timedelta(minutes=15))])

            async def worsened() -> dict[str, Any] | None:
                now = (await _incidents(broker.bootstrap)).get(joiner["id"], {})
                return now if any(t.startswith("signal: influencer: @loudcritic")
                                  for t in _timeline(now)) else None

            late: dict[str, Any] = await until(
                worsened, timeout=60, what="the joiner's critical signal", context=log)
            assert late["severity"] == "critical" and late["merged_into"] == target["id"]
            storm_posts = [_incident_of(p) for p in _top_level(slack)
                           if _incident_of(p).split(".")[0] in ("acme", "chargers")]
            assert storm_posts == [target["id"]], (storm_posts, _timeline(joiner))

            # Inhibition: the critical on globex pages; hooli's warning under it does not.
            async def inhibited() -> dict[str, dict[str, Any]] | None:
                incs = await _incidents(broker.bootstrap)
                hooli = next((i for i in incs.values() if i["watch_id"] == "hooli"), None)
                globex = next((i for i in incs.values() if i["watch_id"] == "globex"), None)
                if hooli is None or globex is None:
                    return None
                held = any(t.startswith(f"inhibited: inhibited by {globex['id']}")
                           for t in _timeline(hooli))
                told = f"inhibited: inhibits {hooli['id']}" in _timeline(globex)
                return {"hooli": hooli, "globex": globex} if held and told else None

            pair: dict[str, dict[str, Any]] = await until(
                inhibited, timeout=30, what="both inhibition timelines", context=log)
            assert pair["hooli"]["severity"] == "warning"
            assert pair["globex"]["severity"] == "critical"
            await until(lambda: any(_incident_of(p) == pair["globex"]["id"]
                                    for p in _top_level(slack)),
                        timeout=30, what="the critical's alert", context=log)
            # The warning was held when it opened, before any notification.
            assert not [p for p in _top_level(slack) if _incident_of(p).startswith("hooli.")]
            assert sorted(_incident_of(p).split(".")[0] for p in _top_level(slack)) == sorted(
                [target["watch_id"], "globex"])
        finally:
            worker.close()
