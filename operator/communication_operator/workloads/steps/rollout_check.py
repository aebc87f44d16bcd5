"""Step *rollout check*, after helm 4 reported the upgrade deployed: warn when the release's Deployments
do not run their new spec yet (:mod:`..rollout`). The report stays helm's: this step never fails a deploy.

helm 4 only: its kstatus wait promises every replica updated and available, so a shortfall means the
wait ended early. helm 3's legacy wait is done, by design, with ``replicas - maxUnavailable`` ready
pods, which would make the warning noise."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.rollout import RolloutReader

log = logging.getLogger(__name__)

ROLLOUT_UNFINISHED_LOG: Final = (
    "release %s: helm reported it deployed, but its rollout is not finished: %s. helm's wait may have "
    "ended early (docs/workloads.md, known limits); the pods' state shows what runs"
)


async def check_rollout(
    helm: HelmPort,
    rollouts: RolloutReader | None,
    release: str,
    namespace: str,
    context: Mapping[str, str],
) -> None:
    if rollouts is None:
        return
    try:
        if (await helm.version()).major < 4:
            return
    except HelmError:
        return  # the upgrade just ran, so this is not expected; the check is only a warning anyway
    unfinished = await rollouts.unfinished_rollouts(namespace, release)
    if unfinished:
        log.warning(ROLLOUT_UNFINISHED_LOG, release, "; ".join(unfinished), extra=context)
