"""escucha's Grafana dashboards as code, one module per group of boards; deploy/grafana/
dashboards.py builds and writes them."""

__all__: list[str] = []
