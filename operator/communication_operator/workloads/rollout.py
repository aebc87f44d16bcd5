"""Is the rollout of a release's Deployments finished? Read after helm reports an upgrade deployed.

helm 4's ``--wait=watcher`` judges readiness from an informer list, which the API server may serve from
its watch cache; once (docs/workloads.md, known limits) it reported a never-ready upgrade deployed in
0.3 s. The operator still reports what helm says, but a plain list (a quorum read) right after shows
whether the Deployments have observed their new generation and run it: if not, the log says so, with
what is missing, instead of a silent success. Paused Deployments are skipped, as helm skips them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.kube.client import DEFAULT_REQUEST_TIMEOUT
from communication_operator.workloads.replicas import INSTANCE_LABEL

log = logging.getLogger(__name__)

GENERATION_NOT_OBSERVED: Final = (
    "Deployment {name}: generation {generation} not observed yet (observed {observed})"
)
REPLICAS_NOT_RUNNING: Final = (
    "Deployment {name}: {updated} of {replicas} replica(s) updated, {available} available"
)


def unfinished_rollout(deployment: Mapping[str, Any]) -> str | None:
    """What is missing for ``deployment`` (a Deployment as JSON) to run its current spec, or ``None``."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if spec.get("paused"):
        return None
    name = metadata.get("name", "?")
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return GENERATION_NOT_OBSERVED.format(name=name, generation=generation, observed=observed)
    replicas = int(spec["replicas"]) if spec.get("replicas") is not None else 1  # the API's default
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < replicas or available < replicas:
        return REPLICAS_NOT_RUNNING.format(name=name, updated=updated, replicas=replicas, available=available)
    return None


class RolloutReader(Protocol):
    async def unfinished_rollouts(self, namespace: str, release: str) -> list[str]: ...


class KubeRolloutReader:
    """:func:`unfinished_rollout` of each of the release's Deployments (by ``app.kubernetes.io/instance``);
    an empty list when all run their spec, or when they cannot be read (logged)."""

    def __init__(self, api: client.ApiClient, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._api = api
        self._apps: Any = client.AppsV1Api(api)
        self._timeout = request_timeout

    async def unfinished_rollouts(self, namespace: str, release: str) -> list[str]:
        try:
            listing = await self._apps.list_namespaced_deployment(
                namespace, label_selector=f"{INSTANCE_LABEL}={release}", _request_timeout=self._timeout
            )
        except (ApiException, OSError, TimeoutError) as exc:
            log.warning("release %s: cannot read its Deployments to check the rollout (%s)", release, exc)
            return []
        found = (unfinished_rollout(self._api.sanitize_for_serialization(item)) for item in listing.items)
        return [text for text in found if text is not None]
