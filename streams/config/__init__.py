"""Configuration, one module per top-level YAML key; ``settings`` composes them and runs the checks
that span sections.
"""
