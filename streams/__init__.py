"""Stream plumbing: the Faust app, settings, topics, records, broker, connectors, CLI, web."""
