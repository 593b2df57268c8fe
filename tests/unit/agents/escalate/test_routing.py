"""route(): Alertmanager's routing tree over incident labels, as a table."""

from __future__ import annotations

import pytest

from agents.escalate.routing import labels_of, route
from streams.config.escalation import Route

# Written as it would be in escucha.yaml (note the "continue" alias), so the table also checks
# that the config's spelling reaches the router.
TREE = Route.model_validate({
    "policy": "default",
    "routes": [
        # Every critical incident also goes to the execs, then routing carries on.
        {"match": {"severity": "critical"}, "policy": "exec", "continue": True},
        {"match": {"watch": "acme"}, "policy": "brand", "routes": [
            {"match": {"detector": ["high_reach_negative", "risk_terms"]},
             "policy": "brand-urgent"},
            # No policy of its own: inherits "brand".
            {"match": {"language": "es"}, "routes": [
                {"match": {"severity": "info"}, "policy": "digest"},
            ]},
        ]},
        {"match": {"watch": ["rival-a", "rival-b"]}, "policy": "competitive"},
        # No policy on the node nor on its second child: both inherit the root's "default".
        {"match": {"watch": "ceo"}, "routes": [
            {"match": {"detector": "high_reach_negative"}, "policy": "exec-comms"},
            {"match": {"detector": "volume_spike", "severity": ["warning", "critical"]}},
        ]},
        {"match": {"language": ["es", "ca"]}, "policy": "es-team", "continue": True},
        {"match": {"language": "fr"}, "policy": "fr-team"},
        {"match": {"language": "es", "severity": "warning"}, "policy": "es-oncall"},
    ],
})

CASES = [
    # (why, watch, severity, detector, language, expected)
    ("no route matches: the root's policy", "other", "info", "volume_spike", "en",
     ["default"]),
    ("unknown language: label absent, still the root", "other", "warning", "volume_spike", None,
     ["default"]),
    ("per-watch route", "acme", "warning", "volume_spike", "en", ["brand"]),
    ("list matcher in a nested route", "acme", "warning", "risk_terms", "en", ["brand-urgent"]),
    ("first matching child wins, later siblings not tried", "acme", "warning",
     "high_reach_negative", "es", ["brand-urgent"]),
    ("nested node without policy and no matching child inherits the parent's",
     "acme", "warning", "volume_spike", "es", ["brand"]),
    ("grandchild under a policy-less node", "acme", "info", "volume_spike", "es", ["digest"]),
    ("critical: exec with continue, then the per-watch route", "acme", "critical",
     "volume_spike", "en", ["exec", "brand"]),
    ("critical and nothing else matches: exec only; continue never makes the root contribute",
     "other", "critical", "volume_spike", "en", ["exec"]),
    ("critical: exec with continue, then default inherited through two policy-less nodes",
     "ceo", "critical", "volume_spike", "en", ["exec", "default"]),
    ("policy-less watch node with no matching child inherits the root's",
     "ceo", "info", "volume_spike", "en", ["default"]),
    ("nested route with its own policy", "ceo", "warning", "high_reach_negative", "en",
     ["exec-comms"]),
    ("list matcher on watch", "rival-b", "warning", "sentiment_shift", "en", ["competitive"]),
    ("language route with continue, and a later one", "other", "warning", "volume_spike", "es",
     ["es-team", "es-oncall"]),
    ("language route with continue, nothing later", "other", "info", "volume_spike", "ca",
     ["es-team"]),
    ("plain language route", "other", "warning", "volume_spike", "fr", ["fr-team"]),
    ("a matching watch route without continue hides the language routes", "acme", "critical",
     "volume_spike", "es", ["exec", "brand"]),
    ("exec, then a language route", "other", "critical", "risk_terms", "es",
     ["exec", "es-team"]),
    ("a list matcher is any-of, not a substring", "rival", "warning", "volume_spike", "en",
     ["default"]),
]


@pytest.mark.parametrize(("why", "watch", "severity", "detector", "language", "expected"),
                         CASES, ids=[c[0] for c in CASES])
def test_route_table(why: str, watch: str, severity: str, detector: str, language: str | None,
                     expected: list[str]) -> None:
    assert route(labels_of(watch, severity, detector, language), TREE) == expected, why


def test_a_policy_reached_twice_is_listed_once_in_first_seen_order() -> None:
    tree = Route.model_validate({"policy": "default", "routes": [
        {"match": {"severity": "critical"}, "policy": "exec", "continue": True},
        {"match": {"watch": "acme"}, "policy": "brand", "continue": True},
        {"match": {"detector": "risk_terms"}, "policy": "exec"},
    ]})
    labels = labels_of("acme", "critical", "risk_terms", "en")
    assert route(labels, tree) == ["exec", "brand"]


def test_the_root_always_matches_whatever_its_own_match_says() -> None:
    tree = Route(match={"watch": "nobody"}, policy="default")
    assert route(labels_of("acme", "info", "volume_spike", None), tree) == ["default"]


def test_a_matcher_on_an_absent_label_reads_it_as_empty() -> None:
    tree = Route.model_validate({"policy": "default", "routes": [
        {"match": {"language": ""}, "policy": "unknown-language"},
    ]})
    assert route(labels_of("acme", "info", "x", None), tree) == ["unknown-language"]
    assert route(labels_of("acme", "info", "x", "en"), tree) == ["default"]


def test_a_root_without_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="root route needs a policy"):
        route(labels_of("acme", "info", "x", None), Route())


def test_route_is_pure() -> None:
    labels = labels_of("ceo", "critical", "volume_spike", "en")
    before = TREE.model_dump()
    assert route(labels, TREE) == route(dict(labels), TREE)
    assert TREE.model_dump() == before
    assert labels == {"watch": "ceo", "severity": "critical", "detector": "volume_spike",
                      "language": "en"}


@pytest.mark.parametrize(("language", "expected"), [
    ("es", {"watch": "w", "severity": "warning", "detector": "d", "language": "es"}),
    (None, {"watch": "w", "severity": "warning", "detector": "d"}),
    ("", {"watch": "w", "severity": "warning", "detector": "d"}),
])
def test_labels_of(language: str | None, expected: dict[str, str]) -> None:
    assert labels_of("w", "warning", "d", language) == expected


# -- matcher operators: the silences' syntax (one parser), fully anchored regexes -----------

OPERATOR_TREE = Route.model_validate({"policy": "default", "routes": [
    {"match": {"watch": "~rival-.*"}, "policy": "regex"},
    {"match": {"watch": "=~ceo|board"}, "policy": "am-regex"},
    {"match": {"watch": "!~acme.*", "severity": "critical"}, "policy": "not-acme"},
    {"match": {"watch": "acme", "severity": "!=info"}, "policy": "acme-loud"},
    {"match": {"watch": "acme", "detector": ["risk_terms", "~volume_.*"]}, "policy": "acme-any"},
    {"match": {"watch": "*", "language": "fr"}, "policy": "french"},
    {"match": {"watch": "=*"}, "policy": "literal-star"},
]})

OPERATOR_CASES = [
    # (why, watch, severity, detector, language, expected)
    ("~ regex matches", "rival-b", "info", "x", None, ["regex"]),
    ("~ regex is anchored at the start", "the-rival-b", "info", "x", None, ["default"]),
    ("=~ regex, Alertmanager's spelling", "board", "info", "x", None, ["am-regex"]),
    ("=~ regex is anchored at the end", "ceo-office", "info", "x", None, ["default"]),
    ("!~ accepts what does not match", "globex", "critical", "x", None, ["not-acme"]),
    ("!~ refuses what matches", "acme-es", "critical", "x", None, ["default"]),
    ("!= accepts another value", "acme", "warning", "x", None, ["acme-loud"]),
    ("!= refuses its value", "acme", "info", "risk_terms", None, ["acme-any"]),
    ("a list is any of its matchers: equality", "acme", "info", "risk_terms", None,
     ["acme-any"]),
    ("a list is any of its matchers: regex", "acme", "info", "volume_spike", None,
     ["acme-any"]),
    ("a list matches nothing when none of its matchers does", "acme", "info", "sentiment",
     None, ["default"]),
    ("* matches any value", "acme", "info", "sentiment", "fr", ["french"]),
    ("=* is the literal value *", "*", "info", "sentiment", None, ["literal-star"]),
]


@pytest.mark.parametrize(("why", "watch", "severity", "detector", "language", "expected"),
                         OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_route_operators(why: str, watch: str, severity: str, detector: str,
                         language: str | None, expected: list[str]) -> None:
    assert route(labels_of(watch, severity, detector, language), OPERATOR_TREE) == expected, why


def test_negations_read_an_absent_label_as_empty() -> None:
    tree = Route.model_validate({"policy": "default", "routes": [
        {"match": {"language": "!=es"}, "policy": "not-es"}]})
    assert route(labels_of("acme", "info", "x", None), tree) == ["not-es"]
    assert route(labels_of("acme", "info", "x", "es"), tree) == ["default"]


def test_an_invalid_route_regex_is_refused_at_load_with_its_path() -> None:
    from streams.config.settings import ConfigError, load_settings

    tree = {"policy": "default", "routes": [
        {"match": {"watch": "acme"}, "routes": [
            {"match": {"detector": ["risk_terms", "!~(unclosed"]}, "policy": "default"}]},
        {"match": {"severity": "~" + "a" * 300}, "policy": "default"}]}
    with pytest.raises(ConfigError) as err:
        load_settings(None, escalation={"route": tree})
    text = str(err.value)
    # Both problems at once, each with the path to the field.
    assert "escalation.route.routes.0.routes.0.match: detector.1: invalid regex " \
           "'(unclosed'" in text
    assert "escalation.route.routes.1.match: severity: regex is longer than 256" in text
