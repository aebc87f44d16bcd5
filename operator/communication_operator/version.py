"""The installed package version (one place, for ``version``, build_info and ``check``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("communication-operator")
    except PackageNotFoundError:
        return "0+unknown"
