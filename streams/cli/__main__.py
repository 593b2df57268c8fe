"""``python -m streams.cli``: the same as the ``escucha`` command."""

from streams.cli.main import main

main()
