"""detect: enriched mentions → signals. ``agent`` runs it on Faust; ``stage`` holds the per-record
logic; ``detectors`` the engines, ``backtest`` and ``scenarios`` replay labelled streams through
them (``everyday`` and ``everyday_scenarios``: the library at everyday volumes), ``history``
backtests a file (enriched, or a raw export classified first); ``surge`` is the hourly detector.
"""

# The scenarios at everyday volumes register themselves in scenarios.SCENARIOS on import.
from agents.detect import everyday_scenarios as _everyday  # noqa: F401
from agents.detect.detectors import DetectionEngine
from agents.detect.stage import DetectStage

__all__ = ["DetectStage", "DetectionEngine"]
