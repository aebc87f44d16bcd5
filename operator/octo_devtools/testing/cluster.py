"""pytest plugin: fixtures for the cluster (filled in by its own module)."""
