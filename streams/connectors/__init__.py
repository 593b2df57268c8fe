"""Connectors: one module per source, each normalising what it reads to a Mention."""
