"""Step *validate*: what a push must be before any helm runs (names, repository, chart version, values).

Also the secrets of the push: known before anything is logged or reported about it, so that every
line and report after this step is redacted of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.redaction import remember_secrets, url_passwords
from communication_operator.workloads.errors import InvalidWorkload
from communication_operator.workloads.naming import NamingError
from communication_operator.workloads.repository import (
    ChartSource,
    RepositoryError,
    chart_source,
    validate_chart_version,
)
from communication_operator.workloads.values import OperatorContext as ValuesContext
from communication_operator.workloads.values import RenderedValues, ValuesError, render_values, secret_values


@dataclass(frozen=True)
class ValidDeploy:
    """A push that passed validation: which chart version, and the rendered values."""

    version: str | None
    rendered: RenderedValues


def deploy_secrets(dto: WorkloadDeployedDto, values: ValuesContext) -> frozenset[str]:
    """The push's secret values, remembered process-wide (every log line is redacted of them).

    A password in the URL counts as a secret even when the URL does not parse.
    """
    secrets = secret_values(dto, values) | url_passwords(dto.repository_url)
    remember_secrets(secrets)
    return secrets


def chart_of(dto: WorkloadDeployedDto) -> ChartSource:
    """Where the chart comes from; raises :class:`InvalidWorkload`. Its ``url_password`` is a secret
    of the deploy from here on, whatever the later checks say."""
    try:
        return chart_source(dto.repository_url, dto.chart_name)
    except (RepositoryError, NamingError) as exc:
        raise InvalidWorkload(exc) from None


def validate(dto: WorkloadDeployedDto, values: ValuesContext) -> ValidDeploy:
    """The chart version and the values; raises :class:`InvalidWorkload` naming the first problem."""
    try:
        version = validate_chart_version(dto.chart_version)
        rendered = render_values(dto, values)
    except (RepositoryError, ValuesError, NamingError) as exc:
        raise InvalidWorkload(exc) from None
    return ValidDeploy(version, rendered)
