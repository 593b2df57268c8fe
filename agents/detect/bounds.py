"""The last guard on a watch's detection state: never more than one broker record can hold.

The state is saved as one record of the detect table's changelog, and the broker refuses a
record over 1 MB: the producer error then crashes the worker, in the very crisis that made
the state large (it happened twice: story rows, then mention identities, each fixed by a
bound of its own in agents/detect/). Every part has a bound sized to keep the whole under
the limit at a worker's full pace; this guard is for what no bound foresaw (thousands of
accounts pasting several stories at once, a config with longer windows). Before each save
:func:`fit_state` measures the state and, over ``BUDGET``, trims the parts that only
explain (who and what), newest kept, never the counts the detectors judge by: the alert
still fires, with a shorter explanation; the stage logs it and counts it
(``escucha_detect_state_trimmed_total``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["BUDGET", "fit_state", "state_size"]

#: Bytes of the encoded state past which it is trimmed: under the broker's 1,000,000-byte
#: record limit with room for the record's key, headers and batch overhead.
BUDGET = 800_000


def state_size(st: dict[str, Any]) -> int:
    """The state's size as JSON (as the table's changelog encodes it, give or take spaces:
    measured with them, so an upper bound)."""
    return len(json.dumps(st))


def _story_authors(st: dict[str, Any]) -> None:
    for rows in st.get("sy", {}).values():
        for row in rows.values():
            del row[2][20:]  # "by N accounts" is then a lower bound for the largest stories


def _older_ids(st: dict[str, Any]) -> None:
    ids = st.get("ids", {})
    for key in list(ids)[: len(ids) // 2]:  # the oldest half: a re-read comes soon or never
        del ids[key]


def _story_samples(st: dict[str, Any]) -> None:
    samples = st.get("sx", {})
    for sid, text in samples.items():
        samples[sid] = text[:80]


def _hour_authors(st: dict[str, Any]) -> None:
    hours = st.get("hr", {}).get("au", {})
    for key in sorted(hours, key=int)[:-1]:  # all but the newest hour
        del hours[key]
    for authors in hours.values():
        for name in list(authors)[len(authors) // 2:]:
            del authors[name]


def _details(st: dict[str, Any]) -> None:
    for key in ("sy", "s", "a", "na"):  # keyed by minute
        parts = st.get(key, {})
        for minute in sorted(parts, key=int)[:-5]:
            del parts[minute]  # the last five minutes of each explanation stay
    live = {sid for rows in st.get("sy", {}).values() for sid in rows}
    samples = st.get("sx", {})
    for sid in [sid for sid in samples if sid not in live]:
        del samples[sid]


#: In order: what costs the explanation least first.
_STEPS: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    ("story authors", _story_authors), ("older mention identities", _older_ids),
    ("story samples", _story_samples), ("hour authors", _hour_authors),
    ("older explanations", _details), ("older mention identities", _older_ids),
)


def fit_state(st: dict[str, Any], *, budget: int = BUDGET) -> tuple[int, int, list[str]]:
    """Trim ``st`` (in place) under ``budget`` bytes: (size before, size after, the steps
    taken); no step when it fits."""
    before = size = state_size(st)
    taken: list[str] = []
    for name, step in _STEPS:
        if size <= budget:
            break
        step(st)
        taken.append(name)
        size = state_size(st)
    return before, size, taken
