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
