"""Which workloads run in which pool, for ``ReportDeployedStateAsync`` (the pools' reverse sync).

Upstream cannot tell (it has no release → workload mapping and always reports ``workloadRtIds=[]``).
Every release this operator installs carries helm ``--labels`` naming tenant, pool and workload
(:func:`~.naming.release_labels`), and helm stores those labels on its release record, the Secret
``sh.helm.release.v1.<release>.v<revision>`` (labels ``owner=helm``, ``status=<status>``). Helm's own
``list --selector`` filters on the same labels but does not print them, so this source lists those
records directly, selecting ``owner=helm``, ``status=deployed`` (only a release's current revision can be
deployed; failed and pending ones are not healthy) and our ``managed-by`` label, and reads their
metadata only (:func:`~communication_operator.kube.metadata.list_metadata`): a record's payload is the
whole gzip'd release, tens of KB each, and never needed here. The reverse sync lists once per batch of
registrations (:mod:`communication_operator.pools.reverse_sync`).

The tenant id comes back as its label value (:func:`~.naming.label_value`), which equals the tenant
id for every id made of letters, digits, ``-``, ``_`` and ``.`` up to 63 characters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from kubernetes_asyncio import client

from communication_operator.kube.client import DEFAULT_REQUEST_TIMEOUT
from communication_operator.kube.metadata import list_metadata
from communication_operator.workloads.naming import (
    LABEL_MANAGED_BY,
    LABEL_POOL_RT_ID,
    LABEL_TENANT,
    LABEL_WORKLOAD_RT_ID,
    MANAGED_BY_VALUE,
)

log = logging.getLogger(__name__)

DEPLOYED_RELEASES_SELECTOR = f"owner=helm,status=deployed,{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}"


class HelmReleaseWorkloads:
    """:class:`~communication_operator.pools.DeployedWorkloadsSource` from helm's release records."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        *,
        platform_namespace: str = "",
    ) -> None:
        self._api = api
        self.namespace = namespace
        # Adapter pools (workloadType 2) live in OPERATOR__PLATFORMNAMESPACE when it is set.
        self.namespaces = [namespace] + (
            [platform_namespace] if platform_namespace not in ("", namespace) else []
        )
        self._timeout = request_timeout

    async def workload_rt_ids_by_pool(self) -> Mapping[tuple[str, str], Sequence[str]]:
        labels: list[Mapping[str, str]] = []
        for namespace in self.namespaces:
            listing = await list_metadata(
                self._api,
                f"/api/v1/namespaces/{namespace}/secrets",
                label_selector=DEPLOYED_RELEASES_SELECTOR,
                request_timeout=self._timeout,
            )
            labels += [metadata.get("labels") or {} for metadata in listing.items]
        return workloads_from_labels(labels)


def workloads_from_labels(label_sets: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], list[str]]:
    """``{(tenant, pool): sorted workload rt ids}`` from release-record labels (incomplete ones skipped)."""
    result: dict[tuple[str, str], set[str]] = {}
    for labels in label_sets:
        tenant = labels.get(LABEL_TENANT)
        pool = labels.get(LABEL_POOL_RT_ID)
        workload = labels.get(LABEL_WORKLOAD_RT_ID)
        if not (tenant and pool and workload):
            log.debug("release record without tenant/pool/workload labels skipped: %s", labels.get("name"))
            continue
        result.setdefault((tenant, pool), set()).add(workload)
    return {key: sorted(ids) for key, ids in sorted(result.items())}
