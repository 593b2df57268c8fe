"""The bottom layer: records and topics on the wire, the query language, signed links, silences,
bucket snapshots, cron schedules and the security primitives. Imports nothing of escucha above
it.
"""
