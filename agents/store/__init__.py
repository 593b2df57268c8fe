"""store: enriched mentions → a searchable store (SQLite by default, PostgreSQL for several
workers). ``agent`` runs it on Faust; ``stage`` writes batches; ``store`` is the store itself
(writing, searching, retention) on a backend (``backends``) with its schema (``schema``);
``search`` and ``sql`` turn the API's parameters and a watch query into SQL; ``text`` is
what gets indexed; ``rows`` and ``export`` are what comes out.
"""

from agents.store.stage import StoreStage
from agents.store.store import MentionStore, store_for

__all__ = ["MentionStore", "StoreStage", "store_for"]
