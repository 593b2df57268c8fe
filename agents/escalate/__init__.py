"""escalate: signals, acks, ticks and receipts → incidents and notifications. ``agent`` runs it on
Faust; ``stage`` applies one record to the tables; ``incidents`` (the engine), ``routing`` and
``oncall`` are pure.
"""

from agents.escalate.incidents import Decision, EscalationEngine
from agents.escalate.stage import EscalateStage, effective_policies

__all__ = ["Decision", "EscalateStage", "EscalationEngine", "effective_policies"]
