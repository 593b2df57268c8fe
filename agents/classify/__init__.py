"""classify: raw mentions → enriched mentions (watch matching, sentiment, emotion, priority).
``agent`` runs it on Faust; ``matching`` is the pure watch matcher.
"""

from agents.classify.classifier import Classifier
from agents.classify.matching import WatchMatcher

__all__ = ["Classifier", "WatchMatcher"]
