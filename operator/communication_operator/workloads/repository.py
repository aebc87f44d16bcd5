"""Chart repositories: classic index repositories (``https://…/index.yaml``) and OCI registries.

Index repositories are registered under an alias derived from the URL exactly as upstream does
(octo-spec §4.2): ``octo-`` followed by the first 6 bytes (12 lowercase hex digits) of SHA-1 over the
URL's UTF-8 bytes, with no normalisation, so the same URL always gives the same alias. The chart is
then ``<alias>/<chart>``.

``oci://`` URLs (which upstream cannot handle) need no ``helm repo add``: the chart reference is the
URL with the chart name appended, ``oci://host/path/chart``; credentials go to ``helm registry login``
for :attr:`ChartSource.registry_host`.

Both URL and chart name end up as helm arguments, so anything that could be read as an option
(a leading ``-``) or that does not parse as the expected kind of URL is refused here. A refusal never
echoes the URL as given, nor urllib's error text (which quotes parts of it): the URL may carry a
password that, unparsed, is known to nobody as a secret. It names the URL through
:func:`~communication_operator.redaction.describe_url`, credentials masked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit, urlunsplit

from communication_operator.redaction import describe_url

ALIAS_PREFIX = "octo-"

# Refusal texts; {url} is the URL with its credentials masked (describe_url), never the URL as given.
BLANK_URL = "repositoryUrl is blank"
SURROUNDING_WHITESPACE = "repositoryUrl {url} has surrounding whitespace"
MALFORMED_URL = "repositoryUrl {url} is not a valid URL: its host or port cannot be read"
UNSUPPORTED_SCHEME = (
    "repositoryUrl {url} has unsupported scheme {scheme}; expected https://, http:// or oci://"
)
NO_HOST_OR_WHITESPACE = "repositoryUrl {url} has no host or contains whitespace"
OCI_QUERY = "OCI repositoryUrl {url} must not have a query or fragment"
OCI_CREDENTIALS = (
    "OCI repositoryUrl for host {host!r} must not carry credentials; "
    "use repositoryUsername/repositoryPassword"
)

_CHART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9~^<>=.*+_, |-]+$")


class RepositoryError(ValueError):
    """The repository URL, chart name or chart version cannot be used."""


class RepositoryKind(StrEnum):
    INDEX = "index"  # classic helm repository served over HTTP(S)
    OCI = "oci"  # OCI registry, oci://host/path


@dataclass(frozen=True)
class ChartSource:
    """Where ``helm upgrade`` gets the chart from.

    ``chart_ref`` is the positional chart argument. ``alias`` is set for index repositories only
    (``helm repo add <alias> <repository_url>`` must run first); ``registry_host`` for OCI only.
    """

    kind: RepositoryKind
    repository_url: str
    chart_name: str
    chart_ref: str
    alias: str | None = None
    registry_host: str | None = None
    # Credentials written into an index URL (``https://user:pass@host/…``): moved out of the URL so the
    # password reaches helm through stdin, never argv or a log line.
    url_username: str | None = None
    url_password: str | None = field(default=None, repr=False)

    @property
    def needs_repo_add(self) -> bool:
        return self.kind is RepositoryKind.INDEX


def repository_alias(repository_url: str) -> str:
    """Upstream's alias: ``octo-`` + the first 12 hex digits of SHA-1(url)."""
    digest = hashlib.sha1(repository_url.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{ALIAS_PREFIX}{digest[:12]}"


def classify_repository_url(repository_url: str) -> RepositoryKind:
    """``INDEX`` for ``http(s)://host/…``, ``OCI`` for ``oci://host/…``; anything else raises."""
    url = repository_url.strip()
    if not url:
        raise RepositoryError(BLANK_URL)
    if url != repository_url:
        raise RepositoryError(SURROUNDING_WHITESPACE.format(url=describe_url(url)))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise RepositoryError(MALFORMED_URL.format(url=describe_url(url))) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "oci"):
        # The "scheme" of ``user:pass@host`` is ``user``: named only when it is all a scheme can be.
        named = repr(parts.scheme) if parts.scheme and url.startswith(f"{parts.scheme}://") else "(none)"
        raise RepositoryError(UNSUPPORTED_SCHEME.format(url=describe_url(url), scheme=named))
    if not parts.hostname or any(c.isspace() for c in url):
        raise RepositoryError(NO_HOST_OR_WHITESPACE.format(url=describe_url(url)))
    if scheme == "oci":
        if parts.query or parts.fragment:
            raise RepositoryError(OCI_QUERY.format(url=describe_url(url)))
        if parts.username or parts.password:
            raise RepositoryError(OCI_CREDENTIALS.format(host=parts.hostname))
        return RepositoryKind.OCI
    return RepositoryKind.INDEX


def validate_chart_name(chart_name: str) -> str:
    """A chart name usable in ``alias/name`` and ``oci://…/name``: no slashes, no leading ``-``."""
    if not _CHART_NAME.fullmatch(chart_name):
        raise RepositoryError(
            f"chartName {chart_name!r} is not a chart name (letters, digits, '-', '_', '.'; "
            "starting with a letter or digit)"
        )
    return chart_name


def validate_chart_version(chart_version: str) -> str | None:
    """``None`` for blank (newest in the repository), else the version or constraint, checked for safety."""
    version = chart_version.strip()
    if not version:
        return None
    if version.startswith("-") or not _VERSION.fullmatch(version):
        raise RepositoryError(f"chartVersion {chart_version!r} is not a version or version constraint")
    return version


def chart_source(repository_url: str, chart_name: str) -> ChartSource:
    """The chart reference for ``helm upgrade --install`` and what must be set up before it."""
    kind = classify_repository_url(repository_url)
    validate_chart_name(chart_name)
    if kind is RepositoryKind.OCI:
        base = repository_url.rstrip("/")
        return ChartSource(
            kind=kind,
            repository_url=repository_url,
            chart_name=chart_name,
            chart_ref=f"{base}/{chart_name}",
            registry_host=urlsplit(repository_url).netloc,
        )
    alias = repository_alias(repository_url)
    parts = urlsplit(repository_url)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if username is not None or password is not None:
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"  # IPv6 literal
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        repository_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return ChartSource(
        kind=kind,
        repository_url=repository_url,
        chart_name=chart_name,
        chart_ref=f"{alias}/{chart_name}",
        alias=alias,
        url_username=username,
        url_password=password,
    )
