"""Which escalation policies an incident goes to: Alertmanager's routing tree, as a pure function.

The tree is ``streams.config.escalation.Route``. The semantics are Alertmanager's
(``dispatch/route.go``) so operators can carry their intuition over:

* a node matches when every ``match`` entry matches its label; a label the incident lacks
  reads as ``""``, as in Alertmanager;
* an entry is a matcher in the syntax silences use (``streams/core/silences.py``, one parser
  for both): ``acme`` is equality, ``!=acme`` inequality, ``~re`` or ``=~re`` a regular
  expression anchored at both ends (``~acme`` does not match ``acme-es``), ``!~re`` its
  negation, ``*`` anything, ``=…`` a literal; a list is "any of" its matchers (so a list of
  negations accepts almost everything: write ``!~a|b`` for "neither a nor b");
* the root always matches, whatever its ``match`` says;
* children are tried in order; the first matching child is descended into and the search stops
  there, unless that child has ``continue: true``, in which case later siblings are tried too;
* a matched node none of whose children matched contributes its own policy, inherited from the
  nearest ancestor that has one.

Note that ``continue`` never makes the *parent* contribute: a root whose only matching child
has ``continue: true`` yields that child's policy alone (Alertmanager behaves the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from streams.config.escalation import Route
from streams.core.silences import compile_matcher

__all__ = ["labels_of", "route"]


def labels_of(watch: str, severity: str, detector: str, language: str | None) -> dict[str, str]:
    """The labels routes and silences match on, keyed as in ``MATCH_LABELS``.

    An unknown language is left out rather than set to a placeholder, so a route or silence
    can't match it by accident ("und" or "unknown" would be a real-looking value).
    """
    labels = {"watch": watch, "severity": severity, "detector": detector}
    if language:
        labels["language"] = language
    return labels


def route(labels: Mapping[str, str], root: Route) -> list[str]:
    """The policy ids for an incident with ``labels``, in tree order, without duplicates.

    Never empty: at worst the root's policy. Raises ``ValueError`` when the root has no policy
    (``EscalationSettings`` refuses such a config, so this only guards hand-built trees).
    """
    if root.policy is None:
        raise ValueError("the root route needs a policy: every incident must reach someone")
    found: list[str] = []
    _walk(root, labels, root.policy, found)
    # dict keeps first-seen order; a policy reached twice (e.g. via ``continue``) runs once.
    return list(dict.fromkeys(found))


def _walk(node: Route, labels: Mapping[str, str], inherited: str, found: list[str]) -> None:
    policy = node.policy if node.policy is not None else inherited
    any_child = False
    for child in node.routes:
        if not _matches(child.match, labels):
            continue
        any_child = True
        _walk(child, labels, policy, found)
        if not child.continue_:
            break
    if not any_child:
        found.append(policy)


# Route matchers are few and fixed by the config (validated at load), so each is compiled
# once and kept; routing runs for every new or worsened incident.
_matcher: Callable[[str], Callable[[str], bool]] = lru_cache(maxsize=4096)(compile_matcher)


def _matches(match: Mapping[str, str | list[str]], labels: Mapping[str, str]) -> bool:
    for key, wanted in match.items():
        value = labels.get(key, "")
        options = [wanted] if isinstance(wanted, str) else wanted
        if not any(_matcher(option)(value) for option in options):
            return False
    return True
