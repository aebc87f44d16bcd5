"""Step *repository*: the chart's repository made usable (``helm repo add`` + ``repo update``, or
``helm registry login`` for ``oci://`` with credentials; :mod:`..refresh` decides which, and when)."""

from __future__ import annotations

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.refresh import RepositoryRefresher
from communication_operator.workloads.repository import ChartSource


async def prepare_repository(
    repositories: RepositoryRefresher, source: ChartSource, dto: WorkloadDeployedDto
) -> None:
    """Credentials from the push, else from the URL; raises :class:`DeployFailed` with helm's error."""
    username = dto.repository_username or source.url_username
    password = dto.repository_password or source.url_password
    try:
        await repositories.prepare(source, username, password)
    except HelmError as exc:
        raise DeployFailed(str(exc)) from None  # octo-spec §4.2: names the alias, never the URL
