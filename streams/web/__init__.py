"""What escucha serves over HTTP: the API, Slack actions and signed links (``api``), PagerDuty's
webhooks (``pagerduty``), ingest, health, the console. Every route is registered with its access
(``streams.runtime.faust.App.serve``).
"""
