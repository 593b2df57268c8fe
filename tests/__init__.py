"""escucha test suite."""
