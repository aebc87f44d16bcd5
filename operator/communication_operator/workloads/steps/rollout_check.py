"""Step *rollout check*, after helm reported the upgrade deployed: warn when the release's Deployments
do not run their new spec yet (:mod:`..rollout`). The report stays helm's: this step never fails a deploy."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from communication_operator.workloads.rollout import RolloutReader

log = logging.getLogger(__name__)

ROLLOUT_UNFINISHED_LOG: Final = (
    "release %s: helm reported it deployed, but its rollout is not finished: %s. helm's wait may have "
    "ended early (docs/workloads.md, known limits); the pods' state shows what runs"
)


async def check_rollout(
    rollouts: RolloutReader | None, release: str, namespace: str, context: Mapping[str, str]
) -> None:
    if rollouts is None:
        return
    unfinished = await rollouts.unfinished_rollouts(namespace, release)
    if unfinished:
        log.warning(ROLLOUT_UNFINISHED_LOG, release, "; ".join(unfinished), extra=context)
