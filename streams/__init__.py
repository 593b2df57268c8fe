"""Everything around the stages, by role: ``core`` (the bottom layer), ``config``,
``connectors``, ``reports``, ``runtime`` (Faust and the worker), ``web``, ``bench``, ``cli``,
and ``wiring`` (the one module that installs the agents)."""
