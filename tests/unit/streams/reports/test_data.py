"""A report's numbers, from bucket snapshots built out of hand-made mentions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.reports.data import build_report, change_pct
from tests.unit.streams.reports._build import (
    END,
    MADRID,
    REPORT,
    START,
    WATCHES,
    Source,
    em,
    incident,
)


def test_totals_previous_period_share_of_voice_and_edges() -> None:
    mentions = [
        # This week: 3 acme (one negative with reach, one positive with likes), 1 globex.
        em(START + timedelta(hours=1), "negative", followers=1000, priority=90,
           text="acme outage refund"),
        em(START + timedelta(days=2), "positive", likes=7, priority=20),
        em(END - timedelta(minutes=1), "neutral", priority=50),  # last minute of the week
        em(START + timedelta(hours=5), watch="globex", text="globex"),
        # The week before: 2 acme; outside both: 1 acme the next week.
        em(START - timedelta(days=3), "negative"),
        em(START - timedelta(minutes=1), "neutral"),
        em(END, "negative"),
    ]
    data = build_report(REPORT, watches=WATCHES, source=Source(mentions), incidents=[],
                        end=REPORT.length.align(datetime(2026, 3, 30, 8, tzinfo=MADRID), MADRID))
    assert data.start == START and data.end == END
    assert data.previous_start == datetime(2026, 3, 16, tzinfo=MADRID)
    w = data.watches[0]
    assert (w.current.count, w.previous.count) == (3, 2)
    assert w.current.sentiment == {"negative": 1, "neutral": 1, "positive": 1}
    assert w.current.reach == 1000 and w.current.engagement == 7
    assert w.change_pct == pytest.approx(50.0)
    assert w.negative_share_change_pts == pytest.approx(100 / 3 - 50)
    assert w.share_of_voice == {"acme": 75.0, "globex": 25.0}
    assert w.sov_counts == {"acme": 3, "globex": 1} and w.names["globex"] == "Globex"
    assert [m.priority for m in w.current.top] == [90, 50]  # top_mentions=2
    assert "outage" in w.current.terms and "acme" not in w.current.terms
    assert data.span == "2026-03-23 to 2026-03-29 (Europe/Madrid)"


def test_series_has_one_point_per_local_day_and_the_short_day_is_23_hours() -> None:
    mentions = [em(START + timedelta(days=d, hours=12), "negative" if d == 6 else "neutral")
                for d in range(7) for _ in range(d + 1)]
    data = build_report(REPORT, watches=WATCHES, source=Source(mentions), incidents=[],
                        end=END)
    points = data.watches[0].series
    assert [p.count for p in points] == [1, 2, 3, 4, 5, 6, 7]
    assert points[0].label == "Mon 23 Mar" and points[-1].label == "Sun 29 Mar"
    assert points[-1].negative_share == 1.0 and points[0].negative_share == 0.0
    sunday = points[-1]
    assert (END.astimezone(UTC) - sunday.start).total_seconds() == 23 * 3600


def test_hourly_period_has_hourly_points() -> None:
    report = REPORT.model_copy(update={"period": "6h"})
    end = datetime(2026, 3, 25, 12, tzinfo=MADRID)
    data = build_report(report, watches=WATCHES, source=Source([em(end - timedelta(minutes=30))]),
                        incidents=[], end=end)
    assert data.step == "h" and len(data.watches[0].series) == 6
    assert data.watches[0].series[-1].count == 1 and data.watches[0].series[-1].label == \
        "Wed 11:00"


def test_incidents_in_the_period_with_time_to_ack_and_resolve() -> None:
    incidents = [
        incident(START + timedelta(days=1), ack_min=12, resolve_min=90),
        incident(START + timedelta(days=2), ack_min=30),
        incident(START + timedelta(days=3)),
        incident(START - timedelta(hours=1), ack_min=1),  # the week before
        incident(START + timedelta(days=1), watch="globex"),  # another watch
    ]
    data = build_report(REPORT, watches=WATCHES, source=Source([]), incidents=incidents,
                        end=END)
    w = data.watches[0]
    assert [i.time_to_ack_s for i in w.incidents] == [720.0, 1800.0, None]
    assert [i.time_to_resolve_s for i in w.incidents] == [5400.0, None, None]
    assert w.median_time_to_ack_s() == 1260.0 and w.median_time_to_resolve_s() == 5400.0
    assert w.current.count == 0 and w.change_pct is None
    assert w.share_of_voice == {"acme": 0.0, "globex": 0.0}


def test_change_pct() -> None:
    assert change_pct(150, 100) == 50.0
    assert change_pct(0, 100) == -100.0
    assert change_pct(5, 0) is None
