"""``escucha bench e2e``: the whole pipeline on a real broker, against the model's own limit
and a naive baseline, in one run (see e2e.py)."""
