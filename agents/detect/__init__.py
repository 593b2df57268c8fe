"""detect: enriched mentions → signals. ``agent`` runs it on Faust; ``stage`` holds the per-record
logic; ``detectors`` the engines, ``backtest`` and ``scenarios`` replay labelled streams through
them, ``history`` backtests a file (enriched, or a raw export classified first).
"""

from agents.detect.detectors import DetectionEngine
from agents.detect.stage import DetectStage

__all__ = ["DetectStage", "DetectionEngine"]
