"""Incident bookkeeping, free of Kafka: a signal either opens an incident or joins one.

Deterministic: ids come from the fingerprint and the signal's window, so a re-delivered
signal (at-least-once) finds the incident it already joined and notifies nobody again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from streams.records import Incident, Notification, Signal, stable_id

__all__ = ["Decision", "IncidentBook", "Target"]

_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Target:
    channel: str
    target: str


@dataclass(frozen=True)
class Decision:
    incident: Incident
    notifications: list[Notification]
    opened: bool


class IncidentBook:
    def __init__(self, *, resolve_after: timedelta, level1: list[Target]) -> None:
        self.resolve_after = resolve_after
        self.level1 = level1

    @staticmethod
    def fingerprint(signal: Signal) -> str:
        return f"{signal.watch_id}:{signal.detector}"

    def on_signal(self, current: Incident | None, signal: Signal) -> Decision | None:
        """The incident after ``signal`` and what to send; ``None`` if nothing changed."""
        if current is not None and signal.id in current.signal_ids:
            return None  # re-delivered signal
        if (
            current is None
            or current.state == "resolved"
            or signal.window_end - current.updated_at > self.resolve_after
        ):
            incident = Incident(
                id=stable_id(self.fingerprint(signal), signal.window_start.isoformat()),
                fingerprint=self.fingerprint(signal), watch_id=signal.watch_id,
                detector=signal.detector, severity=signal.severity,
                opened_at=signal.window_end, updated_at=signal.window_end,
                summary=signal.summary, signal_ids=[signal.id], samples=signal.samples,
            )
            return Decision(incident, self._notify(incident, signal), opened=True)
        worse = _RANK[signal.severity] > _RANK[current.severity]
        incident = current.model_copy(update={
            "signal_ids": [*current.signal_ids, signal.id][-100:],
            "updated_at": max(current.updated_at, signal.window_end),
            "severity": signal.severity if worse else current.severity,
            "summary": signal.summary if worse else current.summary,
            "samples": signal.samples if worse else current.samples,
        })
        # Joining an open incident is silent unless it got worse (Alertmanager's grouping).
        notes = self._notify(incident, signal) if worse else []
        return Decision(incident, notes, opened=False)

    def _notify(self, incident: Incident, signal: Signal) -> list[Notification]:
        return [
            Notification(
                # The idempotency key: incident + level + target + what changed.
                id=f"{incident.id}:L1:{t.channel}:{t.target}:{incident.state}:{incident.severity}",
                incident=incident, level=1, channel=t.channel, target=t.target,
                created_at=signal.window_end,
            )
            for t in self.level1
        ]
