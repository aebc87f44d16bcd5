"""Replica counts across helm upgrades: the helm 4 replica pin and field-ownership conflicts (octo-spec §4.9).

helm 4 installs with server-side apply. After a scale (workloads/scale.py, field manager
``octo-communication-operator``) our manager owns ``spec.replicas`` of the release's Deployments, and an
upgrade that applies a different count conflicts with it. So on helm 4 a deploy pins ``replicaCount``
to the live count (the largest among the release's Deployments): applying the same value is not a
conflict, and the scale is not undone by the next upgrade. No pin when the live count is 0 and the
deploy is not hibernated (the workload is to run; helm may then conflict, see below), when there is no
Deployment, or when the count cannot be read (the deploy goes on unpinned). A hibernated deploy is
pinned to 0 on every helm version (its values say 0 already).

helm 3 merges three ways (old manifest, new manifest, live object) and needs no pin; it resets the
count to the chart's on each upgrade, as upstream's helm 3 builds do.

A conflict helm 4 reports (``Apply failed with 1 conflict: conflict with "<manager>" using apps/v1:
.spec.replicas``) is replaced by :data:`FIELD_CONFLICT`, which names the other field manager, the
fields and the remedies; ``OPERATOR__HELM__FORCECONFLICTS=true`` passes ``--force-conflicts`` to the
real upgrade (never to the dry run), so helm takes the fields over.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.kube.client import DEFAULT_REQUEST_TIMEOUT

log = logging.getLogger(__name__)

INSTANCE_LABEL = "app.kubernetes.io/instance"
REPLICA_COUNT_KEY = "replicaCount"

FIELD_CONFLICT = (
    "helm's server-side apply of {objects} conflicts with field manager {managers} over {fields}: "
    "another client changed these fields after helm last applied them, and helm 4 does not take them "
    "over. Remedies: scale the workload back to the chart's count (or redeploy it hibernated) before "
    "upgrading; remove the other manager's ownership of the fields; or set "
    "OPERATOR__HELM__FORCECONFLICTS=true so that helm takes them over. helm said: {error}"
)

_CONFLICT_MARKER = re.compile(r"Apply failed with \d+ conflicts?")
_MANAGER = re.compile(r'conflicts? with \\?"(?P<manager>[^"\\]+)\\?"')
_FIELD = re.compile(r"(?:using [^\s:]+: |\n- |\\n- )(?P<field>\.[^\s:\"\\]+)")
_OBJECT = re.compile(r"applying object (?P<name>[^\s]+) (?P<api>[^\s,]+), Kind=(?P<kind>[A-Za-z]+)")


class ReplicaReader(Protocol):
    async def live_replicas(self, namespace: str, release: str) -> int | None: ...


class KubeReplicaReader:
    """The largest ``spec.replicas`` among the release's Deployments; ``None``: none, or unreadable."""

    def __init__(self, api: client.ApiClient, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._apps: Any = client.AppsV1Api(api)
        self._timeout = request_timeout

    async def live_replicas(self, namespace: str, release: str) -> int | None:
        try:
            deployments = await self._apps.list_namespaced_deployment(
                namespace, label_selector=f"{INSTANCE_LABEL}={release}", _request_timeout=self._timeout
            )
        except (ApiException, OSError, TimeoutError) as exc:
            log.warning("release %s: cannot read the live replica count (%s); not pinning it", release, exc)
            return None
        counts = [d.spec.replicas for d in deployments.items if d.spec and d.spec.replicas is not None]
        return max(counts) if counts else None


def replica_pin(live: int | None, *, hibernated: bool, server_side_apply: bool) -> int | None:
    """The ``replicaCount`` to pin, or ``None`` to leave the chart's values alone."""
    if hibernated:
        return 0
    if not server_side_apply or live is None or live == 0:
        return None
    return live


def explain_field_conflict(error: str) -> str:
    """:data:`FIELD_CONFLICT` for a helm error that is a server-side apply conflict, else ``error``."""
    if not _CONFLICT_MARKER.search(error):
        return error
    managers = sorted({m.group("manager") for m in _MANAGER.finditer(error)})
    fields = sorted({m.group("field") for m in _FIELD.finditer(error)})
    objects = sorted({f"{m.group('kind')} {m.group('name')}" for m in _OBJECT.finditer(error)})
    return FIELD_CONFLICT.format(
        objects=", ".join(objects) or "the release's objects",
        managers=", ".join(f'"{m}"' for m in managers) or "(not named)",
        fields=", ".join(fields) or "(not named)",
        error=error,
    )
