"""``escucha …``: the umbrella (``main``), shared helpers (``_common``) and one module per command
group.
"""

from streams.cli.main import cli, main

__all__ = ["cli", "main"]
