"""The episode section of an incident page: the hourly series as a chart and a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.core.records import Evidence, SeriesPoint
from streams.web.console.episode import episode_section

T0 = datetime(2025, 3, 11, 6, tzinfo=UTC)


def _evidence(series: list[SeriesPoint], detector: str = "negative_surge") -> Evidence:
    return Evidence(detector=detector, severity="warning", window_start=T0,
                    window_end=T0 + timedelta(hours=len(series)), observed=120, expected=50,
                    score=2.4, scale_min=360, lasting_min=540, series=series)


def test_the_latest_series_is_drawn_and_tabled() -> None:
    old = _evidence([SeriesPoint(start=T0, observed=1, expected=1)])
    pts = [SeriesPoint(start=T0 + timedelta(hours=i), observed=10 + 5 * i, expected=8.5)
           for i in range(4)]
    html = episode_section([old, _evidence(pts), _evidence([], detector="negative_spike")])
    assert "elevated for 9 h, judged over 6 h" in html
    assert html.count("<tr><td>2025-03-11") == 4  # the latest series, not the old one
    assert "<td>25</td><td>8.5</td><td>2.9x</td>" in html
    assert html.count('class="bar-neg"') == 4 and "<polyline" in html


def test_no_series_no_section() -> None:
    assert episode_section([_evidence([], detector="negative_spike")]) == ""
    assert episode_section([]) == ""
