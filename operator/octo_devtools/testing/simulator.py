"""pytest plugin: fixtures for the simulator (filled in by its own module)."""
