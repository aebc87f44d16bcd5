"""Step *replica pin* (part of resolving what to install): ``--set replicaCount=<live>`` on helm 4, so
that a redeploy keeps the replicas a scale set (:mod:`..replicas`); hibernation is in the values."""

from __future__ import annotations

import logging
from typing import Final

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.replicas import REPLICA_COUNT_KEY, ReplicaReader, replica_pin

log = logging.getLogger(__name__)

PINNED_LOG: Final = "release %s: replicaCount pinned to the live count %d"


async def replica_pin_values(
    helm: HelmPort, replicas: ReplicaReader | None, dto: WorkloadDeployedDto, release: str, namespace: str
) -> dict[str, str]:
    """The ``--set`` values of the pin; empty when nothing is pinned. Raises :class:`DeployFailed`."""
    if dto.hibernated or replicas is None:
        return {}
    try:
        if (await helm.version()).major < 4:
            return {}
    except HelmError as exc:
        raise DeployFailed(str(exc)) from None
    live = await replicas.live_replicas(namespace, release)
    pin = replica_pin(live, hibernated=False, server_side_apply=True)
    if pin is None:
        return {}
    log.info(PINNED_LOG, release, pin)
    return {REPLICA_COUNT_KEY: str(pin)}
