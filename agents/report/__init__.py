"""report: scheduled PDF/Slack/email reports. ``agent`` runs the schedule on Faust; the report
itself is built in ``streams.reports``.
"""

from agents.report.runner import ReportRunner, run_report

__all__ = ["ReportRunner", "run_report"]
