"""Scheduled reports: what the crisis team and its stakeholders read each week.

``config`` (ReportSettings, periods), ``schedule`` (DST-safe cron), ``data`` (numbers from the
stored aggregates and incidents), ``charts`` (PNG), ``render`` (HTML, text, Slack), ``pdf``,
``deliver`` (PDF file, email, Slack upload) and ``ledger`` (what was sent, what is due).
Submodules are imported where used: streams.config.settings imports ``config``, and matplotlib and
reportlab load only when a report is rendered.
"""

__all__: list[str] = []
