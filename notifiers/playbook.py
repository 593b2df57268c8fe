"""A playbook as plain lines, shared by every channel that shows one (email, push, Slack).

Template and step text come from config but may be pasted from anywhere: each channel escapes
these lines like any untrusted text before use.
"""

from __future__ import annotations

from streams.core.records import PlaybookCard

__all__ = ["playbook_lines"]


def playbook_lines(card: PlaybookCard, language: str | None, *,
                   templates: int = 2) -> list[str]:
    """Owner, experts, approval, steps with their state, do-not-respond, then templates."""
    lines = [f"Playbook: {card.name}", f"Owner: {card.owner}"]
    if card.experts:
        lines.append("Experts with the last word: " + "; ".join(card.experts))
    if card.approval:
        lines.append(f"Approval: {card.approval}")
    for step in card.steps:
        mark = "[x]" if card.is_done(step.id) else "[ ]"
        owner = f" ({step.owner})" if step.owner else ""
        lines.append(f"{mark} {step.text}{owner}")
    for rule in card.do_not_respond:
        lines.append(f"Do not respond: {rule}")
    for t in card.templates_for(language)[:templates]:
        lines.append(f"Approved starting point ({t.channel}, {t.language}), never auto-posted: "
                     f"{t.text}")
    return lines
