"""PromQL for the dashboards: sums of rates and increases, histogram quantiles and means."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AUTO", "HOUR", "NONE", "PERSON", "RANGE", "RATE", "increase", "mean", "quantile",
           "quantiles", "rate", "ratio"]

RATE = "$__rate_interval"
RANGE = "$__range"
# Incidents are rare: a rolling hour gives a readable MTTA/MTTR line where a scrape-sized
# window would be mostly gaps.
HOUR = "1h"
NONE = "no data"  # for averages and quantiles, where 0 would be a claim
PERSON, AUTO = '{by="person"}', '{by="auto"}'  # who ended the wait (metrics.ENDED_BY)


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def rate(metric: str, *, by: Sequence[str] = (), sel: str = "", window: str = RATE) -> str:
    return f"sum{_by(by)} (rate({metric}{sel}[{window}]))"


def increase(metric: str, *, by: Sequence[str] = (), sel: str = "",
              window: str = RATE) -> str:
    return f"sum{_by(by)} (increase({metric}{sel}[{window}]))"


def quantile(q: float, histogram: str, *, by: Sequence[str] = (), sel: str = "",
              window: str = RATE) -> str:
    inner = rate(f"{histogram}_bucket", by=("le", *by), sel=sel, window=window)
    return f"histogram_quantile({q}, {inner})"


def mean(histogram: str, *, by: Sequence[str] = (), sel: str = "", window: str = RATE) -> str:
    return (f"{rate(f'{histogram}_sum', by=by, sel=sel, window=window)}"
            f" / {rate(f'{histogram}_count', by=by, sel=sel, window=window)}")


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


def quantiles(histogram: str, qs: Sequence[float] = (0.5, 0.9, 0.99)
               ) -> list[tuple[str, str]]:
    return [(quantile(q, histogram), f"p{round(q * 100)}") for q in qs]
