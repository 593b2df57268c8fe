"""Incidents & on-call: incidents, response times, escalation, notifications, silences."""

from __future__ import annotations

from typing import Any

from .panels import Cell, dashboard, row, stat, ts
from .promql import AUTO, HOUR, NONE, PERSON, RANGE, increase, mean, quantile, rate, ratio

__all__ = ["incidents"]


def incidents() -> dict[str, Any]:
    tta, ttr = "escucha_time_to_acknowledge_seconds", "escucha_time_to_resolve_seconds"

    def secs(title: str, expr: str) -> Cell:
        return stat(title, expr, unit="s", no_value=NONE, w=4)

    notes = "escucha_notifications_total"
    return dashboard("escucha-incidents", "escucha / Incidents & on-call",
                      "Incidents, escalation, acknowledgement and notification delivery.", [
        row("Now"),
        stat("Open", 'sum(escucha_incidents{state="open"})', red_at=1),
        stat("Acknowledged", 'sum(escucha_incidents{state="acknowledged"})'),
        stat("Overdue", "sum(escucha_incidents_overdue)", red_at=1,
              description="Open, unacknowledged, every level tried, none waiting for "
                          "quiet hours to end."),
        stat("Silences created (range)",
              increase("escucha_silences_created_total", window=RANGE)),
        row("Incidents"),
        ts("Incidents by state", [("sum by (state) (escucha_incidents)", "{{state}}")], w=8),
        ts("Unresolved incidents by severity",
            [('sum by (severity) (escucha_incidents{state!="resolved"})', "{{severity}}")],
            stack=True, w=8),
        ts("Overdue by severity",
            [("sum by (severity) (escucha_incidents_overdue)", "{{severity}}")], w=8),
        ts("Incidents opened by severity",
            [(increase("escucha_incidents_opened_total", by=["severity"]), "{{severity}}")],
            bars=True, stack=True, w=24),
        # People apart from auto-resolves, which take resolve_after_s and would drag MTTR.
        row("Response"),
        secs("MTTA (range)", mean(tta, sel=PERSON, window=RANGE)),
        secs("p90 time to acknowledge", quantile(0.9, tta, sel=PERSON, window=RANGE)),
        secs("MTTR, people (range)", mean(ttr, sel=PERSON, window=RANGE)),
        secs("p90 time to resolve, people", quantile(0.9, ttr, sel=PERSON, window=RANGE)),
        stat("Auto-resolved (range)", increase(f"{ttr}_count", sel=AUTO, window=RANGE), w=4,
              description="Resolved by escucha after resolve_after_s without signals."),
        secs("MTTR, auto-resolved (range)", mean(ttr, sel=AUTO, window=RANGE)),
        ts("MTTA by severity (rolling 1 h)",
            [(mean(tta, by=["severity"], sel=PERSON, window=HOUR), "{{severity}}")], unit="s"),
        ts("MTTR by severity and how it ended (rolling 1 h)",
            [(mean(ttr, by=["severity", "by"], window=HOUR), "{{severity}} by {{by}}")],
            unit="s", description="by=auto: no signal for resolve_after_s."),
        ts("Escalations by level",
            [(increase("escucha_escalations_total", by=["level"]), "level {{level}}")],
            bars=True, stack=True),
        ts("Acknowledgements by source",
            [(increase("escucha_acks_total", by=["source", "action"]),
              "{{source}} {{action}}")], bars=True, stack=True),
        row("Notifications"),
        ts("Notifications by channel and outcome",
            [(rate(notes, by=["channel", "outcome"]),
              "{{channel}} {{outcome}}")], unit="cps"),
        ts("Delivery latency by channel", [
            (quantile(0.5, "escucha_delivery_seconds", by=["channel"]), "{{channel}} p50"),
            (quantile(0.99, "escucha_delivery_seconds", by=["channel"]), "{{channel}} p99"),
        ], unit="s"),
        stat("Delivery failure ratio (range)",
              ratio(rate(notes, sel='{outcome="failed"}', window=RANGE),
                     rate(notes, sel='{outcome=~"delivered|failed"}', window=RANGE)),
              unit="percentunit", red_at=0.05, w=24),
        # Both hold notifications back on purpose: ops should see how many, not guess.
        row("Silences and inhibition"),
        stat("Inhibited now", "sum(escucha_incidents_inhibited)",
             description="Open incidents an inhibit rule holds back under a more severe one."),
        stat("Silences created (range)",
             increase("escucha_silences_created_total", window=RANGE)),
        stat("Silences expired early (range)",
             increase("escucha_silences_expired_total", window=RANGE)),
        stat("Escalations (range)", increase("escucha_escalations_total", window=RANGE)),
        ts("Inhibited incidents by severity",
           [("sum by (severity) (escucha_incidents_inhibited)", "{{severity}}")], stack=True),
        ts("Silences created and expired early", [
            (increase("escucha_silences_created_total"), "created"),
            (increase("escucha_silences_expired_total"), "expired early"),
        ], bars=True),
        # One story, one incident (agents/escalate/merge.py): each join is a page not sent.
        stat("Incidents joined to another (range)",
             increase("escucha_incidents_joined_total", window=RANGE),
             description="Incidents that joined an open incident of another watch with the "
                         "same copy-paste story instead of paging."),
        ts("Joins by watch", [(increase("escucha_incidents_joined_total", by=["watch"]),
                               "{{watch}}")], bars=True),
        # The hold's cost beside its gain: each hold delayed a first page by story_wait_s.
        ts("Pages held for a forming story, and joins", [
            (increase("escucha_incidents_story_held_total"), "held"),
            (increase("escucha_incidents_joined_total"), "joined"),
        ], bars=True,
           description="New incidents that waited escalation.story_wait_s because a story "
                       "was forming, beside the incidents that joined another. Holds far "
                       "above joins: the wait delays pages nothing joins."),
    ])
