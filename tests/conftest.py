"""Shared fixtures come from the dev tools' pytest plugins, so benchmarks and other repos can reuse them."""

pytest_plugins = [
    "octo_devtools.testing.simulator",
    "octo_devtools.testing.cluster",
]
